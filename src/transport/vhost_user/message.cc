#include "transport/vhost_user/message.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"

namespace vdpu::vhost_user {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void Message::clear() {
  for (uint32_t i = 0; i < nfds; ++i) fds[i].reset();
  nfds = 0;
  fds_truncated = false;
  hdr = Header{};
}

const char* request_name(uint32_t r) noexcept {
  static constexpr const char* kNames[] = {
      "NONE", "GET_FEATURES", "SET_FEATURES", "SET_OWNER", "RESET_OWNER", "SET_MEM_TABLE",
      "SET_LOG_BASE", "SET_LOG_FD", "SET_VRING_NUM", "SET_VRING_ADDR", "SET_VRING_BASE",
      "GET_VRING_BASE", "SET_VRING_KICK", "SET_VRING_CALL", "SET_VRING_ERR",
      "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM", "SET_VRING_ENABLE",
      "SEND_RARP", "NET_SET_MTU", "SET_BACKEND_REQ_FD", "IOTLB_MSG", "SET_VRING_ENDIAN",
      "GET_CONFIG", "SET_CONFIG", "CREATE_CRYPTO_SESSION", "CLOSE_CRYPTO_SESSION",
      "POSTCOPY_ADVISE", "POSTCOPY_LISTEN", "POSTCOPY_END", "GET_INFLIGHT_FD", "SET_INFLIGHT_FD",
      "GPU_SET_SOCKET", "RESET_DEVICE", "VRING_KICK", "GET_MAX_MEM_SLOTS", "ADD_MEM_REG",
      "REM_MEM_REG", "SET_STATUS", "GET_STATUS"};
  static_assert(std::size(kNames) == VHOST_USER_REQUEST_MAX);
  return r < VHOST_USER_REQUEST_MAX ? kNames[r] : "UNKNOWN";
}

// ---------------------------------------------------------------------------
// Per-request rules.
namespace {

enum class FdRule : uint8_t {
  kNone,       // no fd may come with the message
  kOne,        // exactly one
  kZeroOrOne,  // REM_MEM_REG (spec: MAY accept one, MUST close it), SET_LOG_BASE
  kRegions,    // SET_MEM_TABLE: one per region
  kVringFile,  // SET_VRING_KICK/CALL/ERR: one unless the NOFD bit is set
  kAny,        // unknown/unsupported requests: any, all closed
};

struct Rule {
  uint32_t min_size;
  uint32_t max_size;
  FdRule fds;
};

constexpr Rule rule_for(uint32_t r) {
  switch (r) {
    case VHOST_USER_GET_FEATURES:
    case VHOST_USER_GET_PROTOCOL_FEATURES:
    case VHOST_USER_GET_QUEUE_NUM:
    case VHOST_USER_GET_MAX_MEM_SLOTS:
    case VHOST_USER_SET_OWNER:
    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_RESET_DEVICE:
      return {0, 0, FdRule::kNone};
    case VHOST_USER_SET_FEATURES:
    case VHOST_USER_SET_PROTOCOL_FEATURES:
      return {8, 8, FdRule::kNone};
    case VHOST_USER_SET_MEM_TABLE:
      return {kMemoryTableHeader, sizeof(MemoryTable), FdRule::kRegions};
    case VHOST_USER_SET_LOG_BASE:
      return {sizeof(LogDesc), sizeof(LogDesc), FdRule::kZeroOrOne};
    case VHOST_USER_SET_LOG_FD:
      return {0, 8, FdRule::kOne};
    case VHOST_USER_SET_VRING_NUM:
    case VHOST_USER_SET_VRING_BASE:
    case VHOST_USER_GET_VRING_BASE:
    case VHOST_USER_SET_VRING_ENABLE:
    case VHOST_USER_VRING_KICK:
      return {sizeof(VringState), sizeof(VringState), FdRule::kNone};
    case VHOST_USER_SET_VRING_ADDR:
      return {sizeof(VringAddr), sizeof(VringAddr), FdRule::kNone};
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
      return {8, 8, FdRule::kVringFile};
    case VHOST_USER_GET_CONFIG:
    case VHOST_USER_SET_CONFIG:
      return {sizeof(ConfigHeader), kMaxPayload, FdRule::kNone};
    case VHOST_USER_GET_INFLIGHT_FD:
      return {kInflightDescPacked, sizeof(InflightDesc), FdRule::kNone};
    case VHOST_USER_SET_INFLIGHT_FD:
      return {kInflightDescPacked, sizeof(InflightDesc), FdRule::kOne};
    case VHOST_USER_ADD_MEM_REG:
      return {sizeof(SingleMemRegion), sizeof(SingleMemRegion), FdRule::kOne};
    case VHOST_USER_REM_MEM_REG:
      return {sizeof(SingleMemRegion), sizeof(SingleMemRegion), FdRule::kZeroOrOne};
    default:
      return {0, kMaxPayload, FdRule::kAny};
  }
}

Error bad(const Message& m, const char* what) {
  return make_error(Errc::kProtocol, std::string(request_name(m.hdr.request)) + ": " + what);
}

}  // namespace

Status check_message(const Message& m) {
  if (m.fds_truncated) return bad(m, "too many file descriptors");
  const Rule rule = rule_for(m.hdr.request);
  if (m.hdr.size < rule.min_size || m.hdr.size > rule.max_size) return bad(m, "bad payload size");
  uint32_t want_fds = 0;
  switch (rule.fds) {
    case FdRule::kNone:
      break;
    case FdRule::kOne:
      want_fds = 1;
      break;
    case FdRule::kZeroOrOne:
      want_fds = m.nfds > 1 ? 1 : m.nfds;
      break;
    case FdRule::kAny:
      want_fds = m.nfds;
      break;
    case FdRule::kVringFile:
      want_fds = (m.u64() & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;
      break;
    case FdRule::kRegions: {
      const uint32_t n = m.as<uint32_t>();  // nregions
      if (n > VHOST_MEMORY_BASELINE_NREGIONS) return bad(m, "too many regions");
      if (m.hdr.size < kMemoryTableHeader + n * sizeof(MemRegion)) return bad(m, "payload shorter than its regions");
      want_fds = n;
      break;
    }
  }
  if (m.nfds != want_fds) return bad(m, "wrong number of file descriptors");
  if ((m.hdr.request == VHOST_USER_GET_INFLIGHT_FD || m.hdr.request == VHOST_USER_SET_INFLIGHT_FD) &&
      m.hdr.size != kInflightDescPacked && m.hdr.size != sizeof(InflightDesc))
    return bad(m, "bad payload size");
  if (m.hdr.request == VHOST_USER_GET_CONFIG || m.hdr.request == VHOST_USER_SET_CONFIG) {
    const auto ch = m.as<ConfigHeader>();
    // "Virtio device config space": size bytes of payload follow the header.
    if (ch.size > VHOST_USER_MAX_CONFIG_SIZE || m.hdr.size != sizeof(ConfigHeader) + ch.size)
      return bad(m, "config size does not match the payload");
  }
  return {};
}

// ---------------------------------------------------------------------------
// Receiver.

void Receiver::reset() {
  msg_.clear();
  got_ = 0;
}

ssize_t Receiver::recv_some(int fd, void* dst, size_t len) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(kMaxFds * sizeof(int))];
  iovec iov{dst, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  // Take every fd that arrived, whatever happens next, so none leaks.
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (size_t i = 0; i < cnt; ++i) {
      int f;
      std::memcpy(&f, data + i * sizeof(int), sizeof(int));
      if (msg_.nfds < kMaxFds) {
        msg_.fds[msg_.nfds++].reset(f);
      } else {
        ::close(f);
        msg_.fds_truncated = true;
      }
    }
  }
  // The kernel closed what did not fit in cbuf.
  if (mh.msg_flags & MSG_CTRUNC) msg_.fds_truncated = true;
  return n;
}

