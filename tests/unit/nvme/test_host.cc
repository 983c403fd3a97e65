#include "test_host.h"

#include <sys/mman.h>

#include <cstring>
#include <stdexcept>

namespace vdpu::nvme::test {

int TestHost::instance_ = 0;

// ---------------------------------------------------------------- ManualEnv

bool ManualEnv::run_once() {
  bool work = false;
  size_t n = msgs_.size();
  for (size_t i = 0; i < n && !msgs_.empty(); ++i) {
    auto m = std::move(msgs_.front());
    msgs_.pop_front();
    m.second();
    work = true;
  }
  std::vector<uint64_t> ids;
  for (auto& [id, p] : pollers_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = pollers_.find(id);
    if (it == pollers_.end()) continue;
    auto fn = it->second.fn;  // the poller may remove itself
    work |= fn();
  }
  return work;
}

size_t ManualEnv::run_until_idle(size_t max_rounds) {
  size_t busy = 0;
  for (size_t i = 0; i < max_rounds; ++i) {
    if (!run_once() && msgs_.empty()) {
      // One more idle round to be sure nothing was left by pollers.
      if (!run_once() && msgs_.empty()) break;
    }
    ++busy;
  }
  return busy;
}

// ---------------------------------------------------------------- TestBdev

namespace {
class TestChannel final : public bdev::Channel {
 public:
  explicit TestChannel(TestBdev& b) : Channel(b), b_(b) {}
  bool poll() noexcept override {
    if (pending_.empty() || b_.hold) return false;
    auto p = std::move(pending_);
    pending_.clear();
    for (auto& [io, st] : p) complete(*io, st);
    return true;
  }

 protected:
  void do_submit(bdev::Io& io) noexcept override {
    ++b_.submitted;
    if (b_.null_io) {
      finish(io, bdev::IoStatus::kSuccess);
      return;
    }
    b_.ops.push_back(io.type);
    if (b_.nomem_next) {
      --b_.nomem_next;
      finish(io, bdev::IoStatus::kNoMem);
      return;
    }
    if (b_.fail_next != bdev::IoStatus::kSuccess) {
      auto st = b_.fail_next;
      b_.fail_next = bdev::IoStatus::kSuccess;
      finish(io, st);
      return;
    }
    uint64_t bs = b_.block_size(), off = io.offset_blocks * bs, len = io.num_blocks * bs;
    auto st = bdev::IoStatus::kSuccess;
    switch (io.type) {
      case bdev::IoType::kRead:
      case bdev::IoType::kWrite:
      case bdev::IoType::kCompare: {
        uint64_t pos = off, total = 0;
        for (uint32_t i = 0; i < io.iovcnt; ++i) {
          auto* p = static_cast<uint8_t*>(io.iov[i].iov_base);
          size_t l = io.iov[i].iov_len;
          if (io.type == bdev::IoType::kRead) std::memcpy(p, &b_.data[pos], l);
          else if (io.type == bdev::IoType::kWrite) std::memcpy(&b_.data[pos], p, l);
          else if (std::memcmp(&b_.data[pos], p, l)) st = bdev::IoStatus::kMiscompare;
          pos += l;
          total += l;
        }
        if (total != len) st = bdev::IoStatus::kFailed;
        break;
      }
      case bdev::IoType::kUnmap:
      case bdev::IoType::kWriteZeroes:
        std::memset(&b_.data[off], 0, len);
        break;
      default:
        break;
    }
    finish(io, st);
  }

