// rpc.py-style command line → JSON-RPC params, built from the method schema
// (docs/rpc-schema.md). Shared by the vdpu-rpc CLI (spdk_rpc / snap_rpc) and
// the daemon's init files (snap-storage §7.3: one RPC per line in CLI syntax).
//
// For every parameter: `--name` and `--na-me` (or --cli_name), `-x` from
// `short` (two-letter shorts like `-sn` too), positional ones in order (they
// also accept their option form), bool parameters as flags without value
// (`--flag=false` to send false), ints strict with 0x hex accepted, arrays as
// repeated/multiple values or a JSON array, objects as JSON. `cli.extra`
// parameters go to the method's transform (transforms.h).
//
// Threads: any; no shared state. Never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "rpc/schema.h"

namespace vdpu::rpc::cli {

using json = nlohmann::json;

// args: what follows the method name. Returns the params object (only what
// was given; the server applies defaults). Errors: kInvalidArgument with a
// message for the user (unknown option, bad value, missing required).
Result<json> parse_args(const schema::Method& m, const std::vector<std::string>& args);

// Usage text of one method.
std::string method_help(const schema::Method& m);

// The positional parameter names of m in CLI order.
std::vector<std::string> positional_order(const schema::Method& m);

// Splits one line of an init file into words: blanks separate, '…' and "…"
// quote, backslash escapes, '#' at the start of a word starts a comment.
// Errors: kInvalidArgument (unterminated quote).
Result<std::vector<std::string>> split_line(std::string_view line);

// One init-file line → (method, params), using the embedded schema. Empty
// method for blank/comment lines. Errors: unknown method, bad arguments.
struct LineCall {
  std::string method;
  json params;
};
Result<LineCall> parse_line(std::string_view line);

}  // namespace vdpu::rpc::cli