Receiver::Rx Receiver::read(int fd, std::string* err) {
  for (;;) {
    size_t want;
    uint8_t* dst;
    if (got_ < sizeof(Header)) {
      want = sizeof(Header) - got_;
      dst = reinterpret_cast<uint8_t*>(&msg_.hdr) + got_;
    } else {
      const size_t off = got_ - sizeof(Header);
      want = msg_.hdr.size - off;
      dst = msg_.payload + off;
    }
    if (want == 0) return Rx::kMessage;
    ssize_t n = recv_some(fd, dst, want);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return Rx::kAgain;
    if (n < 0) {
      if (err) *err = std::string("recvmsg: ") + strerror(int(-n));
      return Rx::kError;
    }
    if (n == 0) {
      if (got_ == 0 && msg_.nfds == 0) return Rx::kClosed;
      if (err) *err = "connection closed inside a message";
      return Rx::kError;
    }
    const bool had_header = got_ >= sizeof(Header);
    got_ += size_t(n);
    if (!had_header && got_ >= sizeof(Header)) {
      // "Header": version in the low 2 bits must be 0x1; the reply flag is
      // set on replies only; no other flag bits are defined.
      const uint32_t f = msg_.hdr.flags;
      if ((f & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION || bool(f & VHOST_USER_REPLY_MASK) != replies_ ||
          (f & ~kKnownFlags)) {
        if (err) *err = "bad header flags 0x" + fmt::format("{:x}", f);
        return Rx::kError;
      }
      if (msg_.hdr.size > kMaxPayload) {
        if (err) *err = fmt::format("payload size {} exceeds {}", uint32_t(msg_.hdr.size), kMaxPayload);
        return Rx::kError;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Sender.

Status send_message(int fd, const Header& hdr, const void* payload, std::span<const int> fds) {
  if (fds.size() > kMaxFds) return make_error(Errc::kInvalidArgument, "too many fds");
  alignas(cmsghdr) char cbuf[CMSG_SPACE(kMaxFds * sizeof(int))];
  iovec iov[2] = {{const_cast<Header*>(&hdr), sizeof(hdr)}, {const_cast<void*>(payload), hdr.size}};
  size_t total = sizeof(hdr) + hdr.size;
  size_t sent = 0;
  bool first = true;
  int waits = 0;
  while (sent < total) {
    // Rebuild the iovec for what is left.
    iovec cur[2];
    int nio = 0;
    size_t skip = sent;
    for (auto& v : iov) {
      if (v.iov_len == 0) continue;
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      cur[nio].iov_base = static_cast<char*>(v.iov_base) + skip;
      cur[nio].iov_len = v.iov_len - skip;
      skip = 0;
      ++nio;
    }
    msghdr mh{};
    mh.msg_iov = cur;
    mh.msg_iovlen = size_t(nio);
    if (first && !fds.empty()) {
      mh.msg_control = cbuf;
      mh.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    ssize_t n = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && waits < 10) {
        // Replies are tiny; a full socket buffer means the peer stopped
        // reading. Wait a little (bounded), then give up on the peer.
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 10);
        ++waits;
        continue;
      }
      return make_error(Errc::kIo, std::string("sendmsg: ") + strerror(errno));
    }
    first = false;
    sent += size_t(n);
  }
  return {};
}

}  // namespace vdpu::vhost_user
