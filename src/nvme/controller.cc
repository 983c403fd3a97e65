// Controller lifecycle and state machine (Base 2.0 §3.5 controller
// initialization, §3.6 shutdown, §3.7 resets), suspend/resume, namespace
// attachment and the service-facing JSON.
#include "nvme/controller.h"

#include <algorithm>

#include "base/log.h"
#include "pci/function.h"

namespace vdpu::nvme {

const char* ctrl_state_name(CtrlState s) {
  switch (s) {
    case CtrlState::kDisabled: return "disabled";
    case CtrlState::kEnabled: return "enabled";
    case CtrlState::kFailed: return "failed";
    case CtrlState::kResetting: return "resetting";
    case CtrlState::kShuttingDown: return "shutting_down";
    case CtrlState::kShutdown: return "shutdown";
  }
  return "unknown";
}

Result<std::unique_ptr<Controller>> Controller::create(Subsystem& s, ControllerOptions o,
                                                       Env& env) {
  if (o.name.empty()) return make_error(Errc::kInvalidArgument, "controller name is required");
  if (o.admin_only) {
    o.num_queues = 0;
  } else if (o.num_queues < 1 || o.num_queues > kMaxIoQueues) {
    return make_error(Errc::kInvalidArgument,
                      "num_queues must be 1-" + std::to_string(kMaxIoQueues));
  }
  if (o.mdts < 1 || o.mdts > 7) return make_error(Errc::kInvalidArgument, "mdts must be 1-7");
  if (o.fw_slots < 1 || o.fw_slots > 7)
    return make_error(Errc::kInvalidArgument, "fw_slots must be 1-7");
  if (o.max_queue_entries < 2 || o.max_queue_entries > 4096)
    return make_error(Errc::kInvalidArgument, "max_queue_entries must be 2-4096");
  if (o.num_msix == 0) o.num_msix = o.num_queues + 1;
  if (o.num_msix > 2048) return make_error(Errc::kInvalidArgument, "num_msix must be <= 2048");
  if (o.admin_poll_us > 1000000)
    return make_error(Errc::kInvalidArgument, "admin_poll_us must be <= 1000000");
  uint16_t id = o.cntlid;
  if (id == 0) {
    id = s.alloc_cntlid();
  } else if (id >= 0xfff0) {  // FFF0h-FFFFh reserved (Base 2.0 §3.1.3.1)
    return make_error(Errc::kInvalidArgument, "cntlid must be < 0xfff0");
  }
  for (Controller* c : s.controllers())
    if (c->cntlid() == id) return make_error(Errc::kExists, "cntlid already used in subsystem");
  auto c = std::unique_ptr<Controller>(new Controller(s, std::move(o), env, id));
  s.add_controller(c.get());
  return c;
}

Controller::Controller(Subsystem& s, ControllerOptions o, Env& env, uint16_t cntlid)
    : subsys_(s), o_(std::move(o)), env_(env), cntlid_(cntlid), num_msix_(o_.num_msix) {
  reset_registers();
  own_db_ = std::make_unique<uint32_t[]>(kDoorbellBytes / 4);
  db_ = own_db_.get();
  suspended_ = o_.suspended;
  reset_features();
}

Controller::~Controller() {
  if (admin_group_ || !groups_.empty())
    VDPU_ERR("nvme {}: destroyed with live queues (destroy() not awaited)", name());
  for (Namespace* ns : ns_) ns->ctrl_ = nullptr;
  subsys_.remove_controller(this);
}

void Controller::post_main(std::function<void()> fn) {
  env_.post(kMainReactor, [w = std::weak_ptr<int>(life_), fn = std::move(fn)] {
    if (!w.expired()) fn();
  });
}

// ---------------------------------------------------------------- transport

void Controller::attach(hostmem::MemoryMapPtr dma, pci::IrqSink* irq) {
  irq_ = irq;
  dma_changed(std::move(dma));
  if (admin_group_) admin_group_->set_irq(irq);
  for (auto& g : groups_)
    if (g) env_.post(g->reactor(), [g = g.get(), irq] { g->set_irq(irq); });
}

void Controller::dma_changed(hostmem::MemoryMapPtr dma) {
  dma_ = std::move(dma);
  if (admin_group_) admin_group_->set_mem(dma_);
  for (auto& g : groups_)
    if (g) env_.post(g->reactor(), [g = g.get(), m = dma_] { g->set_mem(m); });
}

void Controller::set_doorbell_memory(volatile uint32_t* db) {
  if (state_ != CtrlState::kDisabled || busy_) {
    VDPU_ERR("nvme {}: doorbell memory changed while enabled: ignored", name());
    return;
  }
  db_ = db ? db : own_db_.get();
  for (uint32_t i = 0; i < kDoorbellBytes / 4; ++i) db_[i] = 0;
}

void Controller::function_reset(std::function<void()> done) {
  auto after = [this, done = std::move(done)] {
    // FLR: the register file returns to its power-on values (PCIe 6.0 §6.6.2).
    reset_registers();
    if (done) done();
  };
  if (busy_) {
    deferred_.push_back([this, after] { function_reset(after); });
    return;
  }
  cc_ = 0;  // the reset flow must not re-enable
  if (state_ == CtrlState::kDisabled) {
    after();
    return;
  }
  reset_flow(true, after);
}

void Controller::detach(std::function<void()> done) { function_reset(std::move(done)); }

void Controller::destroy(std::function<void()> done) {
  function_reset([this, done = std::move(done)] {
    for (Namespace* ns : ns_) ns->ctrl_ = nullptr;
    ns_.clear();
    if (done) done();
  });
}

void Controller::ring_admin_doorbell() {
  post_main([this] {
    if (admin_group_ && !admin_group_->paused()) admin_group_->poll();
  });
}

// ---------------------------------------------------------------- state machine

void Controller::on_cc_write(uint32_t cc) {
  cc_ = cc;
  if (busy_) return;  // re-evaluated when the running flow ends
  evaluate_cc();
}

void Controller::evaluate_cc() {
  if (busy_) return;
  bool en = cc_ & kCcEn;
  switch (state_) {
    case CtrlState::kDisabled:
      if (en) {
        if (!suspended_) enable();  // a suspended controller enables on resume()
      } else if (cc_shn(cc_) != kCcShnNone) {
        // Nothing to shut down.
        csts_ = (csts_ & ~kCstsShstMask) | (kShstComplete << kCstsShstShift);
      }
      return;
    case CtrlState::kEnabled:
      if (!en)
        reset_flow(true, nullptr);
      else if (cc_shn(cc_) != kCcShnNone)
        shutdown_flow(cc_shn(cc_) == kCcShnAbrupt);
      return;
    case CtrlState::kFailed:
    case CtrlState::kShutdown:
      if (!en) reset_flow(true, nullptr);
      return;
    case CtrlState::kResetting:
    case CtrlState::kShuttingDown:
      return;
  }
}

void Controller::fail(const char* why) {
  VDPU_WARN_RL("nvme {}: controller fatal status: {}", name(), why);
  csts_ |= kCstsCfs;
  state_ = CtrlState::kFailed;
}

GroupConfig Controller::io_group_config() const {
  GroupConfig c;
  c.page_size = page_size_;
  c.page_shift = uint32_t(std::countr_zero(page_size_));
  c.max_xfer = (uint64_t(1) << o_.mdts) * 4096;  // MDTS in units of CAP.MPSMIN
  c.sgl = o_.sgl;
  uint16_t oncs = effective_oncs();
  c.compare = oncs & kOncsCompare;
  c.write_zeroes = oncs & kOncsWriteZeroes;
  c.coalesce_thr = feat_.coalescing & 0xff;
  c.coalesce_time_ns = uint64_t((feat_.coalescing >> 8) & 0xff) * 100000;
  return c;
}

void Controller::enable() {
  // Base 2.0 §3.5.1 steps 1-4 and §3.1.4.5: validate what the host
  // programmed before setting CSTS.RDY.
  uint32_t mps = cc_mps(cc_);
  if (mps < cap_mpsmin(cap_) || mps > cap_mpsmax(cap_)) return fail("CC.MPS outside CAP.MPSMIN..MPSMAX");
  uint32_t css = cc_css(cc_);
  if (!(css == kCcCssNvm || (css == kCcCssAdminOnly && o_.admin_only)))
    return fail("CC.CSS selects an unsupported command set");
  if (cc_ams(cc_) != 0) return fail("CC.AMS: only round robin arbitration is supported");
  uint32_t sqes = cc_iosqes(cc_), cqes = cc_iocqes(cc_);
  if (!((sqes == kSqeSizeLog2 && cqes == kCqeSizeLog2) || (sqes == 0 && cqes == 0)))
    return fail("CC.IOSQES/IOCQES outside Identify SQES/CQES");
  uint32_t asqs = aqa_asqs(aqa_) + 1, acqs = aqa_acqs(aqa_) + 1;
  if (asqs < 2 || acqs < 2) return fail("AQA: admin queues need at least 2 entries");
  page_size_ = 4096u << mps;
  if (!asq_ || !acq_ || (asq_ & (page_size_ - 1)) || (acq_ & (page_size_ - 1)))
    return fail("ASQ/ACQ zero or not page aligned");
  if (!dma_) return fail("no guest memory attached");
  auto* sq_ring = reinterpret_cast<const SqEntry*>(dma_->translate(asq_, uint64_t(asqs) * 64));
  auto* cq_ring = reinterpret_cast<CqEntry*>(dma_->translate(acq_, uint64_t(acqs) * 16, true));
  if (!sq_ring || !cq_ring) return fail("admin queue memory not mapped");

  for (uint32_t i = 0; i < kDoorbellBytes / 4; ++i) db_[i] = 0;
  io_cfg_ = io_group_config();
  uint32_t iov_per_req = uint32_t(io_cfg_.max_xfer / page_size_) + 2;
  admin_cq_ = std::make_unique<Cq>(0, acqs, acq_, cq_ring, &db_[1], true, 0);
  admin_sq_ = std::make_unique<Sq>(0, asqs, asq_, sq_ring, &db_[0], admin_cq_.get(), iov_per_req);
  ring_maps_[0] = ring_maps_[1] = dma_;
  GroupConfig acfg = io_cfg_;
  acfg.admin = true;
  acfg.sgl = false;
  admin_group_ = std::make_unique<QueueGroup>(*this, kMainReactor, acfg);
  admin_group_->admin_handler = &Controller::admin_dispatch;
  admin_group_->set_mem(dma_);
  admin_group_->set_irq(irq_);
  admin_group_->add_cq(admin_cq_.get());
  admin_group_->add_sq(admin_sq_.get());
  admin_group_->start_poller(o_.admin_poll_us);
  groups_.clear();
  groups_.resize(env_.num_data());
  io_queues_created_ = false;
  last_keep_alive_ns_ = env_.now_ns();
  state_ = CtrlState::kEnabled;
  csts_ = kCstsRdy;  // SHST = 00b, CFS = 0
  VDPU_INFO("nvme {}: enabled (admin SQ {} / CQ {} entries, page {} B)", name(), asqs, acqs,
            page_size_);
}

QueueGroup& Controller::group_on(uint32_t r) {
  if (groups_.size() <= r) groups_.resize(r + 1);
  if (!groups_[r]) {
    groups_[r] = std::make_unique<QueueGroup>(*this, r, io_cfg_);
    QueueGroup* g = groups_[r].get();
    g->set_mem(dma_);
    g->set_irq(irq_);
    std::vector<std::pair<uint32_t, bdev::Bdev*>> nss;
    for (Namespace* ns : ns_) nss.emplace_back(ns->nsid(), &ns->bdev());
    std::vector<uint8_t> cd = feat_.vector_cd;
    env_.post(r, [g, nss = std::move(nss), cd = std::move(cd)] {
      for (auto& [nsid, b] : nss) g->set_namespace(nsid, b, true);
      for (size_t iv = 0; iv < cd.size(); ++iv)
        if (cd[iv]) g->set_vector_coalescing(uint16_t(iv), true);
      g->start_poller(0);
    });
  }
  return *groups_[r];
}

void Controller::quiesce_all(bool drop, bool admin, std::function<void()> done) {
  auto left = std::make_shared<size_t>(1);  // +1 guard released at the end
  auto one_done = [left, done] {
    if (--*left == 0 && done) done();
  };
  for (auto& g : groups_) {
    if (!g) continue;
    ++*left;
    env_.post(g->reactor(), [this, g = g.get(), drop, one_done] {
      g->quiesce(drop, [this, one_done] { post_main(one_done); });
    });
  }
  if (admin && admin_group_) {
    ++*left;
    admin_group_->quiesce(drop, [this, one_done] { post_main(one_done); });
  }
  one_done();
}

void Controller::destroy_io_groups(std::function<void()> done) {
  auto left = std::make_shared<size_t>(1);
  auto one_done = [left, done] {
    if (--*left == 0 && done) done();
  };
  for (auto& g : groups_) {
    if (!g) continue;
    ++*left;
    QueueGroup* raw = g.release();
    // The group (its poller, bdev channels) dies on its own reactor.
    env_.post(raw->reactor(), [this, raw, one_done] {
      delete raw;
      post_main(one_done);
    });
  }
  groups_.clear();
  one_done();
}

void Controller::reset_flow(bool drop, std::function<void()> done) {
  // Base 2.0 §3.7.2 Controller Level Reset: stop fetching, let what is in the
  // backends finish (their completions are dropped), delete every I/O queue,
  // then the admin queue pair; CSTS.RDY goes to 0 last.
  busy_ = true;
  state_ = CtrlState::kResetting;
  if (ka_poller_) {
    env_.remove_poller(kMainReactor, ka_poller_);
    ka_poller_ = 0;
  }
  auto finish = [this, done] {
    admin_group_.reset();
    admin_sq_.reset();
    admin_cq_.reset();
    for (auto& p : sqs_) p.reset();
    for (auto& p : cqs_) p.reset();
    for (auto& m : ring_maps_) m.reset();
    sq_deleting_.fill(false);
    cq_deleting_.fill(false);
    aers_.clear();
    events_.clear();
    masked_types_ = 0;
    reset_features();
    io_queues_created_ = false;
    for (uint32_t i = 0; i < kDoorbellBytes / 4; ++i) db_[i] = 0;
    csts_ &= ~(kCstsRdy | kCstsCfs);
    state_ = CtrlState::kDisabled;
    busy_ = false;
    ++gen_;
    VDPU_INFO("nvme {}: reset complete", name());
    if (done) done();
    run_deferred();
    evaluate_cc();
  };
  auto io_stage = [this, drop, finish] {
    quiesce_all(drop, false, [this, finish] { destroy_io_groups(finish); });
  };
  if (admin_group_) {
    for (Request* r : aers_) admin_group_->drop(*r);  // parked AERs end without a CQE
    aers_.clear();
    admin_group_->quiesce(drop, [this, io_stage] { post_main(io_stage); });
  } else {
    io_stage();
  }
}

void Controller::shutdown_flow(bool abrupt) {
  // Base 2.0 §3.6: SHST 01b while outstanding commands finish (normal) or
  // are dropped (abrupt), then 10b. Queues stay until the host resets.
  busy_ = true;
  state_ = CtrlState::kShuttingDown;
  csts_ = (csts_ & ~kCstsShstMask) | (kShstOccurring << kCstsShstShift);
  quiesce_all(abrupt, true, [this] {
    csts_ = (csts_ & ~kCstsShstMask) | (kShstComplete << kCstsShstShift);
    state_ = CtrlState::kShutdown;
    busy_ = false;
    VDPU_INFO("nvme {}: shutdown complete", name());
    run_deferred();
    evaluate_cc();
  });
}

void Controller::run_deferred() {
  while (!busy_ && !deferred_.empty()) {
    auto fn = std::move(deferred_.front());
    deferred_.erase(deferred_.begin());
    fn();
  }
}

// ---------------------------------------------------------------- service API

void Controller::suspend(std::function<void()> done) {
  if (busy_) {
    deferred_.push_back([this, done = std::move(done)] { suspend(done); });
    return;
  }
  suspended_ = true;
  if (state_ != CtrlState::kEnabled) {
    if (done) done();
    return;
  }
  busy_ = true;
  quiesce_all(false, true, [this, done = std::move(done)] {
    busy_ = false;
    VDPU_INFO("nvme {}: suspended", name());
    if (done) done();
    run_deferred();
    evaluate_cc();
  });
}

void Controller::resume() {
  if (busy_) {
    deferred_.push_back([this] { resume(); });
    return;
  }
  if (!suspended_) return;
  suspended_ = false;
  if (state_ == CtrlState::kEnabled) {
    admin_group_->unpause();
    for (auto& g : groups_)
      if (g) env_.post(g->reactor(), [g = g.get()] { g->unpause(); });
    ring_admin_doorbell();
  }
  VDPU_INFO("nvme {}: resumed", name());
  deliver_events();
  evaluate_cc();
}

Status Controller::attach_ns(uint32_t nsid) {
  if (!suspended_ || busy_)
    return make_error(Errc::kState, "controller " + name() + " must be suspended to attach");
  Namespace* ns = subsys_.find_namespace(nsid);
  if (!ns) return make_error(Errc::kNotFound, "namespace " + std::to_string(nsid) + " not found");
  if (ns->ctrl_ == this) return make_error(Errc::kExists, "namespace already attached");
  if (ns->ctrl_) return make_error(Errc::kBusy, "namespace attached to another controller");
  ns->ctrl_ = this;
  ns_.push_back(ns);
  std::sort(ns_.begin(), ns_.end(), [](auto* a, auto* b) { return a->nsid() < b->nsid(); });
  for (auto& g : groups_)
    if (g)
      env_.post(g->reactor(), [g = g.get(), nsid, b = &ns->bdev()] { g->set_namespace(nsid, b, true); });
  note_ns_changed(nsid);
  return {};
}

Status Controller::detach_ns(uint32_t nsid) {
  if (!suspended_ || busy_)
    return make_error(Errc::kState, "controller " + name() + " must be suspended to detach");
  auto it = std::find_if(ns_.begin(), ns_.end(), [&](auto* n) { return n->nsid() == nsid; });
  if (it == ns_.end())
    return make_error(Errc::kNotFound, "namespace " + std::to_string(nsid) + " not attached");
  (*it)->ctrl_ = nullptr;
  ns_.erase(it);
  for (auto& g : groups_)
    if (g) env_.post(g->reactor(), [g = g.get(), nsid] { g->set_namespace(nsid, nullptr, false); });
  note_ns_changed(nsid);
  return {};
}

void Controller::note_ns_changed(uint32_t nsid) {
  // Only a driver that has the controller enabled sees changes; before that
  // it discovers namespaces by Identify (Base 2.0 §5.16.1.5, §5.2.1).
  if (state_ == CtrlState::kDisabled) return;
  if (std::find(changed_ns_.begin(), changed_ns_.end(), nsid) == changed_ns_.end()) {
    if (changed_ns_.size() < 1024)
      changed_ns_.push_back(nsid);
    else
      changed_ns_overflow_ = true;
  }
  if (feat_.aec & kAecNsAttrNotices)
    add_event(kAerNotice, kAerNoticeNsAttrChanged, kLidChangedNsList);
}

void Controller::report_error_event(uint8_t info) {
  post_main([this, info] {
    record_error(0xffff, 0xffff, sc::kInvalidField);
    add_event(kAerError, info, kLidErrorInformation);
  });
}

json Controller::info() const {
  json nss = json::array();
  for (Namespace* ns : ns_)
    nss.push_back({{"nsid", ns->nsid()}, {"bdev", ns->bdev_name()}, {"uuid", ns->uuid_str()}});
  return {{"ctrl_id", name()},
          {"nqn", subsys_.nqn()},
          {"cntlid", cntlid_},
          {"num_queues", o_.num_queues},
          {"mdts", o_.mdts},
          {"admin_only", o_.admin_only},
          {"quirks", o_.quirks},
          {"num_msix", num_msix_},
          {"state", ctrl_state_name(state_)},
          {"suspended", suspended_},
          {"namespaces", nss}};
}

json Controller::io_stats() const {
  json qs = json::array();
  uint64_t tr = 0, tw = 0, trb = 0, twb = 0, tf = 0, te = 0;
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (uint32_t qid = 1; qid <= kMaxIoQueues; ++qid) {
    const Sq* sq = sqs_[qid].get();
    if (!sq) continue;
    const QueueStats& s = sq->stats();
    qs.push_back({{"qid", qid},
                  {"read_ios", ld(s.read_ios)},
                  {"write_ios", ld(s.write_ios)},
                  {"flush_ios", ld(s.flush_ios)},
                  {"other_ios", ld(s.other_ios)},
                  {"read_bytes", ld(s.read_bytes)},
                  {"write_bytes", ld(s.write_bytes)},
                  {"errors", ld(s.errors)},
                  {"cq_full_waits", ld(s.cqe_full_waits)},
                  {"inflight", sq->inflight()}});
    tr += ld(s.read_ios), tw += ld(s.write_ios), trb += ld(s.read_bytes);
    twb += ld(s.write_bytes), tf += ld(s.flush_ios), te += ld(s.errors);
  }
  return {{"ctrl_id", name()},      {"read_ios", tr},   {"write_ios", tw},
          {"read_bytes", trb},      {"write_bytes", twb}, {"flush_ios", tf},
          {"io_errors", te},        {"queues", qs}};
}

}  // namespace vdpu::nvme
