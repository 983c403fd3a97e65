// rpc.py-style command line → JSON-RPC request, built from the method schema
// (docs/rpc-schema.md). The one translation used by the vdpu-rpc CLI
// (spdk_rpc / snap_rpc) and by vdpu-snap's init files (snap-storage §7.3: one
// RPC per line in CLI syntax): translate() is what both call, so a line of
// an init file means exactly what the same words mean on the command line.
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
#include "apps/rpc_cli/transforms.h"
#include "rpc/schema.h"

namespace vdpu::rpc::cli {

using json = nlohmann::json;

// args: what follows the method name. Returns the params object (only what
// was given; the server applies defaults). Errors: kInvalidArgument with a
// message for the user (unknown option, bad value, missing required).
Result<json> parse_args(const schema::Method& m, const std::vector<std::string>& args,
                        const CliContext& ctx = {});

// A method spdk_rpc / snap_rpc offer (schema service "snap"), by name or
// alias; nullptr for anything else, including the virtnet CLI's methods.
const schema::Method* find_method(std::string_view name);

// Usage text of one method.
std::string method_help(const schema::Method& m);

// The positional parameter names of m in CLI order.
std::vector<std::string> positional_order(const schema::Method& m);

// Splits one line of an init file into words: blanks separate, '…' and "…"
// quote, backslash escapes, '#' at the start of a word starts a comment.
// Errors: kInvalidArgument (unterminated quote).
Result<std::vector<std::string>> split_line(std::string_view line);

struct LineCall {
  std::string method;  // empty: nothing to send (blank or comment line)
  json params;         // object (possibly empty)
};

// words = <method> [args...] → the request, as vdpu-rpc sends it:
//   <method> [args]                a schema method of spdk_rpc/snap_rpc,
//                                  arguments per parse_args();
//   call <method> ['{json}']       any method name, params given as JSON.
// Errors (kInvalidArgument, message for the user): "unknown command 'x'"
// for a name that is not an SPDK/SNAP method (virtnet's included), bad
// arguments, bad JSON in raw mode.
Result<LineCall> translate(const std::vector<std::string>& words, const CliContext& ctx = {});

// One init-file line: split_line() then translate() without stdin. Empty
// method for blank/comment lines.
Result<LineCall> parse_line(std::string_view line);

}  // namespace vdpu::rpc::cli
