// virtnet: the virtio-net controller CLI (virtio-net spec §3, §4). A
// JSON-RPC client of vdpu-virtnet over its unix socket: it echoes the
// request params as a Python dict, then prints the JSON result. Exit status
// 0 on success, 1 when the controller answers an error (errno != 0,
// {"Error": ...}) or cannot be reached, 2 on bad usage.
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "apps/virtnet/cli.h"
#include "rpc/client.h"
#include "service/virtnet/conf.h"

namespace {

using namespace vdpu;
using namespace vdpu::virtnet_cli;
using nlohmann::json;

#ifndef VDPU_VIRTNET_VERSION
#define VDPU_VIRTNET_VERSION "v0.1.0"
#endif
constexpr const char* kBanner = "vdpu virtio-net-controller command line interface " VDPU_VIRTNET_VERSION;

struct Ctx {
  std::string socket;
  double timeout = 60;
};

Result<json> call(const Ctx& c, const std::string& method, const json& params) {
  rpc::Client cl;
  if (auto s = cl.connect(c.socket); !s)
    return make_error(s.error().code, "cannot connect to the controller at " + c.socket + ": " + s.error().message);
  auto r = cl.call(method, params, c.timeout);
  if (!r) return r.error();
  if (r->contains("error")) {
    const json& e = (*r)["error"];
    return make_error(Errc::kInvalidArgument,
                      fmt::format("{} ({})", e.value("message", std::string("error")), e.value("code", 0)));
  }
  return r->value("result", json());
}

void print(const json& r) {
  if (r.is_string()) std::printf("%s\n", r.get<std::string>().c_str());
  else std::printf("%s\n", r.dump(2).c_str());
}

bool failed(const json& r) {
  if (r.is_object() && r.contains("Error")) return true;
  if (r.is_object() && r.contains("errno") && r["errno"].is_number_integer() && r["errno"].get<int64_t>() != 0)
    return true;
  return false;
}

int validate(const ojson& p) {
  std::string path = p.value("file", "");
  auto c = service::virtnet::load_virtnet_conf(path, false);
  if (!c) {
    std::printf("%s is invalid: %s\n", path.c_str(), c.error().message.c_str());
    return 1;
  }
  std::printf("%s is valid\n", path.c_str());
  return 0;
}

// §4.11: "SUCCESS on completion": wait for the new controller process.
int restart(const Ctx& c) {
  auto before = call(c, "debug", json::object());
  auto r = call(c, "restart", json::object());
  if (!r) {
    std::fprintf(stderr, "Error: %s\n", r.error().message.c_str());
    return 1;
  }
  if (failed(*r)) {
    print(*r);
    return 1;
  }
  int64_t old_pid = before ? before->value("pid", int64_t(-1)) : r->value("pid", int64_t(-1));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Ctx quick = c;
    quick.timeout = 2;
    auto d = call(quick, "debug", json::object());
    if (d && d->value("pid", int64_t(-1)) != old_pid) {
      std::printf("SUCCESS\n");
      return 0;
    }
  }
  std::fprintf(stderr, "Error: the controller did not come back within %.0f s\n", c.timeout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Ctx ctx;
  const char* env = getenv("VIRTNET_RPC_SOCKET");
  ctx.socket = env && *env ? env : "/var/run/virtnet.sock";
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s\n%s", kBanner, usage().c_str());
      return 0;
    }
    if (a == "-v" || a == "--version") {
      std::printf("%s\n", kBanner);
      return 0;
    }
    if ((a == "--rpc-socket" || a == "--timeout") && i + 1 < args.size()) {
      if (a == "--rpc-socket") ctx.socket = args[++i];
      else ctx.timeout = std::atof(args[++i].c_str());
      continue;
    }
    if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "virtnet: error: unrecognized argument '%s'\n%s", a.c_str(), usage().c_str());
      return 2;
    }
    break;
  }
  if (i == args.size()) {
    std::fprintf(stderr, "%s", usage().c_str());
    return 2;
  }
  std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + long(i) + 1, args.end());
  auto req = build_request(cmd, rest);
  if (!req) {
    std::fprintf(stderr, "virtnet %s: error: %s\n", cmd.c_str(), req.error().message.c_str());
    return 2;
  }
  if (req->help) {
    std::printf("%s", command_usage(*find_command(cmd)).c_str());
    return 0;
  }
  if (cmd == "validate") return validate(req->params);
  if (cmd == "restart") return restart(ctx);
  if (!req->params.empty()) std::printf("%s\n", echo(req->params).c_str());
  auto r = call(ctx, req->method, json::parse(req->params.dump()));
  if (!r) {
    std::fprintf(stderr, "Error: %s\n", r.error().message.c_str());
    return 1;
  }
  print(*r);
  return failed(*r) ? 1 : 0;
}
