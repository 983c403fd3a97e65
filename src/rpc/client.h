// A blocking JSON-RPC client over a unix socket: what the CLI, the daemon's
// "is the socket in use" check and the tests use.
//
// Threads: one Client per thread. Errors as values; never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "rpc/framing.h"

namespace vdpu::rpc {

class Client {
 public:
  Client() = default;
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& o) noexcept
      : fd_(o.fd_), splitter_(std::move(o.splitter_)), queue_(std::move(o.queue_)) {
    o.fd_ = -1;
  }

  // Errors: kNotFound (no socket file), kIo (refused / other errno).
  Status connect(const std::string& path);
  // Sends raw bytes. Errors: kIo.
  Status send_raw(std::string_view data, double timeout_s);
  // Reads the next complete JSON value. Errors: kTimeout, kIo (closed by the
  // peer), kProtocol (not JSON).
  Result<nlohmann::json> receive(double timeout_s);
  // Sends {"jsonrpc":"2.0","id":id,"method":..,"params":..} (params omitted
  // when null or empty) and returns the whole response object.
  Result<nlohmann::json> call(const std::string& method, const nlohmann::json& params,
                              double timeout_s, int id = 1);
  void close();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  JsonSplitter splitter_{64u << 20};
  std::vector<std::string> queue_;
};

// True when a server accepts connections on path (a live daemon).
bool socket_in_use(const std::string& path);

// Builds the request object the CLI sends.
nlohmann::json make_request(const std::string& method, const nlohmann::json& params, int id);

}  // namespace vdpu::rpc
