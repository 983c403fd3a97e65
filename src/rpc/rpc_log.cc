#include "rpc/rpc_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/parse.h"

namespace vdpu::rpc {

RpcLog::~RpcLog() {
  if (fd_ >= 0) close(fd_);
}

Status RpcLog::open(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(Errc::kIo, "cannot open RPC log " + path + ": " + strerror(errno));
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  path_ = path;
  return {};
}

void RpcLog::raw(const std::string& text) {
  constexpr size_t kMax = 4096;
  write("request", text.size() > kMax ? text.substr(0, kMax) + "...(truncated)" : text);
}

void RpcLog::write(const char* kind, const std::string& body) {
  if (fd_ < 0) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char ts[64];
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(ts + n, sizeof(ts) - n, ".%06lld", static_cast<long long>(us));
  std::string line = std::string("[") + ts + "] " + kind + ": " + body + "\n";
  // One write per line with O_APPEND: lines never interleave.
  [[maybe_unused]] ssize_t r = ::write(fd_, line.data(), line.size());
}

std::string rpc_log_path(const std::string& flag_value) {
  if (env_int("SNAP_RPC_LOG_ENABLE", 1) == 0) return "";
  if (!flag_value.empty()) return flag_value;
  const char* e = getenv("SNAP_RPC_LOG_FILE");
  if (e && *e) return e;
  return kDefaultRpcLogPath;
}

}  // namespace vdpu::rpc
