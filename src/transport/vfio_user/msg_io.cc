#include "transport/vfio_user/msg_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdpu::vfio_user {
namespace {
constexpr const char* kEof = "peer closed the connection";
}  // namespace

bool is_eof(const Error& e) { return e.code == Errc::kIo && e.message == kEof; }

Message::Message(Message&& o) noexcept : hdr(o.hdr), payload(std::move(o.payload)), fds(std::move(o.fds)) {
  o.fds.clear();
}
Message& Message::operator=(Message&& o) noexcept {
  if (this != &o) {
    close_fds();
    hdr = o.hdr;
    payload = std::move(o.payload);
    fds = std::move(o.fds);
    o.fds.clear();
  }
  return *this;
}
int Message::take_fd(size_t i) {
  if (i >= fds.size()) return -1;
  int fd = fds[i];
  fds[i] = -1;
  return fd;
}
void Message::close_fds() {
  for (int& fd : fds)
    if (fd >= 0) close(fd), fd = -1;
  fds.clear();
}

// The blocking form of MsgReader (the client): waits in poll() for the rest,
// bounded by the socket's SO_RCVTIMEO when one is set.
Status recv_message(int sock, uint32_t max_size, uint32_t max_fds, Message& out) {
  out.close_fds();
  out.payload.clear();
  MsgReader rd(max_size, max_fds);
  int timeout_ms = -1;
  timeval tv{};
  socklen_t tl = sizeof(tv);
  if (getsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
    timeout_ms = int(tv.tv_sec * 1000 + tv.tv_usec / 1000);
  for (;;) {
    auto r = rd.read(sock, out);
    if (!r) return r.error();
    if (*r) return {};
    pollfd p{sock, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
      return make_error(Errc::kTimeout, rd.partial_bytes() ? "timed out inside a message" : "no message");
    if (n < 0 && errno != EINTR) return make_error(Errc::kIo, std::string("poll: ") + strerror(errno));
  }
}

void MsgReader::reset() {
  cur_.close_fds();
  cur_.payload.clear();
  cur_.hdr = Header{};
  got_ = 0;
}

// One recvmsg of at most len bytes, without waiting; fds that come with the
// bytes join the current message. *n = 0: nothing available now.
Status MsgReader::recv_some(int sock, uint8_t* p, size_t len, size_t* n) {
  *n = 0;
  // Room for more fds than allowed, so that excess ones are received (and
  // closed with the message) rather than dropped with MSG_CTRUNC.
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 64)];
  iovec iov{p, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  ssize_t r;
  do {
    r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    return make_error(Errc::kIo, std::string("recvmsg: ") + strerror(errno));
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < cnt; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      cur_.fds.push_back(fd);
    }
  }
  if (mh.msg_flags & MSG_CTRUNC) return make_error(Errc::kProtocol, "control data truncated (too many fds)");
  if (cur_.fds.size() > max_fds_) return make_error(Errc::kProtocol, "too many fds in one message");
  if (r == 0) return make_error(Errc::kIo, got_ ? "peer closed the connection inside a message" : kEof);
  *n = size_t(r);
  return {};
}

Result<bool> MsgReader::read(int sock, Message& out) {
  for (;;) {
    size_t n = 0;
    if (got_ < sizeof(Header)) {
      VDPU_TRY(recv_some(sock, reinterpret_cast<uint8_t*>(&cur_.hdr) + got_, sizeof(Header) - got_, &n));
      if (n == 0) return false;
      got_ += n;
      if (got_ < sizeof(Header)) continue;
      // Framing (spec "Header": Message size includes the header), checked
      // before anything is allocated for the payload.
      if (cur_.hdr.msg_size < sizeof(Header) || cur_.hdr.msg_size > max_size_)
        return make_error(Errc::kProtocol, "bad message size " + std::to_string(cur_.hdr.msg_size));
      cur_.payload.resize(cur_.hdr.msg_size - sizeof(Header));
    } else {
      size_t at = got_ - sizeof(Header);
      VDPU_TRY(recv_some(sock, cur_.payload.data() + at, cur_.payload.size() - at, &n));
      if (n == 0) return false;
      got_ += n;
    }
    if (got_ == sizeof(Header) + cur_.payload.size()) {
      out = std::move(cur_);
      cur_ = Message{};
      got_ = 0;
      return true;
    }
  }
}

Status send_message(int sock, Header hdr, std::span<const std::span<const uint8_t>> parts,
                    std::span<const int> fds) {
  iovec iov[8];
  size_t niov = 0, total = sizeof(Header);
  iov[niov++] = {&hdr, sizeof(Header)};
  for (auto p : parts) {
    if (p.empty()) continue;
    if (niov == 8) return make_error(Errc::kInvalidArgument, "too many message parts");
    iov[niov++] = {const_cast<uint8_t*>(p.data()), p.size()};
    total += p.size();
  }
  hdr.msg_size = uint32_t(total);
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxMsgFds)];
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = niov;
  if (!fds.empty()) {
    if (fds.size() > kMaxMsgFds) return make_error(Errc::kInvalidArgument, "too many fds");
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  size_t sent = 0;
  while (sent < total) {
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::kIo, std::string("sendmsg: ") + strerror(errno));
    }
    sent += size_t(n);
    if (sent == total) break;
    // Partial write: advance the iovecs; fds went with the first byte.
    mh.msg_control = nullptr;
    mh.msg_controllen = 0;
    size_t skip = size_t(n);
    while (skip && mh.msg_iovlen) {
      if (skip >= mh.msg_iov[0].iov_len) {
        skip -= mh.msg_iov[0].iov_len;
        ++mh.msg_iov;
        --mh.msg_iovlen;
      } else {
        mh.msg_iov[0].iov_base = static_cast<uint8_t*>(mh.msg_iov[0].iov_base) + skip;
        mh.msg_iov[0].iov_len -= skip;
        skip = 0;
      }
    }
  }
  return {};
}

}  // namespace vdpu::vfio_user
