// The life cycle every vdpu daemon (vdpu-snap, vdpu-virtnet) shares: the
// JSON-RPC server it owns, SIGINT/SIGTERM read from a signalfd on the main
// reactor, and the graceful shutdown — stop accepting RPCs, run the shutdown
// hooks (rpc.h; bounded by a timeout), close the connections, stop the
// runtime so that run_main() returns.
//
// Threads: everything but block_termination_signals() runs on the main
// reactor.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "rpc/server.h"
#include "runtime/runtime.h"

namespace vdpu::rpc {

// Blocks SIGINT and SIGTERM in the calling thread (reactor threads started
// afterwards inherit the mask), ignores SIGPIPE, and returns a non-blocking
// signalfd for the two signals. Call before starting the runtime.
Result<int> block_termination_signals();

class Daemon {
 public:
  // name: how the log calls the daemon ("vdpu-snap").
  Daemon(rt::Runtime& rt, std::string name) : rt_(rt), name_(std::move(name)) {}

  void set_server(std::unique_ptr<Server> s) { server_ = std::move(s); }
  // A signal read from sigfd starts shutdown(0).
  Status watch_signals(int sigfd);
  // Starts the graceful shutdown once; a non-zero code is the exit code.
  void shutdown(int code);
  int exit_code() const { return exit_code_; }
  // After run_main() returned: frees the server (its reactor has stopped).
  void release() { server_.reset(); }

 private:
  rt::Runtime& rt_;
  std::string name_;
  std::unique_ptr<Server> server_;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace vdpu::rpc
