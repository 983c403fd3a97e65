// vdpu-perf: host-side drivers and benchmarks. Each workload (bdev, blk, nvme,
// net …) is a subcommand in its own perf_<name>.cc that registers itself.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace vdpu::perf {

// setup(app) adds the subcommand's options to `sub`; the returned function
// runs it after parsing and returns the process exit code.
using Setup = std::function<std::function<int()>(CLI::App& sub)>;

struct Registrar {
  Registrar(const char* name, const char* help, Setup setup);
};

}  // namespace vdpu::perf

#define VDPU_PERF_SUBCOMMAND(name, help, setup) \
  static ::vdpu::perf::Registrar _vdpu_perf_reg_##__LINE__(name, help, setup)
