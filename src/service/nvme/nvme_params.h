// Parameters of nvme_controller_create (spec snap-storage §6.5) read from
// validated JSON-RPC params (src/rpc/schema/nvme.json), with the spec's
// defaults and ranges applied here (the schema has no defaults for them, so
// that a `snapshot` file can supply what the request leaves out).
//
// Thread: any (pure parsing). Errors: kInvalidArgument naming the parameter.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"
#include "service/emu/emu_manager.h"

namespace vdpu::service::nvme {

struct CtrlParams {
  std::string nqn;                    // required
  emu::Selector fn;                   // vuid | pf_id[+vf_id] | vhca_id | pci_bdf
  std::optional<std::string> ctrl;    // default NVMeCtrl<N>
  uint32_t num_queues = 1;            // 1-31
  uint32_t mdts = 7;                  // 1-7
  uint32_t fw_slots = 4;              // 1-7
  std::optional<bool> write_zeroes;   // unset: all attached namespaces decide (§6.1)
  std::optional<bool> compare;
  bool compare_write = false;
  bool write_uncor = false;
  bool suspended = false;
  std::string snapshot;               // file of nvme_controller_snapshot_get
  bool dynamic_msix = false;          // PF only
  std::optional<uint32_t> vf_num_msix;  // VF only
  bool admin_only = false;
  uint32_t quirks = 0;
  bool live_update_listener = false;
  uint32_t max_queue_entries = 512;   // CAP.MQES + 1 (nvmf transport max_queue_depth)

  // The params of an nvme_controller_create that recreates this controller
  // (function by VUID, name, and every non-default option).
  nlohmann::json to_json(const std::string& vuid, const std::string& name) const;
};

// Reads the request. Parameters absent from `p` keep the values of `base`
// (defaults, or a snapshot's configuration).
Result<CtrlParams> parse_ctrl_params(const nlohmann::json& p, CtrlParams base = {});

// The configuration saved by nvme_controller_snapshot_get in `file` (the
// base of nvme_controller_create --snapshot). Errors: kNotFound, kInvalidArgument.
Result<CtrlParams> load_snapshot(const std::string& file);

}  // namespace vdpu::service::nvme