 private:
  void finish(bdev::Io& io, bdev::IoStatus st) {
    if (b_.async)
      pending_.emplace_back(&io, st);
    else
      complete(io, st);
  }
  TestBdev& b_;
  std::vector<std::pair<bdev::Io*, bdev::IoStatus>> pending_;
};
}  // namespace

TestBdev::TestBdev(std::string name, uint32_t block_size, uint64_t num_blocks)
    : Bdev(std::move(name), "test", block_size, num_blocks), data(block_size * num_blocks, 0) {}

std::unique_ptr<bdev::Channel> TestBdev::create_channel() {
  return std::make_unique<TestChannel>(*this);
}

// ---------------------------------------------------------------- TestHost

SqEntry make_cmd(uint8_t opc, uint32_t nsid) {
  SqEntry c{};
  c.opc = opc;
  c.nsid = nsid;
  return c;
}

TestHost::TestHost() : TestHost(Options{}) {}

TestHost::TestHost(Options o) : o_(std::move(o)) {
  mem_ = mmap(nullptr, o_.mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem_ == MAP_FAILED) throw std::runtime_error("mmap");
  hostmem::Region r;
  r.gpa = o_.mem_base;
  r.size = o_.mem_bytes;
  r.hva = static_cast<uint8_t*>(mem_);
  r.mmap_base = mem_;
  r.mmap_len = o_.mem_bytes;
  map_ = std::make_shared<hostmem::MemoryMap>(std::vector<hostmem::Region>{r});
  env_ = std::make_unique<ManualEnv>(o_.data_reactors);
  int inst = instance_++;
  SubsystemOptions so;
  so.nqn = "nqn.2022-10.io.vdpu:test" + std::to_string(inst);
  so.serial_number = "SN0001";
  so.model_number = "vdpu test";
  subsys_ = Subsystem::create(so).value();
  for (auto& [nsid, blocks] : o_.namespaces) {
    std::string name = "tb" + std::to_string(inst) + "n" + std::to_string(nsid);
    auto b = std::make_unique<TestBdev>(name, o_.block_size, blocks);
    bdevs_[nsid] = b.get();
    if (!bdev::Manager::get().add(std::move(b)).ok()) throw std::runtime_error("bdev add");
    bdev_names_.push_back(name);
    if (!subsys_->add_namespace(nsid, name).ok()) throw std::runtime_error("ns add");
  }
  ControllerOptions co = o_.ctrl;
  if (co.name.empty()) co.name = "NVMeCtrl" + std::to_string(inst);
  bool start_suspended = co.suspended;
  co.suspended = true;  // attach namespaces first (SNAP ordering rule)
  ctrl_ = Controller::create(*subsys_, co, *env_).value();
  ctrl_->attach(map_, o_.attach_irq ? &irq_ : nullptr);
  for (auto& [nsid, blocks] : o_.namespaces)
    if (!ctrl_->attach_ns(nsid).ok()) throw std::runtime_error("attach");
  if (!start_suspended) ctrl_->resume();
  run();
}

TestHost::~TestHost() {
  destroy();
  ctrl_.reset();
  subsys_.reset();
  for (auto& n : bdev_names_) (void)bdev::Manager::get().remove(n);
  env_->run_until_idle();
  map_.reset();  // munmaps
}

void TestHost::destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  bool done = false;
  ctrl_->destroy([&] { done = true; });
  run();
  if (!done) throw std::runtime_error("destroy did not finish");
}

void TestHost::suspend() {
  bool done = false;
  ctrl_->suspend([&] { done = true; });
  run();
  if (!done) throw std::runtime_error("suspend did not finish");
}

uint64_t TestHost::alloc(size_t bytes, size_t align) {
  bump_ = (bump_ + align - 1) & ~(uint64_t(align) - 1);
  uint64_t gpa = o_.mem_base + bump_;
  bump_ += bytes;
  if (bump_ > o_.mem_bytes) throw std::runtime_error("guest memory exhausted");
  std::memset(hva(gpa), 0, bytes);
  return gpa;
}

uint8_t* TestHost::hva(uint64_t gpa) const {
  return static_cast<uint8_t*>(mem_) + (gpa - o_.mem_base);
}

