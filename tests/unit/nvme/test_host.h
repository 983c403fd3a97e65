// An in-process NVMe "host" for tests: owns guest memory (a MemoryMap over an
// anonymous mapping), programs BAR0 registers, builds admin and I/O queues in
// guest memory, submits commands, reaps CQEs (phase tags), counts MSI-X
// interrupts. Runs the controller on ManualEnv: a deterministic,
// single-threaded stand-in for the reactors (messages and pollers of every
// "reactor" run from run_until_idle()). Reused by transport tests.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "hostmem/hostmem.h"
#include "nvme/controller.h"
#include "nvme/env.h"
#include "nvme/spec.h"
#include "nvme/subsystem.h"
#include "pci/function.h"

namespace vdpu::nvme::test {

class ManualEnv final : public Env {
 public:
  explicit ManualEnv(uint32_t data_reactors = 2) : n_(data_reactors) {}
  uint32_t num_data() const override { return n_; }
  uint32_t pick() override { return rr_++ % n_; }
  void post(uint32_t reactor, std::function<void()> fn) override {
    msgs_.push_back({reactor, std::move(fn)});
  }
  uint64_t add_poller(uint32_t reactor, std::string name, std::function<bool()> fn,
                      uint64_t period_us) override {
    uint64_t id = next_id_++;
    pollers_[id] = {reactor, std::move(name), std::move(fn)};
    return id;
  }
  void remove_poller(uint32_t, uint64_t id) override { pollers_.erase(id); }
  uint64_t now_ns() const override { return clock_ns; }

  // Runs messages and pollers until nothing makes progress (or max rounds).
  // Returns the number of rounds that did work.
  size_t run_until_idle(size_t max_rounds = 100000);
  // One round: all queued messages, then every poller once.
  bool run_once();
  // Runs only the pollers of one reactor (benchmarks: no message handling).
  bool poll_reactor(uint32_t reactor) {
    bool w = false;
    for (auto& [id, p] : pollers_)
      if (p.reactor == reactor) w |= p.fn();
    return w;
  }
  size_t num_pollers() const { return pollers_.size(); }
  size_t pending_messages() const { return msgs_.size(); }

  uint64_t clock_ns = 1'000'000'000;

 private:
  struct P {
    uint32_t reactor;
    std::string name;
    std::function<bool()> fn;
  };
  uint32_t n_;
  uint32_t rr_ = 0;
  uint64_t next_id_ = 1;
  std::deque<std::pair<uint32_t, std::function<void()>>> msgs_;
  std::map<uint64_t, P> pollers_;
};

class CountingIrq final : public pci::IrqSink {
 public:
  void raise(uint16_t vector) noexcept override { ++counts[vector]; ++total; }
  std::map<uint16_t, uint64_t> counts;
  uint64_t total = 0;
};

// A RAM bdev with knobs for tests: asynchronous completion (completed from
// Channel::poll), injected failures and kNoMem answers.
class TestBdev final : public bdev::Bdev {
 public:
  TestBdev(std::string name, uint32_t block_size, uint64_t num_blocks);
  bool supports(bdev::IoType t) const override { return !(unsupported & (1u << unsigned(t))); }
  std::unique_ptr<bdev::Channel> create_channel() override;

  std::vector<uint8_t> data;
  bool async = false;             // complete from poll() instead of inline
  bool hold = false;              // async completions wait while set
  bool null_io = false;           // complete without touching data (benchmarks)
  uint32_t unsupported = 0;       // bit per IoType reported unsupported
  bdev::IoStatus fail_next = bdev::IoStatus::kSuccess;  // one-shot injected status
  uint32_t nomem_next = 0;        // answer kNoMem this many times
  uint64_t submitted = 0;
  std::vector<bdev::IoType> ops;  // every op type seen
};

struct IoQueue {
  uint16_t qid = 0;
  uint32_t size = 0;     // CQ entries
  uint32_t sq_size = 0;  // SQ entries
  uint64_t sq_gpa = 0, cq_gpa = 0;
  uint32_t sq_tail = 0, cq_head = 0;
  uint16_t phase = 1;
  uint16_t next_cid = 0;
};

class TestHost {
 public:
  struct Options {
    uint32_t data_reactors = 2;
    size_t mem_bytes = 64u << 20;
    uint64_t mem_base = 0x10000000;
    ControllerOptions ctrl;
    bool mmio_doorbells = false;  // ring doorbells through MMIO instead of shared memory
    std::vector<std::pair<uint32_t, uint64_t>> namespaces = {{1, 16384}};  // nsid, blocks
    uint32_t block_size = 512;
    bool attach_irq = true;
  };
  TestHost();
  explicit TestHost(Options o);
  ~TestHost();

