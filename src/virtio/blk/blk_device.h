// virtio-blk device model (virtio 1.2 §5.2) behind the virtio::Device seam,
// plus the control API the vblk service manager needs (SNAP
// virtio_blk_controller_* RPCs: suspend/resume, bdev attach/detach, stats).
//
// Threads: every public method runs on the control-plane (main) reactor;
// asynchronous results come back through callbacks, also on the main
// reactor. Each started queue lives on a data reactor chosen by
// Runtime::pick(); per reactor, the device keeps one bdev Channel and one
// poller that serves all of this device's queues there (event mode: the
// queues' kick fds are wake fds, prepare_sleep arms guest notifications).
//
// Lifetime: stop every started queue (stop_queue / stop_all) and let
// pending callbacks run before destroying the device.
//
// Hot-remove of the bdev (bdev deleted or backend gone): the device
// suspends, waits for in-flight I/O, drops its channels and closes the bdev,
// then resumes (unless it was suspended before): from then on every I/O
// request completes with VIRTIO_BLK_S_IOERR (as SPDK's vhost-blk does), GET_ID
// still answers. virtio_blk_controller_bdev_attach brings a bdev back.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "runtime/runtime.h"
#include "virtio/blk/blk_queue.h"
#include "virtio/device.h"

namespace vdpu::virtio::blk {

// virtio_blk_controller_create parameters that shape the device (snap spec
// §5.3; names and defaults from there).
struct BlkOptions {
  uint16_t num_queues = 1;    // 1..64
  uint16_t queue_size = 256;  // 1..256, max queue size offered
  uint32_t size_max = 4096;   // >= 1: max bytes of one segment (config size_max)
  uint32_t seg_max = 1;       // 1..queue_size-2 (1 when queue_size < 3)
  std::string serial;         // vblk_id: GET_ID string, at most 20 bytes
  bool read_only = false;     // VIRTIO_BLK_F_RO
  bool force_in_order = false;  // offer VIRTIO_F_IN_ORDER, complete in order
  bool indirect_desc = false;   // offer VIRTIO_F_INDIRECT_DESC
  // Transport capabilities (not SNAP params): on by default.
  bool ring_packed = true;   // offer VIRTIO_F_RING_PACKED
  bool event_idx = true;     // offer VIRTIO_F_EVENT_IDX
  bool topology = false;     // offer VIRTIO_BLK_F_TOPOLOGY
};
// kInvalidArgument with a message naming the parameter.
Status validate(const BlkOptions& o);

// dbg_io_stats_get entry (per queue).
struct BlkQueueIoStats {
  uint16_t queue_id = 0;
  int core_id = -1;  // reactor core owning the queue; -1 when not started
  uint64_t read_io_count = 0, write_io_count = 0, flush_io_count = 0;
  uint64_t discard_io_count = 0, write_zeroes_io_count = 0, error_count = 0;
};
// dbg_debug_stats_get entry (per queue).
struct BlkQueueDebugStats {
  uint16_t qid = 0;
  std::string state;  // RUNNING | SUSPENDED | STOPPED | ERROR
  uint16_t hw_available_index = 0, sw_available_index = 0;
  uint16_t hw_used_index = 0, sw_used_index = 0;
  uint64_t hw_received_descs = 0, hw_completed_descs = 0;
};
// One queue's saved position (virtio_blk_controller_state_save, snap spec
// §5.4). started: the queue was running (suspended) when saved; a queue
// that was not running reports where it stopped last (or its pending
// restored state).
struct BlkQueueState {
  uint16_t qid = 0;
  bool started = false;
  RingState ring;
};

// SNAP response bodies: {"queues": [...], "read_io_count": Σ, ...} (the
// service adds "ctrl_id").
nlohmann::json io_stats_json(const std::vector<BlkQueueIoStats>& v);
nlohmann::json debug_stats_json(const std::vector<BlkQueueDebugStats>& v);

class BlkDevice final : public Device {
 public:
  // Control plane. bdev: name (or UUID) to open, "" / "none" for no bdev.
  // Errors: validate()'s, kNotFound (no such bdev), kState (being removed).
  static Result<std::unique_ptr<BlkDevice>> create(const BlkOptions& opts, const std::string& bdev,
                                                    rt::Runtime& rt, bool suspended = false);
  ~BlkDevice() override;

