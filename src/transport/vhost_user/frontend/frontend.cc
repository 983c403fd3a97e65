#include "transport/vhost_user/frontend/frontend.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace vdpu::vhost_user::fe {

// ---------------------------------------------------------------------------
// GuestMemory

Result<std::unique_ptr<GuestMemory>> GuestMemory::create(uint64_t size, uint64_t gpa, bool hugepages) {
  constexpr uint64_t k2M = 2ull << 20;
  size = (size + k2M - 1) & ~(k2M - 1);
  std::unique_ptr<GuestMemory> m(new GuestMemory());
  unsigned flags = MFD_CLOEXEC | (hugepages ? MFD_HUGETLB : 0);
  m->fd_.reset(::memfd_create("vdpu-guest-mem", flags));
  if (!m->fd_) return make_error(Errc::kIo, std::string("memfd_create: ") + strerror(errno));
  if (::ftruncate(m->fd_.get(), off_t(size)) != 0)
    return make_error(Errc::kIo, std::string("ftruncate: ") + strerror(errno));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, m->fd_.get(), 0);
  if (p == MAP_FAILED) return make_error(Errc::kIo, std::string("mmap: ") + strerror(errno));
  m->base_ = static_cast<uint8_t*>(p);
  m->size_ = size;
  m->gpa_ = gpa;
  return m;
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, size_);
}

void* GuestMemory::alloc(uint64_t len, uint64_t align) {
  uint64_t at = (used_ + align - 1) & ~(align - 1);
  if (at > size_ || len > size_ - at) return nullptr;
  used_ = at + len;
  std::memset(base_ + at, 0, len);
  return base_ + at;
}

uint64_t Reply::u64() const {
  uint64_t v = 0;
  std::memcpy(&v, payload.data(), std::min<size_t>(8, payload.size()));
  return v;
}

// ---------------------------------------------------------------------------
// Frontend: transport

Result<std::unique_ptr<Frontend>> Frontend::connect(const std::string& path, int timeout_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) return make_error(Errc::kInvalidArgument, "socket path too long");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0)
      return std::make_unique<Frontend>(std::move(fd));
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(Errc::kTimeout, "connect " + path + ": " + strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status Frontend::send(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds,
                      uint32_t flags) {
  Header h{request, flags, size};
  return send_message(fd_.get(), h, payload, fds);
}

Status Frontend::send_bytes(const void* data, size_t len, std::span<const int> fds) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(16 * sizeof(int))];
  if (fds.size() > 16) return make_error(Errc::kInvalidArgument, "too many fds");
  iovec iov{const_cast<void*>(data), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (!fds.empty()) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  if (::sendmsg(fd_.get(), &mh, MSG_NOSIGNAL) != ssize_t(len))
    return make_error(Errc::kIo, std::string("sendmsg: ") + strerror(errno));
  return {};
}

Result<Reply> Frontend::recv(int timeout_ms) {
  if (timeout_ms < 0) timeout_ms = timeout_ms_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::string err;
    switch (rx_.read(fd_.get(), &err)) {
      case Receiver::Rx::kMessage: {
        Message& m = rx_.msg();
        Reply r;
        r.hdr = m.hdr;
        r.payload.assign(m.payload, m.payload + m.hdr.size);
        for (uint32_t i = 0; i < m.nfds; ++i) r.fds.push_back(m.take_fd(i));
        rx_.reset();
        return r;
      }
      case Receiver::Rx::kClosed:
        return make_error(Errc::kIo, "back-end closed the connection");
      case Receiver::Rx::kError:
        return make_error(Errc::kProtocol, err);
      case Receiver::Rx::kAgain: {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return make_error(Errc::kTimeout, "no reply from the back-end");
        pollfd p{fd_.get(), POLLIN, 0};
        ::poll(&p, 1, int(left.count()));
        break;
      }
    }
  }
}

bool Frontend::peer_closed(int timeout_ms) {
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  ssize_t n = ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN);
}

