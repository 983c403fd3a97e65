#include "rpc/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace vdpu::rpc {
namespace {
using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : int(std::min<int64_t>(left, INT32_MAX));
}

Clock::time_point deadline_after(double s) {
  if (s <= 0 || s > 1e7) s = 1e7;
  return Clock::now() + std::chrono::microseconds(int64_t(s * 1e6));
}
}  // namespace

nlohmann::json make_request(const std::string& method, const nlohmann::json& params, int id) {
  nlohmann::json r = {{"jsonrpc", "2.0"}, {"method", method}, {"id", id}};
  if (!params.is_null() && !(params.is_object() && params.empty())) r["params"] = params;
  return r;
}

Client::~Client() { close(); }

void Client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status Client::connect(const std::string& path) {
  close();
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return make_error(Errc::kInvalidArgument, "socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    close();
    return make_error(e == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "cannot connect to " + path + ": " + strerror(e));
  }
  return {};
}

Status Client::send_raw(std::string_view data, double timeout_s) {
  auto deadline = deadline_after(timeout_s);
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      int r = poll(&p, 1, remaining_ms(deadline));
      if (r == 0) return make_error(Errc::kTimeout, "timeout while sending the request");
      continue;
    }
    return make_error(Errc::kIo, std::string("send: ") + strerror(errno));
  }
  return {};
}

Result<nlohmann::json> Client::receive(double timeout_s) {
  auto deadline = deadline_after(timeout_s);
  char buf[65536];
  while (queue_.empty()) {
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return make_error(Errc::kTimeout, "timeout while waiting for the response");
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return make_error(Errc::kIo, std::string("recv: ") + strerror(errno));
    if (n == 0) return make_error(Errc::kIo, "connection closed by the server");
    auto err = splitter_.feed(std::string_view(buf, size_t(n)),
                              [&](std::string_view m) { queue_.emplace_back(m); });
    if (err != JsonSplitter::Err::kNone)
      return make_error(Errc::kProtocol, std::string("bad response: ") + splitter_error(err));
  }
  std::string text = std::move(queue_.front());
  queue_.erase(queue_.begin());
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(Errc::kProtocol, "response is not valid JSON");
  return j;
}

Result<nlohmann::json> Client::call(const std::string& method, const nlohmann::json& params,
                                    double timeout_s, int id) {
  auto deadline = deadline_after(timeout_s);
  VDPU_TRY(send_raw(make_request(method, params, id).dump(), timeout_s));
  double left = std::chrono::duration<double>(deadline - Clock::now()).count();
  return receive(left > 0 ? left : 0.001);
}

bool socket_in_use(const std::string& path) {
  Client c;
  return c.connect(path).ok();
}

}  // namespace vdpu::rpc