  // --- virtio::Device ---
  uint32_t device_id() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override { return features_; }
  uint16_t num_queues() const override { return opts_.num_queues; }
  uint16_t max_queue_size() const override { return opts_.queue_size; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override;
  // No writable field is offered (no CONFIG_WCE): kUnsupported.
  Status write_config(uint32_t offset, std::span<const uint8_t> in) override;
  // kInvalidArgument for device bits (outside 24..41) we did not offer;
  // transport bits (24..41) are the transport's to check against what it
  // offered on top of device_features().
  Status set_features(uint64_t features) override;
  // done: kInvalidArgument (qid, queue size, ring), kState (already started).
  void start_queue(uint16_t qid, const QueueConfig& cfg, std::function<void(Status)> done) override;
  void stop_queue(uint16_t qid, std::function<void(QueueState)> done) override;
  void update_memory(hostmem::MemoryMapPtr mem) override;
  void reset() override;

  // --- control API (service layer) ---
  // Stops taking new requests on every queue; done once all in-flight
  // requests completed (their used entries written). Queues started later
  // start suspended.
  void suspend(std::function<void()> done);
  void resume();
  bool suspended() const { return suspended_; }
  // Suspends, drops the channels and closes the bdev. The device stays
  // suspended (SNAP bdev_detach semantics). No bdev: done at once.
  void detach_bdev(std::function<void()> done);
  // Opens `bdev` ("none": no bdev, I/O fails with IOERR), creates channels
  // on the queues' reactors, then resumes if `resume` (SNAP bdev_attach
  // resumes what bdev_detach suspended, not a controller the user suspended:
  // then the device stays suspended throughout, no request is taken).
  // Errors: kBusy (a bdev is attached, or the block size differs while
  // queues run), kNotFound.
  void attach_bdev(const std::string& bdev, bool resume, std::function<void(Status)> done);
  // Stops every started queue (device destroy); done with their states.
  void stop_all(std::function<void()> done);
  // Serial for GET_ID (vblk_id on bdev_attach); applies to queues started later.
  void set_serial(const std::string& s);

  const BlkOptions& options() const { return opts_; }
  // Attached bdev name, "" when none.
  std::string bdev_name() const;
  uint64_t negotiated_features() const { return negotiated_; }
  bool queue_started(uint16_t qid) const { return qid < slots_.size() && slots_[qid].q; }

  // Per-queue I/O counters (cumulative over queue restarts). Synchronous.
  std::vector<BlkQueueIoStats> io_stats() const;
  // Per-queue ring state, gathered on the queues' reactors.
  void debug_stats(std::function<void(std::vector<BlkQueueDebugStats>)> done);

  // State save/restore of a suspended device (snap spec §5.4). save_state
  // gathers every queue's position; restore_state makes the device continue
  // from `st`: running (suspended) queues take it at once on their reactors,
  // the others when they are next started (it then wins, once, over the
  // position the transport starts them with). Errors: kState (not
  // suspended), kInvalidArgument (queue count or ids do not match, or
  // Virtqueue::restore refuses a position).
  void save_state(std::function<void(Result<std::vector<BlkQueueState>>)> done);
  void restore_state(std::vector<BlkQueueState> st, std::function<void(Status)> done);

 private:
  struct Group;  // this device's queues + bdev channel on one reactor
  struct Slot {
    std::unique_ptr<BlkQueue> q;
    uint32_t reactor = 0;
    bool stopping = false;
    std::vector<std::function<void(QueueState)>> stop_waiters;  // repeated stop_queue calls
    BlkQueueIoStats base;  // counters of earlier runs of this queue
    QueueState last_stop;  // where the queue stood when it last stopped
    std::optional<RingState> restored;  // applied at the next start_queue
  };

  BlkDevice(const BlkOptions& opts, rt::Runtime& rt);
  Status open_bdev(const std::string& name);
  void close_bdev();
  void on_hot_remove();
  Backend backend_template() const;
  BlkQueueParams queue_params(uint16_t qid) const;
  void fill_config();
  // Runs work(reply) on each reactor in `reactors`; after every reply()
  // (which may be called later, on that reactor) all_done runs on main.
  void broadcast(const std::vector<uint32_t>& reactors,
                 std::function<void(Group&, std::function<void()>)> work, std::function<void()> all_done);
  std::vector<uint32_t> started_reactors() const;
  void to_main(std::function<void()> fn);
  static void wait_drained(Group& g, BlkQueue* q, std::function<void()> cb);

  BlkOptions opts_;
  rt::Runtime& rt_;
  uint64_t features_ = 0;
  uint64_t negotiated_ = 0;
  bool suspended_ = false;
  bdev::Desc* desc_ = nullptr;
  bdev::Bdev* bdev_ = nullptr;
  VirtioBlkConfig config_{};
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Group>> groups_;  // index: reactor; used on that reactor only
  bool hot_removing_ = false;
};

}  // namespace vdpu::virtio::blk
