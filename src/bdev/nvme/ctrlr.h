// An attached NVMe/TCP controller: its admin connection and control thread
// (init, keep-alive, reconnect), its I/O queues (one per reactor that opened
// a channel), its namespaces and their bdevs. Internal to bdev/nvme.
//
// Threads: the control thread runs the blocking admin work and posts to the
// main reactor (bdev registration, deletion) and to the I/O queues' reactors
// (adopt / disconnect / fail_fast). qpair_for() runs on the reactor creating
// a channel. Shared fields are under mu_; nothing here is on the I/O path.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bdev/nvme/conn.h"
#include "bdev/nvme/nvme.h"
#include "bdev/nvme/qpair.h"

namespace vdpu::bdev::nvme {

struct NsData {
  uint32_t nsid = 0;
  uint32_t lba_shift = 9;
  uint64_t num_blocks = 0;
  std::string uuid;  // from NGUID/EUI64 when the target gives one
  std::string bdev;  // "<name>n<nsid>"
};

enum class CtrlrState : uint8_t { kConnecting, kEnabled, kResetting, kDeleting, kFailed };
const char* state_name(CtrlrState s);

class Ctrlr {
 public:
  explicit Ctrlr(AttachOptions o);
  ~Ctrlr();

  const AttachOptions& opts() const { return opts_; }
  const std::string& name() const { return opts_.name; }
  const std::string& hostnqn() const { return hostnqn_; }
  std::vector<NsData> namespaces() const;
  CtrlrState state() const { return state_.load(); }
  uint16_t cntlid() const { return cntlid_; }
  json info() const;  // bdev_nvme_get_controllers entry

  // Control thread: connects and initialises (blocking), then keeps the
  // controller alive. `ready` runs on the thread once, with the outcome of
  // the first connection; on failure the thread exits.
  void start(std::function<void(Status)> ready);
  // Stops the control thread (joins). Main reactor.
  void stop_thread();
  // Called (control thread) when the controller is lost for good
  // (ctrlr_loss_timeout_sec); set by the module before start().
  std::function<void()> on_lost;

  // The I/O queue of reactor r, created (and connected in the background)
  // on first use. Runs on r. nullptr when the controller has no queue left
  // or is being deleted.
  IoQpair* qpair_for(rt::Reactor* r);
  // Posts st-shutdown to every queue and waits (main reactor, bounded).
  void shutdown_qpairs(IoStatus st);
  // Frees the queues (after shutdown_qpairs and once no channel is left).
  void free_qpairs();

  // Limits the data path needs (after a successful start).
  const QueueLimits& limits() const { return lim_; }
  bool supports_write_zeroes() const { return lim_.write_zeroes; }
  bool supports_dsm() const { return dsm_; }

 private:
  void thread_main(std::function<void(Status)> ready);
  Status init_admin(bool first);
  Status connect_qpair(IoQpair& q);
  Status keep_alive();
  void lose_connection(const std::string& why);  // control thread
  bool wait_for(uint64_t deadline_ns);           // false: stop requested
  void qpair_failed(IoQpair& q);                 // any reactor
  void post(IoQpair& q, std::function<void(IoQpair&)> fn);
  uint32_t timeout_ms() const;

  AttachOptions opts_;
  Endpoint ep_;
  std::string hostnqn_;
  uint8_t hostid_[16]{};
  std::atomic<CtrlrState> state_{CtrlrState::kConnecting};

  // Settled by init (control thread; read after start's ready).
  SyncConn admin_;
  uint16_t cntlid_ = 0;
  uint64_t cap_ = 0;
  uint32_t vs_ = 0;
  uint32_t kato_ms_ = 0;
  uint32_t max_queues_ = 0;  // I/O queues granted
  QueueLimits lim_;
  bool dsm_ = false;
  std::string sn_, mn_, fr_, subnqn_;
  uint64_t reconnects_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool failed_ = false;  // a queue broke: reconnect
  std::vector<NsData> ns_;
  std::vector<std::unique_ptr<IoQpair>> qpairs_;  // qid = index + 1
  std::vector<IoQpair*> to_connect_;
  std::thread th_;
};

}  // namespace vdpu::bdev::nvme
