// The JSON-RPC 2.0 server on a unix socket, driven by a reactor's fd
// handlers (the runtime's main reactor in the daemon). Non-blocking sockets,
// many clients at once, each with its own input/output buffers. SPDK framing
// (framing.h); a parse error is answered with -32700 and the connection is
// closed, as SPDK does; a request larger than max_request is answered with
// -32600 and the connection is closed.
//
// Threads: create, use and destroy on the reactor's thread (or before it
// runs). Requests are dispatched through Dispatcher::get().
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "runtime/reactor.h"

namespace vdpu::rpc {

struct ServerOptions {
  std::string path = "/var/tmp/spdk.sock";
  size_t max_request = 4u << 20;  // bytes of one request
  size_t max_connections = 1024;
  size_t max_output = 64u << 20;  // unread responses before a client is dropped
};

class Server {
 public:
  // Binds and listens. Errors: kBusy (a live server answers on path), kIo.
  // A stale socket file (nobody listening) is removed first.
  static Result<std::unique_ptr<Server>> start(rt::Reactor& reactor, ServerOptions opts);
  ~Server();  // closes every connection and removes the socket file
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting new connections and removes the socket file; open
  // connections keep being served until close_all().
  void stop_listening();
  void close_all();
  size_t num_connections() const;
  const std::string& path() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdpu::rpc
