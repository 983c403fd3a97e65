// The skeleton shared by the `*-target` subcommands (blk-target,
// nvme-target): their common options, the runtime on --cpumask, the null or
// malloc bdev behind the device, and an orderly stop on SIGINT/SIGTERM.
// Each target only builds its device and says how to stop it.
//
// Threads: run_target() runs the main reactor on the calling thread; the
// hooks run where their comments say.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"

namespace vdpu::rt {
class Runtime;
}

namespace vdpu::perf {

struct TargetOptions {
  std::string socket;
  std::string bdev = "null";  // null | malloc
  double size_mib = 1024;
  uint32_t block_size = 512;
  std::string cpumask = "0x1";
  bool event_mode = false;
};

// --socket (required), --bdev, --size-mib, --block-size, -m/--cpumask,
// --event-mode.
void add_target_options(CLI::App& app, TargetOptions& o, const char* socket_help);

struct TargetHooks {
  // Main reactor, once the bdev exists: builds the device and serves it on
  // o.socket. An error ends the run (exit code 1), printed as
  // "<target>: <message>".
  std::function<Status(rt::Runtime&)> start;
  // Main reactor, on SIGINT/SIGTERM: stops in order (drain, free); calls
  // done when finished, then the runtime stops.
  std::function<void(std::function<void()> done)> stop;
  // Calling thread, after the runtime stopped: frees what start built.
  std::function<void()> release;
};

// Runs target `name` with a bdev called `bdev_name` until SIGINT/SIGTERM.
// Returns the exit code: 0, 1 (start failed), 2 (bad --cpumask).
int run_target(const char* name, const TargetOptions& o, const std::string& bdev_name, TargetHooks h);

}  // namespace vdpu::perf
