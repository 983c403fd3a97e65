// The block-device layer: an asynchronous interface on iovecs, per-reactor
// channels, open/claim and hot-remove. Modules (malloc, null, uring, nvme …)
// implement Bdev + Channel and register the bdev with the Manager.
//
// Threads: Manager, Bdev and Desc are control-plane objects (main reactor).
// A Channel belongs to the reactor that created it; submit() and the
// completion callback run on that reactor only. The completion callback MAY
// run before submit() returns (null/malloc complete inline): callers must not
// touch the Io after submit() unless they own it again via the callback.
#pragma once

#include <sys/uio.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::bdev {

using json = nlohmann::json;

enum class IoType : uint8_t { kRead, kWrite, kFlush, kUnmap, kWriteZeroes, kReset, kCompare, kCount };
const char* io_type_name(IoType t);

enum class IoStatus : uint8_t {
  kSuccess = 0,
  kFailed,       // media / backend error
  kNoMem,        // out of resources: retry later (queue the Io)
  kAborted,      // bdev removed or channel destroyed
  kMiscompare,   // compare found different data
  kOutOfRange,   // LBA range beyond the bdev
  kUnsupported,  // io type not supported by this bdev
};
const char* io_status_name(IoStatus s);

struct Io;
using IoCb = void (*)(Io& io, IoStatus status);

// One I/O. Owned by the caller (embed it in the request), never allocated by
// the layer. Offsets and lengths are in blocks of the bdev's block_size.
// For read/write/compare the iovecs MUST describe exactly
// num_blocks * block_size bytes (Channel::submit completes kFailed otherwise);
// other types ignore iov.
struct Io {
  IoType type = IoType::kRead;
  uint32_t iovcnt = 0;
  uint64_t offset_blocks = 0;
  uint64_t num_blocks = 0;
  const iovec* iov = nullptr;
  IoCb cb = nullptr;
  void* cb_arg = nullptr;
  // Set by Channel::submit (ticks()); still valid in the completion callback,
  // so callers can measure latency with one more ticks() call.
  uint64_t submit_tsc = 0;
  // Scratch owned by the module while the Io is in flight.
  Io* next = nullptr;
  alignas(8) unsigned char module_ctx[64];
};

// A cheap monotonic clock for per-I/O latency: the TSC on x86-64 (invariant
// TSC assumed), steady_clock nanoseconds elsewhere. Any thread.
#if defined(__x86_64__)
inline uint64_t ticks() noexcept { return __rdtsc(); }
#else
inline uint64_t ticks() noexcept {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}
#endif
// Ticks per second (calibrated once against steady_clock; the first call may
// sleep up to 20 ms). Any thread.
uint64_t tick_rate();

