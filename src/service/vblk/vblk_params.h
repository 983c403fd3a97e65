// Decoding and checking of virtio-blk controller parameters (spec
// snap-storage §5.3, §5.4). Pure functions: no manager state.
#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "service/emu/emu_manager.h"
#include "service/vblk/backend.h"

namespace vdpu::service::vblk {

struct CreateRequest {
  emu::Selector fn;
  std::optional<std::string> ctrl;
  CtrlConfig cfg;
  std::string bdev;  // "" or "none" = no bdev
  bool suspended = false;
};

constexpr uint32_t kMaxQueues = 64;      // §5.3 num_queues 1-64
constexpr uint32_t kMaxQueueSize = 256;  // §5.3 queue_size 1-256

// Errors: kInvalidArgument naming the parameter and the allowed values.
Status check_num_queues(uint64_t n);
Status check_queue_size(uint64_t n);
Status check_seg_max(uint64_t seg_max, uint32_t queue_size);
Result<CreateRequest> parse_create(const nlohmann::json& params);

// A controller name given by the user: 1-64 chars of [A-Za-z0-9_.-].
Status check_ctrl_name(const std::string& name);

}  // namespace vdpu::service::vblk
