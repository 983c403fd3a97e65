// vhost-user message framing: a bounded message buffer with the fds that came
// with it, an incremental reader for a non-blocking unix stream socket, a
// sender, and the per-request table of payload sizes and fd counts that every
// message is checked against before a handler sees it.
//
// Threads: none of its own; a Receiver belongs to the connection that owns the
// socket (the main reactor for the back-end, the caller for the front-end).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "base/result.h"
#include "transport/vhost_user/protocol.h"

namespace vdpu::vhost_user {

// An owned file descriptor (closed on destruction). Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// One message as received (or to send). Fixed size: no allocation.
struct Message {
  Header hdr{};
  alignas(8) uint8_t payload[kMaxPayload]{};
  UniqueFd fds[kMaxFds];
  uint32_t nfds = 0;
  // The peer sent more fds than fit (or the kernel truncated the control
  // data): the extra ones were closed; the message must be refused.
  bool fds_truncated = false;

  bool need_reply() const { return hdr.flags & VHOST_USER_NEED_REPLY_MASK; }
  // Payload accessors; callers have checked the size with check_message().
  template <class T>
  T as() const {
    T v;
    std::memcpy(&v, payload, sizeof(T));
    return v;
  }
  uint64_t u64() const { return as<uint64_t>(); }
  // Takes fd i out of the message (-1 if absent).
  UniqueFd take_fd(uint32_t i) { return i < nfds ? std::move(fds[i]) : UniqueFd(); }
  void clear();
};

// Checks a received message against the request's rules (vhost-user.rst,
// "Front-end message types"): payload size, fd count, and sizes declared
// inside the payload (memory table entries, config size). Returns
// kProtocol with the reason. Unknown requests pass (the handler refuses them).
Status check_message(const Message& m);

// Incremental reader for one connection. Reads at most one message at a time
// (never past its end, so fds are attributed to the right message).
class Receiver {
 public:
  // replies = true: the front-end side, reading the back-end's replies (the
  // reply flag must be set instead of clear).
  explicit Receiver(bool replies = false) : replies_(replies) {}
  enum class Rx {
    kMessage,  // `msg()` holds a complete message; call reset() after use
    kAgain,    // no more bytes now (EAGAIN)
    kClosed,   // orderly EOF at a message boundary
    kError,    // socket error, EOF inside a message or a bad header: disconnect
  };
  // Non-blocking; err receives the reason on kError.
  Rx read(int fd, std::string* err);
  Message& msg() { return msg_; }
  // Drops the current message (closing any fds it still holds).
  void reset();

 private:
  // Reads up to len bytes into dst with ancillary fds. <0: -errno, 0: EOF.
  ssize_t recv_some(int fd, void* dst, size_t len);
  bool replies_;
  Message msg_;
  size_t got_ = 0;  // bytes of header+payload received so far
};

// Sends hdr + payload (+ fds) in one sendmsg; retries on EINTR and, for a
// bounded number of rounds, on EAGAIN (replies are small). Errors: kIo.
Status send_message(int fd, const Header& hdr, const void* payload, std::span<const int> fds = {});

}  // namespace vdpu::vhost_user
