#include "bdev/nvme/ctrlr.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <future>

#include "base/log.h"
#include "nvme/fabrics.h"
#include "runtime/runtime.h"

namespace vdpu::bdev::nvme {

namespace nv = vdpu::nvme;

namespace {

constexpr uint16_t kAdminQueueEntries = 32;
constexpr uint32_t kDefaultTimeoutMs = 10000;

std::string trim_field(const char* p, size_t n) {
  std::string s(p, strnlen(p, n));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

std::string uuid_of(const uint8_t* b) {
  char s[37];
  snprintf(s, sizeof(s), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
  return s;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace

const char* state_name(CtrlrState s) {
  switch (s) {
    case CtrlrState::kConnecting:
      return "connecting";
    case CtrlrState::kEnabled:
      return "enabled";
    case CtrlrState::kResetting:
      return "resetting";
    case CtrlrState::kDeleting:
      return "deleting";
    case CtrlrState::kFailed:
      return "failed";
  }
  return "?";
}

Ctrlr::Ctrlr(AttachOptions o) : opts_(std::move(o)) {
  ep_ = Endpoint{opts_.traddr, opts_.trsvcid, opts_.adrfam, opts_.hostaddr, opts_.hostsvcid};
  std::string u = generate_uuid();
  // Host identifier: the UUID of the host NQN when it is a UUID NQN.
  hostnqn_ = opts_.hostnqn.empty() ? "nqn.2014-08.org.nvmexpress:uuid:" + u : opts_.hostnqn;
  std::string hex;
  for (char c : u)
    if (c != '-') hex += c;
  for (int i = 0; i < 16; ++i)
    hostid_[i] = uint8_t(std::stoul(hex.substr(size_t(i) * 2, 2), nullptr, 16));
}

Ctrlr::~Ctrlr() {
  stop_thread();
}

uint32_t Ctrlr::timeout_ms() const {
  if (opts_.fabrics_timeout_us)
    return uint32_t(std::max<uint64_t>(1, opts_.fabrics_timeout_us / 1000));
  uint32_t g = global_options().tcp_connect_timeout_ms;
  return g ? g : kDefaultTimeoutMs;
}

std::vector<NsData> Ctrlr::namespaces() const {
  std::lock_guard lk(mu_);
  return ns_;
}

json Ctrlr::info() const {
  json trid = {{"trtype", "TCP"},
               {"adrfam", opts_.adrfam == "ipv6" ? "IPv6" : "IPv4"},
               {"traddr", opts_.traddr},
               {"trsvcid", opts_.trsvcid},
               {"subnqn", opts_.subnqn}};
  json host = {{"nqn", hostnqn_}, {"addr", opts_.hostaddr}, {"svcid", opts_.hostsvcid}};
  json c = {{"state", state_name(state())},
            {"trid", trid},
            {"cntlid", cntlid_},
            {"host", host},
            {"hdgst", opts_.hdgst},
            {"ddgst", opts_.ddgst},
            {"num_io_queues", max_queues_},
            {"io_queue_depth", lim_.depth},
            {"reconnects", reconnects_}};
  {
    std::lock_guard lk(mu_);
    c["io_queues_connected"] = qpairs_.size();
  }
  return {{"name", opts_.name}, {"ctrlrs", json::array({c})}};
}

// ---------------------------------------------------------------- control thread

void Ctrlr::start(std::function<void(Status)> ready) {
  th_ = std::thread([this, ready = std::move(ready)]() mutable { thread_main(std::move(ready)); });
}

void Ctrlr::stop_thread() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (!th_.joinable()) return;
  if (th_.get_id() == std::this_thread::get_id())
    th_.detach();  // last reference dropped by the thread
  else
    th_.join();
}

bool Ctrlr::wait_for(uint64_t deadline_ns) {
  std::unique_lock lk(mu_);
  while (!stop_) {
    uint64_t now = rt::now_ns();
    if (now >= deadline_ns) return true;
    cv_.wait_for(lk, std::chrono::nanoseconds(deadline_ns - now));
  }
  return false;
}

Status Ctrlr::init_admin(bool first) {
  const uint32_t to = timeout_ms();
  VDPU_TRY(admin_.open(ep_, opts_.hdgst, opts_.ddgst, to));
  auto cid = admin_.connect(0, kAdminQueueEntries - 1, kato_ms_, nv::kCntlidDynamic, opts_.subnqn,
                            hostnqn_, hostid_, to);
  if (!cid) return cid.error();
  cntlid_ = *cid;

  auto cap = admin_.prop_get(nv::kPropCap, true, to);
  if (!cap) return cap.error();
  cap_ = *cap;
  auto vs = admin_.prop_get(nv::kPropVs, false, to);
  if (!vs) return vs.error();
  vs_ = uint32_t(*vs);

  // Enable (Base 2.0 §3.5.1): CC.EN with the NVM command set and 64/16-byte
  // queue entries, then wait for CSTS.RDY within CAP.TO (500 ms units).
  uint32_t cc = nv::kCcEn | (nv::kSqeSizeLog2 << 16) | (nv::kCqeSizeLog2 << 20);
  VDPU_TRY(admin_.prop_set(nv::kPropCc, cc, false, to));
  uint64_t rdy_deadline =
      rt::now_ns() + std::max<uint64_t>(1, nv::bits(cap_, 31, 24)) * 500'000'000ull;
  for (;;) {
    auto csts = admin_.prop_get(nv::kPropCsts, false, to);
    if (!csts) return csts.error();
    if (*csts & nv::kCstsCfs)
      return make_error(Errc::kIo, "controller fatal status (CSTS.CFS) while enabling");
    if (*csts & nv::kCstsRdy) break;
    if (rt::now_ns() > rdy_deadline)
      return make_error(Errc::kTimeout, "controller not ready within CAP.TO");
    usleep(1000);
  }

  alignas(8) static thread_local uint8_t buf[4096];
  nv::SqEntry sqe{};
  sqe.opc = nv::kAdmIdentify;
  sqe.cdw10 = nv::kCnsController;
  auto r = admin_.exec(sqe, nullptr, 0, buf, sizeof(buf), to);
  if (!r) return r.error();
  if (!r->ok())
    return make_error(Errc::kIo, "Identify Controller failed: " + status_text(r->status()));
  const auto& id = *reinterpret_cast<const nv::IdentifyController*>(buf);
  if (id.cntrltype == nv::kCntrltypeDiscovery)
    return make_error(Errc::kInvalidArgument,
                      opts_.subnqn + " is a discovery controller, not an I/O controller");
  sn_ = trim_field(id.sn, sizeof(id.sn));
  mn_ = trim_field(id.mn, sizeof(id.mn));
  fr_ = trim_field(id.fr, sizeof(id.fr));
  subnqn_ = trim_field(id.subnqn, sizeof(id.subnqn));
  const auto& fab = *reinterpret_cast<const nv::IdentifyFabricsAttrs*>(id.nvmof);
  QueueLimits lim;
  uint32_t mqes = uint32_t(nv::cap_mqes(cap_));  // 0's based entries
  lim.depth = std::max<uint32_t>(1, std::min<uint32_t>(opts_.io_queue_depth, mqes));
  lim.icd_max = fab.ioccsz >= 4 ? fab.ioccsz * 16 - 64 : 0;
  uint64_t mps = 4096ull << nv::cap_mpsmin(cap_);
  uint64_t mdts = id.mdts ? (mps << id.mdts) : (1ull << 20);
  lim.max_xfer = uint32_t(std::min<uint64_t>(mdts, 1ull << 20));
  lim.write_zeroes = id.oncs & nv::kOncsWriteZeroes;
  lim.retry_count = global_options().bdev_retry_count;
  lim.timeout_ns = global_options().timeout_us * 1000;
  lim.timeout_reset = global_options().action_on_timeout != "none";
  dsm_ = id.oncs & nv::kOncsDsm;
  const uint32_t nn = id.nn;

  // Number of Queues (Base 2.0 §5.27.1.5): NSQR/NCQR 0's based.
  uint32_t want = std::max<uint32_t>(1, std::min<uint32_t>(opts_.num_io_queues, 65535));
  sqe = {};
  sqe.opc = nv::kAdmSetFeatures;
  sqe.cdw10 = nv::kFidNumberOfQueues;
  sqe.cdw11 = (want - 1) | ((want - 1) << 16);
  r = admin_.exec(sqe, nullptr, 0, nullptr, 0, to);
  if (!r) return r.error();
  uint32_t granted = want;
  if (r->ok()) {
    uint32_t nsqa = (r->cqe.dw0 & 0xffff) + 1, ncqa = (r->cqe.dw0 >> 16) + 1;
    granted = std::min({want, nsqa, ncqa});
  } else if (r->status() != nv::sc::kCommandSequenceError) {
    // A controller that already has its queue count answers with
    // Command Sequence Error (after a reconnect); otherwise it is fatal.
    return make_error(Errc::kIo,
                      "Set Features (Number of Queues) failed: " + status_text(r->status()));
  }

  if (!first) {
    // Same association parameters as before: queue limits must not shrink
    // under the live I/O queues.
    if (lim.depth < lim_.depth || granted < max_queues_)
      return make_error(Errc::kIo, "controller limits shrank across the reconnect");
    return {};
  }
  lim_ = lim;
  max_queues_ = granted;

  // Active namespaces (CNS 02h) and each one's Identify Namespace.
  alignas(8) static thread_local uint8_t list[4096];
  sqe = {};
  sqe.opc = nv::kAdmIdentify;
  sqe.cdw10 = nv::kCnsActiveNsList;
  r = admin_.exec(sqe, nullptr, 0, list, sizeof(list), to);
  if (!r) return r.error();
  std::vector<uint32_t> nsids;
  if (r->ok()) {
    for (int i = 0; i < 1024; ++i) {
      uint32_t id32 = nv::le32(list + i * 4);
      if (!id32) break;
      nsids.push_back(id32);
    }
  } else {
    for (uint32_t i = 1; i <= std::min<uint32_t>(nn, 1024); ++i) nsids.push_back(i);
  }
  std::vector<NsData> ns;
  for (uint32_t nsid : nsids) {
    sqe = {};
    sqe.opc = nv::kAdmIdentify;
    sqe.nsid = nsid;
    sqe.cdw10 = nv::kCnsNamespace;
    r = admin_.exec(sqe, nullptr, 0, buf, sizeof(buf), to);
    if (!r) return r.error();
    if (!r->ok()) continue;
    const auto& ins = *reinterpret_cast<const nv::IdentifyNamespace*>(buf);
    if (ins.nsze == 0) continue;  // inactive
    const nv::LbaFormat& f = ins.lbaf[ins.flbas & 0xf];
    if (f.ms != 0 || f.lbads < 9 || f.lbads > 16) {
      VDPU_WARN(
          "nvme {}: namespace {} skipped (LBA format with {} metadata bytes, 2^{} data bytes)",
          opts_.name, nsid, f.ms, f.lbads);
      continue;
    }
    NsData d;
    d.nsid = nsid;
    d.lba_shift = f.lbads;
    d.num_blocks = ins.nsze;
    if (!all_zero(ins.nguid, 16)) d.uuid = uuid_of(ins.nguid);
    d.bdev = opts_.name + "n" + std::to_string(nsid);
    ns.push_back(d);
  }
  std::lock_guard lk(mu_);
  ns_ = std::move(ns);
  return {};
}

Status Ctrlr::keep_alive() {
  nv::SqEntry sqe{};
  sqe.opc = nv::kAdmKeepAlive;
  auto r = admin_.exec(sqe, nullptr, 0, nullptr, 0, std::max<uint32_t>(kato_ms_, 1000));
  if (!r) return r.error();
  if (!r->ok()) return make_error(Errc::kIo, "Keep Alive failed: " + status_text(r->status()));
  return {};
}

Status Ctrlr::connect_qpair(IoQpair& q) {
  SyncConn c;
  VDPU_TRY(c.open(ep_, opts_.hdgst, opts_.ddgst, timeout_ms()));
  auto r = c.connect(q.qid(), uint16_t(q.limits().depth), 0, cntlid_, opts_.subnqn, hostnqn_,
                     hostid_, timeout_ms());
  if (!r) return r.error();
  TcpParams tp = c.params();
  int fd = c.release();
  post(q, [fd, tp](IoQpair& qp) { qp.adopt(fd, tp); });
  return {};
}

void Ctrlr::post(IoQpair& q, std::function<void(IoQpair&)> fn) {
  IoQpair* qp = &q;
  q.reactor()->send_blocking([qp, fn = std::move(fn)] { fn(*qp); });
}

void Ctrlr::qpair_failed(IoQpair&) {
  {
    std::lock_guard lk(mu_);
    failed_ = true;
  }
  cv_.notify_all();
}

IoQpair* Ctrlr::qpair_for(rt::Reactor* r) {
  std::lock_guard lk(mu_);
  for (auto& q : qpairs_)
    if (q->reactor() == r) return q.get();
  CtrlrState s = state_.load();
  if (s == CtrlrState::kDeleting || s == CtrlrState::kFailed || stop_) return nullptr;
  if (qpairs_.size() >= max_queues_) {
    VDPU_WARN("nvme {}: the controller granted {} I/O queues, all in use; no queue for reactor {}",
              opts_.name, max_queues_, r->index());
    return nullptr;
  }
  auto q = std::make_unique<IoQpair>(r, lim_, [this](IoQpair& qp) { qpair_failed(qp); });
  q->set_qid(uint16_t(qpairs_.size() + 1));
  q->set_name(opts_.name);
  q->start();
  IoQpair* raw = q.get();
  qpairs_.push_back(std::move(q));
  to_connect_.push_back(raw);
  cv_.notify_all();
  return raw;
}

void Ctrlr::shutdown_qpairs(IoStatus st) {
  std::vector<IoQpair*> qs;
  {
    std::lock_guard lk(mu_);
    to_connect_.clear();
    for (auto& q : qpairs_) qs.push_back(q.get());
  }
  // Wait for each reactor to run its shutdown (bounded: a message each).
  for (IoQpair* q : qs) {
    std::promise<void> p;
    auto f = p.get_future();
    q->reactor()->send_blocking([q, st, &p] {
      q->shutdown(st);
      p.set_value();
    });
    f.wait();
  }
}

void Ctrlr::free_qpairs() {
  std::lock_guard lk(mu_);
  qpairs_.clear();
}

void Ctrlr::lose_connection(const std::string& why) {
  const uint64_t start = rt::now_ns();
  state_ = CtrlrState::kResetting;
  VDPU_WARN(
      "nvme {}: lost the controller ({}); reconnecting every {} s, loss timeout {} s, fast I/O "
      "fail {} s",
      opts_.name, why, opts_.reconnect_delay_sec, opts_.ctrlr_loss_timeout_sec,
      opts_.fast_io_fail_timeout_sec);
  auto disconnect_all = [this] {
    std::vector<IoQpair*> qs;
    {
      std::lock_guard lk(mu_);
      for (auto& q : qpairs_) qs.push_back(q.get());
    }
    for (IoQpair* q : qs) post(*q, [](IoQpair& qp) { qp.disconnect(); });
    admin_.close();
  };
  auto set_fail_fast = [this](bool on) {
    std::vector<IoQpair*> qs;
    {
      std::lock_guard lk(mu_);
      for (auto& q : qpairs_) qs.push_back(q.get());
    }
    for (IoQpair* q : qs) post(*q, [on](IoQpair& qp) { qp.fail_fast(on); });
  };
  const uint64_t s = 1'000'000'000ull;
  const int64_t loss = opts_.ctrlr_loss_timeout_sec;
  const uint64_t loss_at = loss < 0 ? UINT64_MAX : start + uint64_t(loss) * s;
  const uint64_t fail_at =
      opts_.fast_io_fail_timeout_sec ? start + opts_.fast_io_fail_timeout_sec * s : UINT64_MAX;
  bool fast_failed = false;
  uint64_t next_try = start;  // first attempt right away
  for (;;) {
    disconnect_all();
    if (loss == 0) break;
    uint64_t wake = std::min({next_try, loss_at, fail_at});
    if (!wait_for(wake)) return;  // detach
    uint64_t now = rt::now_ns();
    if (!fast_failed && now >= fail_at) {
      VDPU_WARN("nvme {}: fast_io_fail_timeout_sec ({} s) reached: failing I/O until reconnected",
                opts_.name, opts_.fast_io_fail_timeout_sec);
      set_fail_fast(true);
      fast_failed = true;
    }
    if (now >= loss_at) break;
    if (now < next_try) continue;
    next_try = now + std::max<uint64_t>(1, opts_.reconnect_delay_sec) * s;
    {
      std::lock_guard lk(mu_);
      failed_ = false;
      to_connect_.clear();
    }
    Status st = init_admin(false);
    std::vector<IoQpair*> qs;
    {
      std::lock_guard lk(mu_);
      for (auto& q : qpairs_) qs.push_back(q.get());
    }
    for (IoQpair* q : qs) {
      if (!st.ok()) break;
      st = connect_qpair(*q);
    }
    if (st.ok()) {
      std::lock_guard lk(mu_);
      // Queues created during the outage were connected above.
      std::erase_if(to_connect_,
                    [&](IoQpair* q) { return std::find(qs.begin(), qs.end(), q) != qs.end(); });
      if (!failed_) {
        state_ = CtrlrState::kEnabled;
        ++reconnects_;
        VDPU_INFO("nvme {}: reconnected (controller {})", opts_.name, cntlid_);
        return;
      }
    }
    VDPU_WARN("nvme {}: reconnect failed: {}", opts_.name,
              st.ok() ? "a queue broke again" : st.error().message);
  }
  VDPU_ERR(
      "nvme {}: controller lost for good (ctrlr_loss_timeout_sec {}); deleting it and its bdevs",
      opts_.name, loss);
  state_ = CtrlrState::kFailed;
  if (on_lost) on_lost();
}

void Ctrlr::thread_main(std::function<void(Status)> ready) {
  kato_ms_ = opts_.keep_alive_timeout_ms;
  Status st = init_admin(true);
  if (!st.ok()) {
    admin_.close();
    state_ = CtrlrState::kFailed;
    ready(st);
    ready = nullptr;
    return;
  }
  state_ = CtrlrState::kEnabled;
  VDPU_INFO("nvme {}: connected to {} at {}:{} (controller {}, {} I/O queues of {}, {} namespaces)",
            opts_.name, opts_.subnqn, opts_.traddr, opts_.trsvcid, cntlid_, max_queues_, lim_.depth,
            ns_.size());
  ready(st);
  ready = nullptr;  // it holds a reference to this controller

  const uint64_t ka_period = kato_ms_ ? uint64_t(kato_ms_) * 1'000'000ull / 2 : 0;
  uint64_t next_ka = ka_period ? rt::now_ns() + ka_period : UINT64_MAX;
  for (;;) {
    std::vector<IoQpair*> pending;
    bool failed;
    {
      std::unique_lock lk(mu_);
      for (;;) {
        if (stop_ || failed_ || !to_connect_.empty()) break;
        uint64_t now = rt::now_ns();
        if (now >= next_ka) break;
        cv_.wait_for(lk,
                     std::chrono::nanoseconds(std::min<uint64_t>(next_ka - now, 1'000'000'000ull)));
      }
      if (stop_) break;
      failed = failed_;
      pending.swap(to_connect_);
    }
    if (state_ == CtrlrState::kFailed) break;
    std::string why;
    if (failed) why = "an I/O queue failed";
    for (IoQpair* q : pending) {
      if (!why.empty()) break;
      if (Status s = connect_qpair(*q); !s.ok())
        why = "I/O queue " + std::to_string(q->qid()) + ": " + s.error().message;
    }
    if (why.empty() && rt::now_ns() >= next_ka) {
      if (Status s = keep_alive(); !s.ok()) why = s.error().message;
      next_ka = rt::now_ns() + ka_period;
    }
    if (!why.empty()) {
      lose_connection(why);
      if (state_ == CtrlrState::kFailed) break;
      next_ka = ka_period ? rt::now_ns() + ka_period : UINT64_MAX;
    }
  }
  // Normal shutdown notification (CC.SHN = 01b) on the way out, best effort.
  if (state_ == CtrlrState::kEnabled || state_ == CtrlrState::kDeleting) {
    if (admin_.fd() >= 0) {
      uint32_t cc = nv::kCcEn | (nv::kSqeSizeLog2 << 16) | (nv::kCqeSizeLog2 << 20) |
                    (nv::kCcShnNormal << 14);
      (void)admin_.prop_set(nv::kPropCc, cc, false, 1000);
    }
  }
  admin_.close();
}

}  // namespace vdpu::bdev::nvme