Result<Reply> Frontend::request(uint32_t req, const void* payload, uint32_t size, std::span<const int> fds) {
  VDPU_TRY(send(req, payload, size, fds));
  auto r = recv();
  if (!r) return r.error();
  if (r->hdr.request != req)
    return make_error(Errc::kProtocol, fmt::format("reply to {} for {}", request_name(r->hdr.request),
                                                   request_name(req)));
  return r;
}

Status Frontend::simple(uint32_t req, const void* payload, uint32_t size, std::span<const int> fds) {
  if (!reply_ack()) return send(req, payload, size, fds);
  VDPU_TRY(send(req, payload, size, fds, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK));
  auto r = recv();
  if (!r) return r.error();
  if (r->hdr.request != req || r->hdr.size != 8)
    return make_error(Errc::kProtocol, fmt::format("bad ack for {}", request_name(req)));
  if (r->u64() != 0) return make_error(Errc::kProtocol, fmt::format("back-end refused {}", request_name(req)));
  return {};
}

// ---------------------------------------------------------------------------
// Frontend: typed requests

namespace {
Result<uint64_t> reply_u64(Result<Reply> r) {
  if (!r) return r.error();
  if (r->hdr.size != 8) return make_error(Errc::kProtocol, "reply is not a u64");
  return r->u64();
}
}  // namespace

Result<uint64_t> Frontend::get_features() { return reply_u64(request(VHOST_USER_GET_FEATURES, nullptr, 0)); }
Status Frontend::set_features(uint64_t f) { return simple(VHOST_USER_SET_FEATURES, &f, 8); }
Result<uint64_t> Frontend::get_protocol_features() {
  return reply_u64(request(VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0));
}
Status Frontend::set_protocol_features(uint64_t f) {
  VDPU_TRY(send(VHOST_USER_SET_PROTOCOL_FEATURES, &f, 8));  // never acked: REPLY_ACK starts after it
  protocol_features_ = f;
  return {};
}
Status Frontend::set_owner() { return simple(VHOST_USER_SET_OWNER, nullptr, 0); }
Status Frontend::reset_device() { return simple(VHOST_USER_RESET_DEVICE, nullptr, 0); }
Result<uint64_t> Frontend::get_queue_num() { return reply_u64(request(VHOST_USER_GET_QUEUE_NUM, nullptr, 0)); }
Result<uint64_t> Frontend::get_max_mem_slots() {
  return reply_u64(request(VHOST_USER_GET_MAX_MEM_SLOTS, nullptr, 0));
}

Status Frontend::set_mem_table(std::span<const MemRegion> regions, std::span<const int> fds) {
  MemoryTable t{};
  if (regions.size() > VHOST_MEMORY_BASELINE_NREGIONS) return make_error(Errc::kInvalidArgument, "too many regions");
  t.nregions = uint32_t(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) t.regions[i] = regions[i];
  // As QEMU does: only the entries in use.
  return simple(VHOST_USER_SET_MEM_TABLE, &t, uint32_t(kMemoryTableHeader + regions.size() * sizeof(MemRegion)),
                fds);
}

Status Frontend::add_mem_reg(const MemRegion& r, int fd) {
  SingleMemRegion s{0, r};
  const int fds[1] = {fd};
  return simple(VHOST_USER_ADD_MEM_REG, &s, sizeof(s), fds);
}

Status Frontend::rem_mem_reg(const MemRegion& r) {
  SingleMemRegion s{0, r};
  return simple(VHOST_USER_REM_MEM_REG, &s, sizeof(s));
}

Status Frontend::set_vring_num(uint32_t q, uint32_t num) {
  VringState s{q, num};
  return simple(VHOST_USER_SET_VRING_NUM, &s, sizeof(s));
}

Status Frontend::set_vring_base(uint32_t q, uint32_t base) {
  VringState s{q, base};
  return simple(VHOST_USER_SET_VRING_BASE, &s, sizeof(s));
}

