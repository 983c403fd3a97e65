// The VBLK manager (spec snap-storage §1.2, §4.2, §4.3, §5): owns the
// virtio-blk controllers, binds each to one emulated function of the
// emulation manager, holds its bdev (opened and claimed, so the bdev cannot
// be deleted while in use), exposes the function's endpoint (hotplug) and
// implements every rule of the spec with a clear error.
//
// Threads: control plane (main reactor) only. Asynchronous operations
// (suspend, detach, destroy, hotplug with wait) report through `done` on the
// main reactor. Errors: kNotFound (controller/function/bdev), kExists (name
// or function already used), kInvalidArgument (bad or contradicting
// parameters), kState (wrong controller/function state), kBusy (a host
// driver uses the function, or another operation is in progress),
// kTimeout (wait_for_done expired), kIo (state files).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "service/emu/emu_manager.h"
#include "service/vblk/backend.h"
#include "service/vblk/vblk_params.h"

namespace vdpu::bdev {
class Desc;
}

namespace vdpu::service::vblk {

using Done = std::function<void(Status)>;

struct Controller {
  std::string name;
  emu::Function* fn = nullptr;
  CtrlConfig cfg;
  std::string bdev_name;         // "" = none
  bdev::Desc* desc = nullptr;    // open + claimed while a bdev is attached
  std::unique_ptr<Backend> be;
  bool suspended = false;        // effective: user suspend or bdev detached
  bool user_suspended = false;   // created --suspended or suspend RPC
  bool busy = false;             // an asynchronous operation is running
};

class Manager {
 public:
  Manager(emu::Manager& emu, BackendFactory factory);
  ~Manager();

  emu::Manager& emu() { return emu_; }
  Controller* find(const std::string& name);

  // §5.3. Returns the controller name. Exposes the endpoint at once when the
  // function is powered on (static, legacy-attached, or hot-plugged).
  Result<std::string> create(const CreateRequest& r);
  // §5.4. force: destroy a VF controller whose driver is still bound.
  // release_msix (§9 step 4): return a VF's MSI-X to the PF pool.
  void destroy(const std::string& ctrl, bool force, bool release_msix, Done done);
  void suspend(const std::string& ctrl, bool events_only, Done done);
  void resume(const std::string& ctrl, Done done);
  // bdev "" / "none": no backend (requests fail); resumes unless suspended
  // by the user.
  void bdev_attach(const std::string& ctrl, const std::string& bdev,
                   const std::optional<std::string>& vblk_id, Done done);
  void bdev_detach(const std::string& ctrl, Done done);
  Result<nlohmann::json> list(const std::optional<std::string>& ctrl);
  void modify(const std::optional<std::string>& ctrl, std::optional<uint64_t> num_queues,
              std::optional<uint64_t> num_msix, Done done);
  Result<nlohmann::json> io_stats(const std::string& ctrl);
  void debug_stats(const std::string& ctrl, std::function<void(Result<nlohmann::json>)> done);
  void state_save(const std::string& ctrl, const std::string& file, Done done);
  void state_restore(const std::string& ctrl, const std::string& file, Done done);
  Status vfs_msix_reclaim(const std::string& ctrl);

  // --- §4.2 two-step hotplug ---
  Result<nlohmann::json> function_create();
  Status function_destroy(const std::string& vuid);
  void hotplug(const std::string& ctrl, bool wait, std::optional<uint64_t> timeout_ms, Done done);
  void hotunplug(const std::string& ctrl, bool wait, Done done);

  // --- §4.3 legacy API ---
  Result<nlohmann::json> device_attach(uint32_t num_msix);
  void detach_prepare(const emu::Selector& sel, const std::optional<std::string>& ctrl, Done done);
  Status device_detach(const emu::Selector& sel, bool force);

  // Graceful shutdown: destroys every controller (unplug, drain, close
  // bdevs) without touching the saved configuration; done when finished.
  void shutdown(std::function<void()> done);

  // The RPCs that recreate every controller (save_config, §10.4).
  nlohmann::json write_config() const;
  // Called after every change of the saved configuration.
  void set_on_change(std::function<void()> fn) { on_change_ = std::move(fn); }

  // Default timeout of hotplug --wait_for_done without --timeout.
  static constexpr uint64_t kDefaultHotplugTimeoutMs = 30000;

 private:
  Result<Controller*> get(const std::string& ctrl, bool idle = true);
  Result<bdev::Desc*> open_bdev(const std::string& ctrl, const std::string& bdev);
  void on_bdev_removed(bdev::Desc& d);
  void release_bdev(Controller& c, std::function<void()> done);
  std::string next_name();
  void changed() {
    if (on_change_) on_change_();
  }
  void wait_connected(const std::string& ctrl, uint64_t deadline_ns, Done done);

  emu::Manager& emu_;
  BackendFactory factory_;
  std::map<std::string, std::unique_ptr<Controller>> ctrls_;
  uint32_t next_id_ = 1;
  std::function<void()> on_change_;
};

// The process-wide VBLK manager (real backend, process-wide emu manager).
Manager& manager();
void set_manager(std::unique_ptr<Manager> m);

}  // namespace vdpu::service::vblk
