// What the VBLK manager drives for one controller: the virtio-blk device
// model plus its transport endpoint (a vhost-user server on the function's
// socket). The real implementation (backend_vhost.cc) adapts
// virtio::blk::BlkDevice and transport::vhost_user::Server; unit tests use a
// fake. Keeping this seam small lets the manager's rules be tested without
// guest memory or sockets.
//
// Threads: every method runs on the control-plane (main) reactor; `done`
// callbacks run there too, possibly before the method returns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"

namespace vdpu::bdev {
class Desc;
}

namespace vdpu::service::vblk {

using json = nlohmann::json;

// Controller parameters (spec snap-storage §5.3), already range-checked.
struct CtrlConfig {
  uint16_t num_queues = 1;     // 1-64
  uint16_t queue_size = 256;   // 1-256, power of two (split rings)
  uint32_t size_max = 4096;    // virtio-blk size_max
  uint32_t seg_max = 1;        // virtio-blk seg_max
  std::string vblk_id;         // VIRTIO_BLK_T_GET_ID serial
  bool read_only = false;      // VIRTIO_BLK_F_RO
  bool force_in_order = false;
  bool indirect_desc = false;  // VIRTIO_F_INDIRECT_DESC offered
  bool admin_q = false;
  bool dynamic_msix = false;
  bool live_update_listener = false;
  bool dbg_local_optimized = false;
  std::optional<uint32_t> vf_num_msix;
  uint32_t num_msix = 0;       // MSI-X vectors of the function
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Exposes the device on `socket` (vhost-user: listen there). Errors: kIo.
  virtual Status plug(const std::string& socket) = 0;
  // Removes the endpoint: stops listening, disconnects the host, unlinks the
  // socket. Queues are stopped first (in-flight requests complete).
  virtual void unplug(std::function<void()> done) = 0;
  virtual bool plugged() const = 0;
  // A host is connected to the endpoint.
  virtual bool connected() const = 0;
  // A host driver uses the device (queues started / DRIVER_OK).
  virtual bool driver_bound() const = 0;

  // Stops taking new requests and waits for the in-flight ones; requests
  // already posted by the guest are processed after resume. events_only:
  // stop event delivery only (live update, step 1).
  virtual void suspend(bool events_only, std::function<void(Status)> done) = 0;
  virtual void resume(std::function<void(Status)> done) = 0;

  // Uses `desc`'s bdev (opened and claimed by the manager; nullptr = bdev
  // "none": requests fail with VIRTIO_BLK_S_IOERR) for the data path, with
  // serial `vblk_id`, then resumes unless `stay_suspended`. Errors: kBusy
  // (a bdev is attached; block size change while a driver is bound, §5.1).
  virtual void attach_bdev(bdev::Desc* desc, const std::string& vblk_id, bool stay_suspended,
                           std::function<void(Status)> done) = 0;
  // Stops the data path (in-flight requests complete), drops the channels
  // and forgets the bdev; the device stays suspended.
  virtual void detach_bdev(std::function<void()> done) = 0;

  // Changes the queue count (only while no driver is bound).
  virtual void set_num_queues(uint16_t n, std::function<void(Status)> done) = 0;

  // Per-queue counters (§5.4): [{queue_id, core_id, read_io_count,
  // write_io_count, flush_io_count}].
  virtual json io_stats() const = 0;
  // Per-queue ring state (§5.4): [{qid, state, hw_available_index, ...}].
  virtual void debug_stats(std::function<void(json)> done) = 0;
  // Ring state of a suspended device, per queue (indices and the requests to
  // process again), and back: after restore_state the device continues from
  // the saved position. Errors: kState (not suspended), kInvalidArgument
  // (malformed state, or one that does not fit the queues).
  virtual void save_state(std::function<void(Result<json>)> done) = 0;
  virtual void restore_state(const json& queues, std::function<void(Status)> done) = 0;
};

// Creates the device of controller `ctrl` with bdev `bdev` ("" = none; the
// manager already opened and claimed it) and, if `suspended`, suspended.
using BackendFactory = std::function<Result<std::unique_ptr<Backend>>(
    const std::string& ctrl, const CtrlConfig& cfg, const std::string& bdev, bool suspended)>;

// The factory of the real backend (backend_vhost.cc), or nullptr when the
// device/transport libraries are not built.
BackendFactory vhost_backend_factory();

}  // namespace vdpu::service::vblk
