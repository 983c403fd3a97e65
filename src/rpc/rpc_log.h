// RPC log history (snap-storage §7.2): every request and its response is
// appended to a file (default /var/log/snap-log/rpc-log) when
// SNAP_RPC_LOG_ENABLE is 1 (the default). The file grows without bound; the
// user deletes it before start.
//
// Threads: main reactor only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vdpu::rpc {

inline constexpr const char* kDefaultRpcLogPath = "/var/log/snap-log/rpc-log";

class RpcLog {
 public:
  RpcLog() = default;
  ~RpcLog();
  RpcLog(const RpcLog&) = delete;
  RpcLog& operator=(const RpcLog&) = delete;

  // Creates the directory if needed and opens path for appending.
  // Errors: kIo (the caller warns and goes on without a log).
  Status open(const std::string& path);
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // One line each: "[<time>] request: <json>" / "[<time>] response: <json>".
  void request(const nlohmann::json& req) { write("request", req.dump()); }
  void response(const nlohmann::json& resp) { write("response", resp.dump()); }
  // Raw text that was not a JSON value (parse errors), truncated.
  void raw(const std::string& text);

 private:
  void write(const char* kind, const std::string& body);
  int fd_ = -1;
  std::string path_;
};

// The log path to use: the --rpc-log flag if given, else SNAP_RPC_LOG_FILE,
// else the default. Empty when SNAP_RPC_LOG_ENABLE=0.
std::string rpc_log_path(const std::string& flag_value);

}  // namespace vdpu::rpc
