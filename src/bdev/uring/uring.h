// uring bdev: a file or block device through io_uring (SPDK's bdev_uring).
// One ring per channel, created on the channel's reactor; submissions are
// batched (one io_uring_enter per poll), completions are reaped in poll()
// without a system call. Uses O_DIRECT when the file system allows it.
#pragma once

#include <cstdint>
#include <string>

#include "bdev/bdev.h"

namespace vdpu::bdev::uring {

inline constexpr const char* kModule = "uring";

struct Options {
  std::string name;      // required
  std::string filename;  // regular file or block device
  uint32_t block_size = 0;  // 0: the device's logical block size (512 for files)
  std::string uuid;         // empty: generated
  uint32_t ring_entries = 256;  // SQ entries per channel = max I/Os in flight
  bool direct = true;           // try O_DIRECT (falls back with a log line)
};

// Opens the file and registers the bdev. Control plane.
// Errors: kInvalidArgument (bad block size, too small, not a file/device,
// bad uuid), kNotFound / kPermission / kIo (open failed), kExists.
Result<Bdev*> create(const Options& o);

// Deletes a uring bdev (see remove_module_bdev). Control plane.
Status destroy(const std::string& name, std::function<void()> done = nullptr);

}  // namespace vdpu::bdev::uring
