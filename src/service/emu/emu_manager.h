// The emulation manager ("function factory", spec snap-storage §1.4): owns
// every emulated PCIe function of one manager (name from env
// SNAP_EMULATION_MANAGER, default "emu0"): the static PFs (and their VFs)
// of the static emulation config and up to PCI_SWITCH_EMULATION_NUM_PORT-1
// hotplug PFs. Gives each function its pf/vf index, vhca_id, VUID (stable
// across restarts: the instance serial and the hotplug functions are
// persisted in <state_dir>/serial and <state_dir>/emu-<name>.json), a synthesized BDF, its hotplug
// state, the controller bound to it and its transport endpoint (for
// vhost-user functions the socket <emu_dir>/<vuid>).
//
// Threads: control plane (main reactor) only. Errors: Result/Status with
// kInvalidArgument (bad selector), kNotFound (no such function), kBusy
// (controller bound / slot table full), kState (wrong hotplug state).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "service/emu/function.h"

namespace vdpu::service::emu {

using json = nlohmann::json;

// One static PF kind of the static emulation config (§14).
struct PfConfig {
  EmuType type = EmuType::kVblk;
  uint32_t num_msix = 0;      // 0: type default
  uint32_t num_vfs = 0;
  uint32_t vf_num_msix = 0;   // 0: type default
};

struct Layout {
  std::vector<PfConfig> static_pfs;  // in order: index per type = order of that type
  uint32_t hotplug_slots = 31;       // PCI_SWITCH_EMULATION_NUM_PORT - 1
};

}  // namespace vdpu::service::emu
namespace vdpu::pci {
struct EmuConfig;
}
namespace vdpu::service::emu {

// The static functions and hotplug slots of a parsed static emulation config.
Layout layout_from_config(const pci::EmuConfig& c);

// The embedded default when no config file exists: one static virtio-blk PF
// and one static NVMe PF, 31 hotplug slots.
Layout default_layout();

struct Options {
  std::string name = "emu0";
  Layout layout = default_layout();
  std::string state_dir;  // "" = nothing persisted (serial random per run)
  std::string emu_dir = "/var/tmp/vdpu";
};

// Options from the environment: SNAP_EMULATION_MANAGER, VDPU_EMU_CONFIG
// (or /etc/vdpu/emu.conf if present), VDPU_STATE_DIR (default
// /var/lib/vdpu), VDPU_EMU_DIR (default /var/tmp/vdpu). A malformed config
// file is an error (kInvalidArgument naming the line).
Result<Options> options_from_env();

// How an RPC names a function (§1.4): any non-empty subset; all given
// identifiers must designate the same function.
struct Selector {
  std::optional<std::string> vuid;
  std::optional<uint32_t> vhca_id;
  std::optional<uint32_t> pf_id;
  std::optional<uint32_t> vf_id;
  std::optional<std::string> pci_bdf;
  bool empty() const { return !vuid && !vhca_id && !pf_id && !vf_id && !pci_bdf; }
};

class Manager {
 public:
  // Builds the static functions and reloads persisted state (serial, hotplug
  // functions). Creates emu_dir. Errors: kIo when a directory cannot be made
  // or the state file is corrupt.
  static Result<std::unique_ptr<Manager>> create(Options opts);

  const std::string& name() const { return opts_.name; }
  const std::string& serial() const { return serial_; }
  const std::string& emu_dir() const { return opts_.emu_dir; }
  uint32_t hotplug_slots() const { return opts_.layout.hotplug_slots; }

  Function* find_vuid(const std::string& vuid) const;
  Function* find_vhca(uint32_t vhca_id) const;
  Function* find_index(EmuType type, uint32_t pf, std::optional<uint32_t> vf) const;
  Function* find_bdf(const std::string& bdf) const;
  // Resolves a selector to a function of `type`. Errors: kInvalidArgument
  // (empty selector, vf_id without pf_id, identifiers disagreeing, wrong
  // type), kNotFound.
  Result<Function*> select(EmuType type, const Selector& s) const;

  // A new hotplug PF in the first free slot (state POWER_OFF). Errors: kBusy
  // when every slot is used. Persisted.
  Result<Function*> create_hotplug(EmuType type);
  // Removes a hotplug PF. Errors: kNotFound, kInvalidArgument (not a hotplug
  // function), kBusy (controller bound; unless force).
  Status destroy_hotplug(const std::string& vuid, bool force = false);
  void set_state(Function& f, HotplugState s);

  // Binds controller `ctrl` to f (one controller per function, §5.1).
  // Errors: kExists when f already has a controller.
  Status bind(Function& f, const std::string& ctrl);
  void unbind(Function& f);

  // SR-IOV: the guest enabled n VFs of pf (sriov_numvfs). Errors:
  // kInvalidArgument when n exceeds the configured VFs.
  Status set_vfs_enabled(Function& pf, uint32_t n);

  // --- SR-IOV MSI-X / queue pools (§9) ---
  // Moves every VF's MSI-X vectors (and the queues they serve) to the PF's
  // free pool. Errors: kInvalidArgument (not a PF with VFs), kBusy (a VF is
  // enabled or has a controller).
  Status reclaim_vfs_msix(Function& pf);
  // Takes `msix` vectors and `queues` queues from the parent PF's pool for a
  // VF controller. Errors: kState (pool not reclaimed: PF not created with
  // dynamic MSI-X), kInvalidArgument (outside [vf_min, vf_max] or above what
  // is free).
  Status take_vf_resources(Function& vf, uint32_t msix, uint32_t queues);
  // Returns what take_vf_resources gave (VF teardown with release).
  void release_vf_resources(Function& vf);

  // emulation_function_list (§4.1); all = also inactive VFs.
  json list(bool all) const;
  // Every PF (static then hotplug), in list order.
  std::vector<Function*> pfs() const;

 private:
  explicit Manager(Options o) : opts_(std::move(o)) {}
  Status load_state();
  void save_state() const;
  std::string state_path() const;
  void build_static();
  Function* add_hotplug(EmuType type, uint32_t slot, uint32_t vhca_id, HotplugState st);
  std::string make_vuid(EmuType t, uint32_t s, uint32_t d, uint32_t f, int32_t vf) const;
  json entry(const Function& f) const;
  template <class Fn>
  void for_each(Fn&& fn) const;

  Options opts_;
  std::string serial_;
  std::vector<std::unique_ptr<Function>> static_;
  std::vector<std::unique_ptr<Function>> hotplug_;  // sorted by slot
  uint32_t next_vhca_ = 0;
};

// The process-wide manager, created from options_from_env() on first use
// (a failure is logged and falls back to the embedded default layout).
Manager& manager();
// Tests and the daemon: replaces the process-wide manager.
void set_manager(std::unique_ptr<Manager> m);

}  // namespace vdpu::service::emu
