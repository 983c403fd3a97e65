// The `virtnet` command line (virtio-net spec §3, §4): option tables of
// every sub-command with the spec's short/long spellings (argparse style,
// including multi-letter single-dash options such as -qp, -dc, -pkt_cnt),
// argv -> JSON-RPC params (insertion-ordered, as the CLI echoes them), and
// the echo line (a Python dict with numbers as hex strings).
//
// Thread: any; no shared state. Never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::virtnet_cli {

using ojson = nlohmann::ordered_json;

enum class Arg { kFlag, kUint, kHex, kStr, kEnableDisable };

struct Opt {
  const char* shrt;   // "-p" (may be multi-letter: "-qp"), or nullptr
  const char* lng;    // "--pf"
  const char* key;    // JSON-RPC parameter ("" = CLI only)
  Arg type;
  const char* help;
  std::vector<std::string> choices = {};
};

struct Command {
  std::string name;    // sub-command
  std::string method;  // JSON-RPC method ("" = handled by the CLI)
  std::string help;
  std::vector<Opt> opts;
};

// Every sub-command of §4 (modify is "modify" with "device"/"queue" parts).
const std::vector<Command>& commands();
const Command* find_command(const std::string& name);
// The options of `modify device` / `modify queue`.
const std::vector<Opt>& modify_device_opts();
const std::vector<Opt>& modify_queue_opts();

// Parses args against opts into params (only what was given; flags as 0/1).
// Positional words are returned in `positionals`. Errors: kInvalidArgument
// with a message for the user.
Status parse_opts(const std::vector<Opt>& opts, const std::vector<std::string>& args, size_t from, ojson& params,
                  std::vector<std::string>* positionals, size_t* stop_at = nullptr);

// Builds the request of a sub-command (argv after the sub-command name).
// Applies the spec's rules: required options, -n or -qp, one device
// selector, mutually exclusive options. Errors: kInvalidArgument.
struct Request {
  std::string method;
  ojson params = ojson::object();
  bool help = false;
};
Result<Request> build_request(const std::string& cmd, const std::vector<std::string>& args);

// {'pf': '0x0', 'mac': '0C:C4:7A:FF:22:93'}: the echo line (§3).
std::string echo(const ojson& params);

// Usage text.
std::string usage();
std::string command_usage(const Command& c);

}  // namespace vdpu::virtnet_cli