// Total bytes of an iovec list.
inline uint64_t iov_bytes(const iovec* iov, uint32_t n) noexcept {
  uint64_t t = 0;
  for (uint32_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Per-channel counters; single writer (the channel's reactor), read by RPCs.
struct alignas(64) IoStats {
  std::atomic<uint64_t> bytes_read{0}, num_read_ops{0};
  std::atomic<uint64_t> bytes_written{0}, num_write_ops{0};
  std::atomic<uint64_t> bytes_unmapped{0}, num_unmap_ops{0};
  std::atomic<uint64_t> num_flush_ops{0}, num_write_zeroes_ops{0};
  std::atomic<uint64_t> read_latency_ticks{0}, write_latency_ticks{0}, unmap_latency_ticks{0};
  std::atomic<uint64_t> max_read_latency_ticks{0}, min_read_latency_ticks{UINT64_MAX};
  std::atomic<uint64_t> max_write_latency_ticks{0}, min_write_latency_ticks{UINT64_MAX};
  std::atomic<uint64_t> io_errors{0};
  // latency: ticks from submit to completion.
  void add(const Io& io, IoStatus st, uint32_t block_size, uint64_t latency) noexcept;
  // Adds `o` into *this (control plane; used when a channel goes away).
  void merge(const IoStats& o) noexcept;
};

class Bdev;

// A per-reactor I/O channel. Created on, and used only by, one reactor.
class Channel {
 public:
  explicit Channel(Bdev& bdev);
  virtual ~Channel();
  // Validates the range, counts, and hands the Io to the module.
  void submit(Io& io) noexcept;
  // Some modules (uring, nvme) complete from a poller; the owner of the
  // channel calls poll() from its reactor loop. Returns true if it did work.
  virtual bool poll() noexcept { return false; }
  // Event mode: called before the owning reactor sleeps (use it from the
  // owner's PrepareSleepFn). False when poll() already has work; true when
  // the channel will wake the reactor itself (e.g. uring's eventfd) or has
  // nothing in flight.
  virtual bool prepare_sleep() noexcept { return true; }
  Bdev& bdev() { return bdev_; }
  const IoStats& stats() const { return *stats_; }

 protected:
  virtual void do_submit(Io& io) noexcept = 0;
  // Modules call this to complete; it updates counters and calls io.cb.
  void complete(Io& io, IoStatus st) noexcept;

 private:
  static void count_and_complete(Io& io, IoStatus st);
  Bdev& bdev_;
  // Copies of the bdev's geometry and capabilities, taken at creation, so
  // that submit() needs no virtual call and touches one cache line.
  uint32_t supported_mask_ = 0;
  uint32_t block_size_ = 0;
  uint64_t num_blocks_ = 0;
  IoStats* stats_raw_ = nullptr;
  std::shared_ptr<IoStats> stats_;
};

class Desc;

// A block device. Created by a module, owned by the Manager once registered.
class Bdev {
 public:
  Bdev(std::string name, std::string module, uint32_t block_size, uint64_t num_blocks);
  virtual ~Bdev();

  const std::string& name() const { return name_; }
  const std::string& module() const { return module_; }
  const std::string& product_name() const { return product_name_; }
  uint32_t block_size() const { return block_size_; }
  uint64_t num_blocks() const { return num_blocks_; }
  const std::string& uuid() const { return uuid_; }
  void set_uuid(std::string u) { uuid_ = std::move(u); }
  // Optimal/required buffer alignment in bytes (1 = any).
  virtual uint32_t required_alignment() const { return 1; }
  virtual bool supports(IoType t) const = 0;
  // Called on the reactor that will use the channel; the channel must be
  // destroyed on that reactor, with no Io in flight, before the Desc closes.
  // Returns nullptr when out of resources (e.g. io_uring setup failed).
  virtual std::unique_ptr<Channel> create_channel() = 0;
  // Module-specific part of bdev_get_bdevs ("driver_specific").
  virtual json driver_specific() const { return json::object(); }
  // The RPC that recreates this bdev ({"method":…, "params":…}), or null.
  virtual json write_config() const { return nullptr; }

  // bdev_get_bdevs entry (SPDK field names).
  json info() const;
  // bdev_get_iostat entry: sums over all live and closed channels.
  json iostat() const;

  // --- claim / open bookkeeping (control plane) ---
  const std::string& claimed_by() const { return claim_module_; }
  size_t open_count() const { return descs_.size(); }

 protected:
  std::string product_name_ = "Block device";

 private:
  friend class Manager;
  friend class Channel;
  friend class Desc;
  std::shared_ptr<IoStats> new_channel_stats();
  void retire_channel_stats(const std::shared_ptr<IoStats>& s);
  std::string name_, module_;
  uint32_t block_size_;
  uint64_t num_blocks_;
  std::string uuid_;
  std::string claim_module_;
  std::vector<Desc*> descs_;
  mutable std::mutex stats_mu_;
  std::vector<std::shared_ptr<IoStats>> channel_stats_;
  IoStats retired_stats_;  // sums of destroyed channels (under stats_mu_)
};

// Called (control plane) when the bdev is being removed. The owner must stop
// I/O, destroy its channels and close the Desc; removal finishes after that.
using HotRemoveCb = std::function<void(Desc&)>;

// An open handle on a bdev.
class Desc {
 public:
  Bdev& bdev() { return *bdev_; }
  bool writable() const { return writable_; }
  // Claims the bdev exclusively for `module` (e.g. "nvme_ns NVMeCtrl1").
  Status claim(const std::string& module);
  // Closes the handle (and releases the claim it holds). Invalidates *this.
  void close();

 private:
  friend class Manager;
  Desc(Bdev* b, bool w, HotRemoveCb cb) : bdev_(b), writable_(w), on_remove_(std::move(cb)) {}
  Bdev* bdev_;
  bool writable_;
  bool claimed_ = false;
  HotRemoveCb on_remove_;
};

// The bdev registry. Control plane (main reactor) only.
class Manager {
 public:
  static Manager& get();

  Status add(std::unique_ptr<Bdev> b);
  Bdev* find(const std::string& name) const;
  std::vector<Bdev*> list() const;

  Result<Desc*> open(const std::string& name, bool writable, HotRemoveCb on_remove = nullptr);

  // Deletes a bdev on user request (bdev_*_delete RPCs): refused with kBusy
  // while claimed; open, unclaimed handles are notified (hot remove) and the
  // bdev is destroyed once they are all closed; done runs then.
  Status remove(const std::string& name, std::function<void()> done = nullptr);
  // Hot removal from below (backend gone): notifies every handle, claimed or
  // not, then destroys the bdev once all are closed.
  void hot_remove(const std::string& name, std::function<void()> done = nullptr);

  // JSON config of every bdev ("bdev" subsystem of save_config), after the
  // module-wide settings of register_module_config.
  json write_config() const;
  // A module's global settings for save_config, written before any bdev
  // (as SPDK writes bdev_nvme_set_options first): fn returns one
  // {"method":…, "params":…} object, or null. Static registration only.
  static void register_module_config(std::function<json()> fn);
  // Removes all bdevs (shutdown).
  void clear();

 private:
  friend class Desc;
  void close(Desc* d);
  void maybe_finish_remove(Bdev* b);
  std::map<std::string, std::unique_ptr<Bdev>> bdevs_;
  std::map<Bdev*, std::vector<std::function<void()>>> removing_;
};

// Deletes bdev `name` for a bdev_<module>_delete RPC: kNotFound ("No such
// device", as SPDK's -ENODEV) when it does not exist or belongs to another
// module; kBusy when claimed; otherwise as Manager::remove. Control plane.
Status remove_module_bdev(const std::string& name, const std::string& module,
                          std::function<void()> done);

// Generates an RFC 4122 v4 UUID string.
std::string generate_uuid();
// Validates a UUID string (8-4-4-4-12 hex).
bool valid_uuid(const std::string& s);

}  // namespace vdpu::bdev
