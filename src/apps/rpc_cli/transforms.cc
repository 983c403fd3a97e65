#include "apps/rpc_cli/transforms.h"

#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>

namespace vdpu::rpc::cli {
namespace {

using json = nlohmann::json;

Error bad(std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); }

// rpc.py: num_blocks = int(total_size * 1024 * 1024) // block_size.
Status size_to_blocks(json& params, const json& extras, const CliContext&) {
  if (!extras.contains("total_size")) return {};  // --num_blocks given directly (or missing)
  if (!params.contains("block_size")) return bad("block_size is required with total_size");
  double mib = extras["total_size"].get<double>();
  uint64_t bs = params["block_size"].get<uint64_t>();
  if (bs == 0) return bad("block_size must not be 0");
  if (!(mib > 0) || !std::isfinite(mib) || mib > 1e12) return bad("total_size must be > 0 (MiB)");
  uint64_t bytes = uint64_t(mib * 1024 * 1024);
  params["num_blocks"] = bytes / bs;
  return {};
}

// load_config -j FILE (default stdin) → params.subsystems.
Status load_config_file(json& params, const json& extras, const CliContext& ctx) {
  std::string text;
  if (extras.contains("json_conf")) {
    std::string path = extras["json_conf"];
    std::ifstream f(path);
    if (!f) return bad("cannot read " + path);
    text.assign(std::istreambuf_iterator<char>(f), {});
  } else if (ctx.allow_stdin) {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    return bad("load_config: give the configuration file with -j FILE (there is no stdin here)");
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("subsystems"))
    return bad("the JSON configuration must be an object with a \"subsystems\" array");
  params["subsystems"] = j["subsystems"];
  return {};
}

const std::vector<Transform>& table() {
  static const std::vector<Transform> t = {
      {"malloc_size", {"total_size", "block_size"}, size_to_blocks},
      {"null_size", {"name", "total_size", "block_size"}, size_to_blocks},
      {"load_config_file", {}, load_config_file},
  };
  return t;
}

}  // namespace

const Transform* find_transform(const std::string& name) {
  for (auto& t : table())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace vdpu::rpc::cli
