// null bdev: accepts every I/O and moves no data (SPDK's bdev_null). Reads
// leave the caller's buffers untouched, as SPDK does. Completes inline.
#pragma once

#include <cstdint>
#include <string>

#include "bdev/bdev.h"

namespace vdpu::bdev::null {

inline constexpr const char* kModule = "null";

struct Options {
  std::string name;  // required
  uint64_t num_blocks = 0;
  uint32_t block_size = 512;  // multiple of 512
  std::string uuid;           // empty: generated
};

// Creates the bdev and registers it with the Manager. Control plane.
// Errors: kInvalidArgument, kExists.
Result<Bdev*> create(const Options& o);

// Deletes a null bdev (see remove_module_bdev). Control plane.
Status destroy(const std::string& name, std::function<void()> done = nullptr);

}  // namespace vdpu::bdev::null