uint32_t TestHost::enable(uint32_t entries, uint32_t cc_extra, uint32_t mps) {
  aq_ = IoQueue{};
  aq_.size = entries;
  aq_.sq_size = entries;
  aq_.sq_gpa = alloc(entries * 64, 4096u << mps);
  aq_.cq_gpa = alloc(entries * 16, 4096u << mps);
  wr32(kRegAqa, (entries - 1) | ((entries - 1) << 16));
  wr64(kRegAsq, aq_.sq_gpa);
  wr64(kRegAcq, aq_.cq_gpa);
  uint32_t cc = kCcEn | (mps << 7) | (6u << 16) | (4u << 20) | cc_extra;
  wr32(kRegCc, cc);
  run();
  return csts();
}

uint32_t TestHost::disable() {
  wr32(kRegCc, rd32(kRegCc) & ~kCcEn);
  run();
  qs_.clear();
  return csts();
}

static void write_sq_doorbell(TestHost& h, Controller& c, bool mmio, uint16_t qid, uint32_t v) {
  if (mmio)
    c.mmio_write(kRegDoorbellBase + 8u * qid, 4, v);
  else
    __atomic_store_n(&c.doorbells()[2 * qid], v, __ATOMIC_RELEASE);
}

static void write_cq_doorbell(Controller& c, bool mmio, uint16_t qid, uint32_t v) {
  if (mmio)
    c.mmio_write(kRegDoorbellBase + 8u * qid + 4, 4, v);
  else
    __atomic_store_n(&c.doorbells()[2 * qid + 1], v, __ATOMIC_RELEASE);
}

uint16_t TestHost::admin_submit(SqEntry cmd) {
  cmd.cid = aq_.next_cid++;
  std::memcpy(hva(aq_.sq_gpa + uint64_t(aq_.sq_tail) * 64), &cmd, 64);
  aq_.sq_tail = (aq_.sq_tail + 1) % aq_.sq_size;
  write_sq_doorbell(*this, *ctrl_, o_.mmio_doorbells, 0, aq_.sq_tail);
  return cmd.cid;
}

static std::optional<CqEntry> reap_from(TestHost& h, Controller& c, IoQueue& q, bool mmio,
                                        bool ring) {
  CqEntry e;
  std::memcpy(&e, h.hva(q.cq_gpa + uint64_t(q.cq_head) * 16), 16);
  if ((e.status & 1) != q.phase) return std::nullopt;
  if (++q.cq_head == q.size) {
    q.cq_head = 0;
    q.phase ^= 1;
  }
  if (ring) write_cq_doorbell(c, mmio, q.qid, q.cq_head);
  return e;
}

std::optional<CqEntry> TestHost::admin_reap() {
  return reap_from(*this, *ctrl_, aq_, o_.mmio_doorbells, true);
}

std::optional<CqEntry> TestHost::admin(SqEntry cmd) {
  admin_submit(cmd);
  run();
  return admin_reap();
}

std::optional<CqEntry> TestHost::identify(uint8_t cns, uint32_t nsid, uint64_t* buf, uint8_t csi) {
  *buf = alloc(4096);
  SqEntry c = make_cmd(kAdmIdentify, nsid);
  c.prp1 = *buf;
  c.cdw10 = cns;
  c.cdw11 = uint32_t(csi) << 24;
  return admin(c);
}

std::optional<CqEntry> TestHost::create_cq(uint16_t qid, uint32_t size, bool ien, uint16_t iv,
                                           uint64_t gpa, bool pc) {
  if (!gpa) gpa = alloc(size * 16);
  SqEntry c = make_cmd(kAdmCreateIoCq);
  c.prp1 = gpa;
  c.cdw10 = qid | ((size - 1) << 16);
  c.cdw11 = (pc ? 1u : 0u) | (ien ? 2u : 0u) | (uint32_t(iv) << 16);
  auto e = admin(c);
  if (e && (e->status >> 1) == 0) {
    IoQueue& q = qs_[qid];
    q.qid = qid;
    q.size = size;
    q.cq_gpa = gpa;
    q.cq_head = 0;
    q.phase = 1;
  }
  return e;
}

