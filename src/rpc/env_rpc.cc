// The SNAP environment variables (snap-storage §7) and snap_global_param_list
// (§7.1).
#include <cstdlib>

#include "rpc/dispatch.h"
#include "rpc/framework.h"

namespace vdpu::rpc {

const std::vector<EnvParam>& snap_env_params() {
  // §7.1 list first (in the order of its example), then the rest of §7.
  static const std::vector<EnvParam> v = {
      {"SNAP_ENABLE_POLL_SKIP", "0"},
      {"SNAP_POLL_CYCLE_SIZE", "16"},
      {"SNAP_RPC_LOG_ENABLE", "1"},
      {"SNAP_MEMPOOL_SIZE_MB", "1024"},
      {"SNAP_MEMPOOL_4K_BUFFS_PER_CORE", "1024"},
      {"SNAP_RDMA_ZCOPY_ENABLE", "1"},
      {"SNAP_TCP_XLIO_ENABLE", "1"},
      {"SNAP_TCP_XLIO_TX_ZCOPY", "1"},
      {"MLX5_SHUT_UP_BF", "0"},
      {"SNAP_SHARED_RX_CQ", "1"},
      {"SNAP_SHARED_TX_CQ", "1"},
      {"NVME_BDEV_RESET_ENABLE", "1"},
      {"VBLK_RECOVERY_SHM", "1"},
      {"SNAP_EMULATION_MANAGER", ""},
      {"VIRTIO_EMU_PROVIDER", "dpu"},
      {"dpa_nvme_core_mask", ""},
      {"dpa_helper_core_mask", ""},
      {"SNAP_RPC_INIT_CONF", ""},
      {"SPDK_RPC_INIT_CONF", ""},
      {"SNAP_RPC_INIT_CONF_JSON", ""},
      {"SPDK_RPC_INIT_CONF_JSON", ""},
      {"SPDK_XLIO_PATH", ""},
      {"XLIO_RX_BUFS", ""},
      {"APP_ARGS", ""},
      {"SNAP_RPC_LOG_FILE", "/var/log/snap-log/rpc-log"},
  };
  return v;
}

json snap_global_param_list() {
  json out = json::array();
  for (auto& p : snap_env_params()) {
    const char* v = getenv(p.name);
    // §7.1: "<NAME> : <set|not set> : <value>"; value = effective value.
    out.push_back(std::string(p.name) + " : " + (v ? "set" : "not set") + " : " + (v ? v : p.def) +
                  " ");
  }
  return out;
}

namespace {
void snap_global_param_list_rpc(const json&, Responder r) { r.result(snap_global_param_list()); }
}  // namespace

void register_env_methods() {
  register_method("snap_global_param_list", snap_global_param_list_rpc, kAny);
}

}  // namespace vdpu::rpc
