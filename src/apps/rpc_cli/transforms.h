// CLI transforms (docs/rpc-schema.md `cli.transform`): C++ hooks that turn
// the CLI-only `cli.extra` arguments into request parameters, e.g. rpc.py's
// bdev_malloc_create total_size (MiB) + block_size → num_blocks.
//
// Threads: any; the table is constant.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::rpc::cli {

// Where a command line is translated. The vdpu-rpc CLI reads from its stdin
// when rpc.py would (load_config without -j); the daemon's init files have no
// stdin to give: such a line is refused instead of blocking start-up.
struct CliContext {
  bool allow_stdin = true;
};

struct Transform {
  const char* name;
  // rpc.py's positional order, when the method's positionals mix params and
  // extras (used unless the schema gives cli.positionals).
  std::vector<std::string> positionals;
  // params: the request params parsed so far (modified in place); extras: the
  // cli.extra values given. Errors: kInvalidArgument for the user.
  std::function<Status(nlohmann::json& params, const nlohmann::json& extras, const CliContext& ctx)>
      fn;
};

const Transform* find_transform(const std::string& name);

}  // namespace vdpu::rpc::cli