std::optional<CqEntry> TestHost::create_sq(uint16_t qid, uint32_t size, uint16_t cqid,
                                           uint64_t gpa, bool pc) {
  if (!gpa) gpa = alloc(size * 64);
  SqEntry c = make_cmd(kAdmCreateIoSq);
  c.prp1 = gpa;
  c.cdw10 = qid | ((size - 1) << 16);
  c.cdw11 = (pc ? 1u : 0u) | (uint32_t(cqid) << 16);
  auto e = admin(c);
  if (e && (e->status >> 1) == 0) {
    IoQueue& q = qs_[qid];
    q.sq_gpa = gpa;
    q.sq_tail = 0;
    q.sq_size = size;
  }
  return e;
}

std::optional<CqEntry> TestHost::delete_sq(uint16_t qid) {
  SqEntry c = make_cmd(kAdmDeleteIoSq);
  c.cdw10 = qid;
  return admin(c);
}

std::optional<CqEntry> TestHost::delete_cq(uint16_t qid) {
  SqEntry c = make_cmd(kAdmDeleteIoCq);
  c.cdw10 = qid;
  return admin(c);
}

bool TestHost::create_io_queues(uint16_t n, uint32_t size) {
  for (uint16_t i = 1; i <= n; ++i) {
    auto e = create_cq(i, size, true, i);
    if (!e || (e->status >> 1)) return false;
    e = create_sq(i, size, i);
    if (!e || (e->status >> 1)) return false;
  }
  return true;
}

uint16_t TestHost::submit(uint16_t qid, SqEntry cmd, bool ring) {
  IoQueue& q = qs_.at(qid);
  cmd.cid = q.next_cid++;
  std::memcpy(hva(q.sq_gpa + uint64_t(q.sq_tail) * 64), &cmd, 64);
  q.sq_tail = (q.sq_tail + 1) % q.sq_size;
  if (ring) ring_sq(qid);
  return cmd.cid;
}

void TestHost::ring_sq(uint16_t qid) {
  write_sq_doorbell(*this, *ctrl_, o_.mmio_doorbells, qid, qs_.at(qid).sq_tail);
}

std::optional<CqEntry> TestHost::reap(uint16_t qid, bool ring_head) {
  return reap_from(*this, *ctrl_, qs_.at(qid), o_.mmio_doorbells, ring_head);
}

std::optional<CqEntry> TestHost::io(uint16_t qid, SqEntry cmd) {
  submit(qid, cmd);
  run();
  return reap(qid);
}

SqEntry TestHost::rw_cmd(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb) {
  SqEntry c = make_cmd(opc, nsid);
  c.cdw10 = uint32_t(slba);
  c.cdw11 = uint32_t(slba >> 32);
  c.cdw12 = (nlb - 1) & 0xffff;
  return c;
}

void TestHost::build_prps(SqEntry& c, uint64_t gpa, uint64_t len, uint32_t ps) {
  c.prp1 = gpa;
  uint64_t first = std::min<uint64_t>(len, ps - (gpa & (ps - 1)));
  uint64_t rest = len - first;
  if (rest == 0) {
    c.prp2 = 0;
    return;
  }
  uint64_t next = gpa + first;
  if (rest <= ps) {
    c.prp2 = next;
    return;
  }
  // A PRP list (one page is enough for the sizes tests use; chained if not).
  uint64_t npages = (rest + ps - 1) / ps;
  uint64_t per_list = ps / 8;
  uint64_t list = alloc(ps, ps);
  c.prp2 = list;
  uint64_t i = 0;
  for (uint64_t p = 0; p < npages; ++p) {
    if (i == per_list - 1 && p < npages - 1) {
      uint64_t nl = alloc(ps, ps);
      put_le64(hva(list) + i * 8, nl);
      list = nl;
      i = 0;
    }
    put_le64(hva(list) + i * 8, next + p * ps);
    ++i;
  }
}

}  // namespace vdpu::nvme::test
