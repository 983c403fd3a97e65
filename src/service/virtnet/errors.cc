#include "service/virtnet/errors.h"

#include <cerrno>
#include <cstring>

namespace vdpu::service::virtnet {
namespace {

struct Entry {
  int err;
  const char* name;
  const char* text;
};

// virtio-net spec §5, in table order.
constexpr Entry kErrors[] = {
    {VIRTNET_ERR_FEATURE_VALIDATE, "VIRTNET_ERR_FEATURE_VALIDATE", "Failed to validate device feature"},
    {VIRTNET_ERR_DEV_NOT_FOUND, "VIRTNET_ERR_DEV_NOT_FOUND", "Failed to find device"},
    {VIRTNET_ERR_DEV_NOT_HOTPLUG, "VIRTNET_ERR_DEV_NOT_HOTPLUG", "Failed - device is not hotplugged"},
    {VIRTNET_ERR_DEV_NOT_STARTED, "VIRTNET_ERR_DEV_NOT_STARTED", "Failed - device is not started"},
    {VIRTNET_ERR_DRIVER_LOADED, "VIRTNET_ERR_DRIVER_LOADED", "Failed - virtio driver should not be loaded"},
    {VIRTNET_ERR_EPOLL_ADD, "VIRTNET_ERR_EPOLL_ADD", "Failed to add epoll"},
    {VIRTNET_ERR_ID_OUT_OF_RANGE, "VIRTNET_ERR_ID_OUT_OF_RANGE", "Failed - ID input exceeds max range"},
    {VIRTNET_ERR_INVALID_VUID, "VIRTNET_ERR_INVALID_VUID", "Failed - VUID is invalid"},
    {VIRTNET_ERR_INVALID_MAC, "VIRTNET_ERR_INVALID_MAC", "Failed - MAC is invalid"},
    {VIRTNET_ERR_INVALID_MSIX, "VIRTNET_ERR_INVALID_MSIX", "Failed - MSIX is invalid"},
    {VIRTNET_ERR_INVALID_MTU, "VIRTNET_ERR_INVALID_MTU", "Failed - MTU is invalid"},
    {VIRTNET_ERR_PORT_CTX_NOT_FOUND, "VIRTNET_ERR_PORT_CTX_NOT_FOUND", "Failed to find port context"},
    {VIRTNET_ERR_RECOVERY_LOAD_CFG, "VIRTNET_ERR_RECOVERY_LOAD_CFG", "Failed to load config from recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_CFG, "VIRTNET_ERR_RECOVERY_SAVE_CFG", "Failed to save config into recovery file"},
    {VIRTNET_ERR_RECOVERY_CREATE, "VIRTNET_ERR_RECOVERY_CREATE", "Failed to create recovery file"},
    {VIRTNET_ERR_RECOVERY_DEL_MAC, "VIRTNET_ERR_RECOVERY_DEL_MAC", "Failed to delete MAC in recovery file"},
    {VIRTNET_ERR_RECOVERY_LOAD_MAC, "VIRTNET_ERR_RECOVERY_LOAD_MAC", "Failed to load MAC from recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_MAC, "VIRTNET_ERR_RECOVERY_SAVE_MAC", "Failed to save MAC into recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_MQ, "VIRTNET_ERR_RECOVERY_SAVE_MQ", "Failed to save MQ into recovery file"},
    {VIRTNET_ERR_RECOVERY_LOAD_PF_NUM, "VIRTNET_ERR_RECOVERY_LOAD_PF_NUM", "Failed to load PF number from recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_RX_MODE, "VIRTNET_ERR_RECOVERY_SAVE_RX_MODE", "Failed to save RX mode into recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_PF_SF_NUM, "VIRTNET_ERR_RECOVERY_SAVE_PF_SF_NUM", "Failed to save PF and SF number into recovery file"},
    {VIRTNET_ERR_RECOVERY_LOAD_SF_NUM, "VIRTNET_ERR_RECOVERY_LOAD_SF_NUM", "Failed to load SF number from recovery file"},
    {VIRTNET_ERR_SF_APPLY_MAC_FLOW, "VIRTNET_ERR_SF_APPLY_MAC_FLOW", "Failed to apply MAC flow by SF"},
    {VIRTNET_ERR_SF_UPDATE_MQ, "VIRTNET_ERR_SF_UPDATE_MQ", "Failed to update MQ by SF"},
    {VIRTNET_ERR_SF_SET_RX_MODE, "VIRTNET_ERR_SF_SET_RX_MODE", "Failed to set RX mode by SF"},
    {VIRTNET_ERR_SNAP_CTRL_OPEN, "VIRTNET_ERR_SNAP_CTRL_OPEN", "Failed to open SNAP device control"},
    {VIRTNET_ERR_SNAP_CROSS_MKEY, "VIRTNET_ERR_SNAP_CROSS_MKEY", "Failed to create SNAP cross mkey"},
    {VIRTNET_ERR_SNAP_DMA_Q, "VIRTNET_ERR_SNAP_DMA_Q", "Failed to create SNAP DMA Q"},
    {VIRTNET_ERR_SNAP_QUERY, "VIRTNET_ERR_SNAP_QUERY", "Failed to query SNAP device"},
    {VIRTNET_ERR_SNAP_MODIFY, "VIRTNET_ERR_SNAP_MODIFY", "Failed to modify SNAP device"},
    {VIRTNET_ERR_SNAP_HOTPLUG, "VIRTNET_ERR_SNAP_HOTPLUG", "Failed to hotplug SNAP PF"},
    {VIRTNET_ERR_VQ_PERIOD_UPDATE, "VIRTNET_ERR_VQ_PERIOD_UPDATE", "Failed to update VQ period"},
    {VIRTNET_ERR_INVALID_QUEUE_SIZE, "VIRTNET_ERR_INVALID_QUEUE_SIZE", "Failed - queue size is invalid"},
    {VIRTNET_ERR_SF_PORT_ADD, "VIRTNET_ERR_SF_PORT_ADD", "Failed to add SF port"},
    {VIRTNET_ERR_WQ_ALLOC, "VIRTNET_ERR_WQ_ALLOC", "Failed to allocate work queue"},
    {VIRTNET_ERR_ETH_VQS_OP_ALLOC, "VIRTNET_ERR_ETH_VQS_OP_ALLOC", "Failed to allocate eth VQS operation"},
    {VIRTNET_ERR_ETH_VQS_OP_COMPLETE, "VIRTNET_ERR_ETH_VQS_OP_COMPLETE", "Failed to complete eth VQS operation"},
    {VIRTNET_ERR_JSON_OBJ_MISSING, "VIRTNET_ERR_JSON_OBJ_MISSING", "Failed - JSON object does not exist"},
    {VIRTNET_ERR_DEV_LOAD_PREPARE, "VIRTNET_ERR_DEV_LOAD_PREPARE", "Failed to prepare device load"},
    {VIRTNET_ERR_SW_MIGRATE, "VIRTNET_ERR_SW_MIGRATE", "Failed to software-migrate device"},
    {VIRTNET_ERR_DEV_MIGRATING, "VIRTNET_ERR_DEV_MIGRATING", "Failed - device is migrating"},
    {VIRTNET_ERR_QUEUE_SIZE_POW2, "VIRTNET_ERR_QUEUE_SIZE_POW2", "Error - queue size must be greater than 2 and a power of 2"},
    {VIRTNET_WARN_DEV_NOT_FUNCTIONAL, "VIRTNET_WARN_DEV_NOT_FUNCTIONAL", "Warning - this device won't be functional, don't probe with virtio driver"},
    {VIRTNET_ERR_SF_POOL_CREATING, "VIRTNET_ERR_SF_POOL_CREATING", "SF pool is being created, retry later"},
    {VIRTNET_ERR_DST_PORT_RULE, "VIRTNET_ERR_DST_PORT_RULE", "Failed to set dst port rule"},
    {VIRTNET_ERR_OPT_NOT_SUPPORTED, "VIRTNET_ERR_OPT_NOT_SUPPORTED", "Option is not supported"},
    {VIRTNET_ERR_SF_CREATE, "VIRTNET_ERR_SF_CREATE", "Failed to create SF"},
    {VIRTNET_ERR_HOTPLUG_SF_NUM_RANGE, "VIRTNET_ERR_HOTPLUG_SF_NUM_RANGE", "Hotplug device SF number should be between 2000 and 2999"},
    {VIRTNET_ERR_SF_NUM_IN_USE, "VIRTNET_ERR_SF_NUM_IN_USE", "SF number is already used"},
    {VIRTNET_ERR_INVALID_QUEUE_INDEX, "VIRTNET_ERR_INVALID_QUEUE_INDEX", "Queue index is invalid"},
    {VIRTNET_ERR_INVALID_SPEED, "VIRTNET_ERR_INVALID_SPEED", "Speed is invalid, check help menu for supported link speeds"},
    {VIRTNET_ERR_INVALID_HASH_TYPES, "VIRTNET_ERR_INVALID_HASH_TYPES", "Hash type is invalid, check help menu for supported hash types"},
    {VIRTNET_ERR_INVALID_RSS_KEY_SIZE, "VIRTNET_ERR_INVALID_RSS_KEY_SIZE", "RSS max key size is invalid, supported key size is 40"},
    {VIRTNET_ERR_RECOVERY_SAVE_OFFLOADS, "VIRTNET_ERR_RECOVERY_SAVE_OFFLOADS", "Failed to save OFFLOADS into recovery file"},
    {VIRTNET_ERR_SF_UPDATE_OFFLOADS, "VIRTNET_ERR_SF_UPDATE_OFFLOADS", "Failed to update OFFLOADS by SF"},
    {VIRTNET_ERR_READLINK, "VIRTNET_ERR_READLINK", "Failed to readlink"},
    {VIRTNET_ERR_INVALID_PATH, "VIRTNET_ERR_INVALID_PATH", "Error - Path format is invalid"},
    {VIRTNET_ERR_Q_COUNTER_ALLOC, "VIRTNET_ERR_Q_COUNTER_ALLOC", "Failed to alloc q counter"},
    {VIRTNET_ERR_SAVE_DIRTY_LOG, "VIRTNET_ERR_SAVE_DIRTY_LOG", "Failed to save dirty log"},
    {VIRTNET_ERR_DEL_DIRTY_LOG, "VIRTNET_ERR_DEL_DIRTY_LOG", "Failed to delete dirty log"},
    {VIRTNET_ERR_SAVE_LM_STATUS, "VIRTNET_ERR_SAVE_LM_STATUS", "Failed to save LM status"},
    {VIRTNET_ERR_LM_STATUS_NOT_FOUND, "VIRTNET_ERR_LM_STATUS_NOT_FOUND", "Failed to found LM status record"},
    {VIRTNET_ERR_SAVE_DEV_MODE, "VIRTNET_ERR_SAVE_DEV_MODE", "Failed to save dev mode"},
    {VIRTNET_ERR_DEV_MODE_NOT_FOUND, "VIRTNET_ERR_DEV_MODE_NOT_FOUND", "Failed to found dev mode record"},
    {VIRTNET_ERR_DEV_NOT_READY_UNPLUG, "VIRTNET_ERR_DEV_NOT_READY_UNPLUG", "Error - Device is not ready to be unplugged please check host and retry"},
    {VIRTNET_ERR_RECOVERY_DEL_MAC_TABLE, "VIRTNET_ERR_RECOVERY_DEL_MAC_TABLE", "Failed to delete MAC table in recovery file"},
    {VIRTNET_ERR_RECOVERY_LOAD_MAC_TABLE, "VIRTNET_ERR_RECOVERY_LOAD_MAC_TABLE", "Failed to load MAC table from recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_MAC_TABLE, "VIRTNET_ERR_RECOVERY_SAVE_MAC_TABLE", "Failed to save MAC table into recovery file"},
    {VIRTNET_ERR_RECOVERY_DEL_HASH_CFG, "VIRTNET_ERR_RECOVERY_DEL_HASH_CFG", "Failed to delete hash cfg in recovery file"},
    {VIRTNET_ERR_RECOVERY_LOAD_HASH_CFG, "VIRTNET_ERR_RECOVERY_LOAD_HASH_CFG", "Failed to load hash cfg from recovery file"},
    {VIRTNET_ERR_RECOVERY_SAVE_HASH_CFG, "VIRTNET_ERR_RECOVERY_SAVE_HASH_CFG", "Failed to save hash cfg into recovery file"},
    {VIRTNET_ERR_GET_VF_DEV, "VIRTNET_ERR_GET_VF_DEV", "Failed to get VF device"},
    {VIRTNET_ERR_INVALID_QUEUES, "VIRTNET_ERR_INVALID_QUEUES", "Failed - QUEUES is invalid"},
    {VIRTNET_ERR_DEBUGFS_SAVE, "VIRTNET_ERR_DEBUGFS_SAVE", "Failed to save into debugfs file"},
    {VIRTNET_ERR_DEBUGFS_DELETE, "VIRTNET_ERR_DEBUGFS_DELETE", "Failed to delete from debugfs file"},
};
static_assert(sizeof(kErrors) / sizeof(kErrors[0]) == 76);

const Entry* find(int err) {
  if (err > -1000 || err < -1075) return nullptr;
  const Entry& e = kErrors[-1000 - err];
  return e.err == err ? &e : nullptr;
}

}  // namespace

std::string errstr(int err) {
  if (err == 0) return "Success";
  if (auto* e = find(err)) return e->text;
  if (err < 0 && err > -1000) return std::strerror(-err);
  return "Unknown error " + std::to_string(err);
}

const char* errname(int err) {
  auto* e = find(err);
  return e ? e->name : "";
}

nlohmann::json err_json(int err) { return {{"errno", err}, {"errstr", errstr(err)}}; }

int errno_of(Errc e) {
  switch (e) {
    case Errc::kOk: return 0;
    case Errc::kInvalidArgument: return -EINVAL;
    case Errc::kNotFound: return -ENODEV;
    case Errc::kExists: return -EEXIST;
    case Errc::kBusy: return -EBUSY;
    case Errc::kNoMemory: return -ENOMEM;
    case Errc::kUnsupported: return -EOPNOTSUPP;
    case Errc::kTimeout: return -ETIMEDOUT;
    case Errc::kPermission: return -EPERM;
    default: return -EIO;
  }
}

}  // namespace vdpu::service::virtnet
