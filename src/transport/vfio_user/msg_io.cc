#include "transport/vfio_user/msg_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdpu::vfio_user {
namespace {
constexpr const char* kEof = "peer closed the connection";

// Reads exactly len bytes (after a first chunk possibly already read).
Status read_full(int sock, uint8_t* p, size_t len) {
  while (len) {
    ssize_t n = recv(sock, p, len, MSG_WAITALL);
    if (n == 0) return make_error(Errc::kIo, kEof);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return make_error(Errc::kTimeout, "timed out inside a message");
      return make_error(Errc::kIo, std::string("recv: ") + strerror(errno));
    }
    p += n;
    len -= size_t(n);
  }
  return {};
}
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

Status recv_message(int sock, uint32_t max_size, uint32_t max_fds, Message& out) {
  out.close_fds();
  out.payload.clear();
  // Room for more fds than allowed, so that excess ones are received (and
  // closed) rather than silently dropped with MSG_CTRUNC.
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 64)];
  iovec iov{&out.hdr, sizeof(Header)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  ssize_t n;
  do {
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return make_error(Errc::kIo, kEof);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error(Errc::kTimeout, "no message");
    return make_error(Errc::kIo, std::string("recvmsg: ") + strerror(errno));
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < cnt; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.push_back(fd);
    }
  }
  if (mh.msg_flags & MSG_CTRUNC) return make_error(Errc::kProtocol, "control data truncated (too many fds)");
  if (out.fds.size() > max_fds) return make_error(Errc::kProtocol, "too many fds in one message");
  if (size_t(n) < sizeof(Header)) {
    VDPU_TRY(read_full(sock, reinterpret_cast<uint8_t*>(&out.hdr) + n, sizeof(Header) - size_t(n)));
  }
  // Framing (spec "Header": Message size includes the header).
  if (out.hdr.msg_size < sizeof(Header) || out.hdr.msg_size > max_size)
    return make_error(Errc::kProtocol, "bad message size " + std::to_string(out.hdr.msg_size));
  out.payload.resize(out.hdr.msg_size - sizeof(Header));
  if (!out.payload.empty()) VDPU_TRY(read_full(sock, out.payload.data(), out.payload.size()));
  return {};
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