  // ---- guest memory
  uint64_t alloc(size_t bytes, size_t align = 4096);
  uint8_t* hva(uint64_t gpa) const;
  hostmem::MemoryMapPtr map() const { return map_; }

  // ---- registers
  uint32_t rd32(uint32_t off) { return uint32_t(ctrl().mmio_read(off, 4)); }
  uint64_t rd64(uint32_t off) { return ctrl().mmio_read(off, 8); }
  void wr32(uint32_t off, uint32_t v) { ctrl().mmio_write(off, 4, v); }
  void wr64(uint32_t off, uint64_t v) { ctrl().mmio_write(off, 8, v); }
  uint32_t csts() { return rd32(kRegCsts); }

  // Programs AQA/ASQ/ACQ, writes CC (EN=1, MPS, IOSQES/IOCQES) and runs until
  // CSTS.RDY or CFS. Returns CSTS.
  uint32_t enable(uint32_t admin_entries = 32, uint32_t cc_extra = 0, uint32_t mps = 0);
  // CC.EN = 0 and run until RDY = 0. Returns CSTS.
  uint32_t disable();

  // ---- admin
  // Submits on the admin SQ and runs until its CQE arrives (nullopt if none).
  std::optional<CqEntry> admin(SqEntry cmd);
  // Submits without running.
  uint16_t admin_submit(SqEntry cmd);
  std::optional<CqEntry> admin_reap();
  // Identify CNS into a fresh 4 KiB guest buffer; returns the buffer gpa.
  std::optional<CqEntry> identify(uint8_t cns, uint32_t nsid, uint64_t* buf_gpa,
                                  uint8_t csi = 0);
  std::optional<CqEntry> create_cq(uint16_t qid, uint32_t size, bool ien = true, uint16_t iv = 0,
                                   uint64_t gpa = 0, bool pc = true);
  std::optional<CqEntry> create_sq(uint16_t qid, uint32_t size, uint16_t cqid, uint64_t gpa = 0,
                                   bool pc = true);
  std::optional<CqEntry> delete_sq(uint16_t qid);
  std::optional<CqEntry> delete_cq(uint16_t qid);
  // Creates CQ i and SQ i (i = 1..n), CQ i on vector i. True on success.
  bool create_io_queues(uint16_t n, uint32_t size = 64);

  // ---- I/O
  IoQueue& q(uint16_t qid) { return qs_[qid]; }
  uint16_t submit(uint16_t qid, SqEntry cmd, bool ring = true);
  void ring_sq(uint16_t qid);
  std::optional<CqEntry> reap(uint16_t qid, bool ring_head = true);
  std::optional<CqEntry> io(uint16_t qid, SqEntry cmd);
  // Read/write nlb blocks at slba with a buffer at gpa (PRPs built for it).
  static SqEntry rw_cmd(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb);
  // Fills PRP1/PRP2 (and a PRP list in guest memory when needed) for a
  // buffer at gpa of len bytes, page size ps.
  void build_prps(SqEntry& c, uint64_t gpa, uint64_t len, uint32_t ps = 4096);

  ManualEnv& env() { return *env_; }
  Controller& ctrl() { return *ctrl_; }
  Subsystem& subsys() { return *subsys_; }
  CountingIrq& irq() { return irq_; }
  TestBdev& bdev(uint32_t nsid) { return *bdevs_.at(nsid); }
  void run() { env_->run_until_idle(); }
  // Suspend + wait (the ordering rule for attach/detach).
  void suspend();
  void destroy();

 private:
  Options o_;
  void* mem_ = nullptr;
  hostmem::MemoryMapPtr map_;
  uint64_t bump_ = 0;
  std::unique_ptr<ManualEnv> env_;
  std::unique_ptr<Subsystem> subsys_;
  std::unique_ptr<Controller> ctrl_;
  std::map<uint32_t, TestBdev*> bdevs_;
  std::vector<std::string> bdev_names_;
  CountingIrq irq_;
  IoQueue aq_;
  std::map<uint16_t, IoQueue> qs_;
  bool destroyed_ = false;
  static int instance_;
};

// Command builders.
SqEntry make_cmd(uint8_t opc, uint32_t nsid = 0);

}  // namespace vdpu::nvme::test