Status Frontend::set_vring_addr(uint32_t q, uint64_t desc, uint64_t used, uint64_t avail) {
  VringAddr a{q, 0, desc, used, avail, 0};
  return simple(VHOST_USER_SET_VRING_ADDR, &a, sizeof(a));
}

Status Frontend::vring_file(uint32_t req, uint32_t q, int fd) {
  uint64_t u = q & VHOST_USER_VRING_IDX_MASK;
  if (fd < 0) {
    u |= VHOST_USER_VRING_NOFD_MASK;
    return simple(req, &u, 8);
  }
  const int fds[1] = {fd};
  return simple(req, &u, 8, fds);
}

Status Frontend::set_vring_kick(uint32_t q, int fd) { return vring_file(VHOST_USER_SET_VRING_KICK, q, fd); }
Status Frontend::set_vring_call(uint32_t q, int fd) { return vring_file(VHOST_USER_SET_VRING_CALL, q, fd); }
Status Frontend::set_vring_err(uint32_t q, int fd) { return vring_file(VHOST_USER_SET_VRING_ERR, q, fd); }

Status Frontend::set_vring_enable(uint32_t q, bool on) {
  VringState s{q, on ? 1u : 0u};
  return simple(VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s));
}

Result<uint32_t> Frontend::get_vring_base(uint32_t q) {
  VringState s{q, 0};
  auto r = request(VHOST_USER_GET_VRING_BASE, &s, sizeof(s));
  if (!r) return r.error();
  if (r->hdr.size != sizeof(VringState)) return make_error(Errc::kProtocol, "bad GET_VRING_BASE reply");
  VringState out;
  std::memcpy(&out, r->payload.data(), sizeof(out));
  return out.num;
}

Result<std::vector<uint8_t>> Frontend::get_config(uint32_t offset, uint32_t size) {
  if (size > VHOST_USER_MAX_CONFIG_SIZE) return make_error(Errc::kInvalidArgument, "config size > 256");
  uint8_t buf[kMaxPayload] = {};
  ConfigHeader ch{offset, size, 0};
  std::memcpy(buf, &ch, sizeof(ch));
  auto r = request(VHOST_USER_GET_CONFIG, buf, uint32_t(sizeof(ch) + size));
  if (!r) return r.error();
  // "back-end's payload size MUST match the front-end's request".
  if (r->hdr.size != sizeof(ch) + size) return make_error(Errc::kProtocol, "back-end refused GET_CONFIG");
  return std::vector<uint8_t>(r->payload.begin() + sizeof(ch), r->payload.end());
}

Status Frontend::set_config(uint32_t offset, std::span<const uint8_t> data, uint32_t flags) {
  if (data.size() > VHOST_USER_MAX_CONFIG_SIZE) return make_error(Errc::kInvalidArgument, "config size > 256");
  uint8_t buf[kMaxPayload] = {};
  ConfigHeader ch{offset, uint32_t(data.size()), flags};
  std::memcpy(buf, &ch, sizeof(ch));
  if (!data.empty()) std::memcpy(buf + sizeof(ch), data.data(), data.size());
  return simple(VHOST_USER_SET_CONFIG, buf, uint32_t(sizeof(ch) + data.size()));
}

Result<InflightDesc> Frontend::get_inflight_fd(uint16_t num_queues, uint16_t queue_size, UniqueFd* fd) {
  InflightDesc d{0, 0, num_queues, queue_size};
  auto r = request(VHOST_USER_GET_INFLIGHT_FD, &d, sizeof(d));
  if (!r) return r.error();
  if (r->hdr.size != sizeof(InflightDesc) || r->fds.size() != 1)
    return make_error(Errc::kProtocol, "bad GET_INFLIGHT_FD reply");
  std::memcpy(&d, r->payload.data(), sizeof(d));
  *fd = std::move(r->fds[0]);
  return d;
}

Status Frontend::set_inflight_fd(const InflightDesc& d, int fd) {
  const int fds[1] = {fd};
  return simple(VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d), fds);
}

}  // namespace vdpu::vhost_user::fe
