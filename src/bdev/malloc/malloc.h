// malloc bdev: a RAM disk (SPDK's bdev_malloc). Zero-filled at creation,
// data lost when deleted. Reads and writes are memcpy and complete inline.
#pragma once

#include <cstdint>
#include <string>

#include "bdev/bdev.h"

namespace vdpu::bdev::malloc {

inline constexpr const char* kModule = "malloc";

struct Options {
  std::string name;  // empty: the first free "MallocN"
  uint64_t num_blocks = 0;
  uint32_t block_size = 512;  // multiple of 512
  std::string uuid;           // empty: generated
  uint32_t optimal_io_boundary = 0;  // in blocks; 0 = none
};

// Creates the bdev and registers it with the Manager. Control plane.
// Errors: kInvalidArgument (bad size/uuid/name), kExists (name or uuid taken),
// kNoMemory (allocation failed).
Result<Bdev*> create(const Options& o);

// Deletes a malloc bdev (see remove_module_bdev). Control plane.
Status destroy(const std::string& name, std::function<void()> done = nullptr);

}  // namespace vdpu::bdev::malloc
