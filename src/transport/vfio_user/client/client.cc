#include "transport/vfio_user/client/client.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdpu::vfio_user {
namespace {
template <class T>
std::span<const uint8_t> bytes(const T& x) {
  return {reinterpret_cast<const uint8_t*>(&x), sizeof(T)};
}
}  // namespace

Result<std::unique_ptr<DmaBuffer>> DmaBuffer::create(size_t size) {
  std::unique_ptr<DmaBuffer> b(new DmaBuffer);
  b->fd_ = memfd_create("vdpu-dma", MFD_CLOEXEC);
  if (b->fd_ < 0 || ftruncate(b->fd_, off_t(size)) != 0)
    return make_error(Errc::kIo, std::string("memfd: ") + strerror(errno));
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd_, 0);
  if (p == MAP_FAILED) return make_error(Errc::kIo, std::string("mmap: ") + strerror(errno));
  b->p_ = static_cast<uint8_t*>(p);
  b->size_ = size;
  return b;
}

DmaBuffer::~DmaBuffer() {
  if (p_) munmap(p_, size_);
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<Client>> Client::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return make_error(Errc::kInvalidArgument, "path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    close(fd);
    return make_error(Errc::kIo, "connect " + path + ": " + strerror(e));
  }
  std::unique_ptr<Client> c(new Client);
  c->sock_ = fd;
  return c;
}

Client::~Client() {
  for (auto [p, len] : maps_) munmap(p, len);
  for (auto& r : regions_)
    if (r.fd >= 0) close(r.fd);
  if (sock_ >= 0) close(sock_);
}

Status Client::send(uint16_t command, std::span<const uint8_t> payload, std::span<const int> fds,
                    uint32_t flags) {
  Header h{next_id_++, command, 0, flags, 0};
  return send_message(sock_, h, {&payload, 1}, fds);
}

Result<Message> Client::request(uint16_t command, std::span<const uint8_t> payload,
                                std::span<const int> fds, uint32_t flags) {
  uint16_t id = next_id_;
  VDPU_TRY(send(command, payload, fds, flags));
  Message m;
  VDPU_TRY(recv_message(sock_, kMaxMsgSize, kMaxMsgFds, m));
  if ((m.hdr.flags & kFlagsTypeMask) != kFlagsTypeReply || m.hdr.msg_id != id || m.hdr.command != command)
    return make_error(Errc::kProtocol, "unexpected reply");
  return m;
}

Status Client::check(const Result<Message>& r, const char* what, Message* out) {
  if (!r) return r.error();
  const Message& m = r.value();
  if (m.hdr.flags & kFlagsError) {
    last_errno_ = int(m.hdr.error_no);
    return make_error(Errc::kIo, std::string(what) + ": server error errno " + std::to_string(m.hdr.error_no) +
                                     " (" + strerror(int(m.hdr.error_no)) + ")");
  }
  last_errno_ = 0;
  if (out) *out = std::move(const_cast<Message&>(m));
  return {};
}

Status Client::negotiate(const std::string& json) {
  std::vector<uint8_t> p(sizeof(Version));
  Version v{kMajor, kMinor};
  std::memcpy(p.data(), &v, sizeof(v));
  p.insert(p.end(), json.begin(), json.end());
  p.push_back(0);
  Message m;
  VDPU_TRY(check(request(VFIO_USER_VERSION, p), "VERSION", &m));
  if (m.payload.size() < sizeof(Version)) return make_error(Errc::kProtocol, "short VERSION reply");
  server_caps_.assign(m.payload.begin() + sizeof(Version), m.payload.end());
  while (!server_caps_.empty() && server_caps_.back() == 0) server_caps_.pop_back();
  return {};
}

Result<DeviceInfo> Client::device_info() {
  DeviceInfo in{sizeof(DeviceInfo), 0, 0, 0};
  Message m;
  VDPU_TRY(check(request(VFIO_USER_DEVICE_GET_INFO, bytes(in)), "GET_INFO", &m));
  DeviceInfo out{};
  if (m.payload.size() < sizeof(out)) return make_error(Errc::kProtocol, "short GET_INFO reply");
  std::memcpy(&out, m.payload.data(), sizeof(out));
  return out;
}

Result<ClientRegion> Client::region_info(uint32_t index) {
  RegionInfo in{4096, 0, index, 0, 0, 0};
  in.argsz = 4096;
  Message m;
  VDPU_TRY(check(request(VFIO_USER_DEVICE_GET_REGION_INFO, bytes(in)), "GET_REGION_INFO", &m));
  RegionInfo out{};
  if (m.payload.size() < sizeof(out)) return make_error(Errc::kProtocol, "short region info");
  std::memcpy(&out, m.payload.data(), sizeof(out));
  ClientRegion r;
  r.index = index;
  r.flags = out.flags;
  r.size = out.size;
  r.fd_offset = out.offset;
  r.fd = m.take_fd(0);
  if ((out.flags & VFIO_REGION_INFO_FLAG_CAPS) && out.cap_offset) {
    uint32_t off = out.cap_offset;
    for (int guard = 0; off && guard < 16; ++guard) {
      InfoCapHeader h;
      if (off + sizeof(h) > m.payload.size()) break;
      std::memcpy(&h, m.payload.data() + off, sizeof(h));
      if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP && off + sizeof(SparseMmapCap) <= m.payload.size()) {
        SparseMmapCap c;
        std::memcpy(&c, m.payload.data() + off, sizeof(c));
        for (uint32_t i = 0; i < c.nr_areas; ++i) {
          size_t at = off + sizeof(c) + i * sizeof(SparseMmapArea);
          if (at + sizeof(SparseMmapArea) > m.payload.size()) break;
          SparseMmapArea a;
          std::memcpy(&a, m.payload.data() + at, sizeof(a));
          r.sparse.emplace_back(uint64_t(a.offset), uint64_t(a.size));
        }
      }
      off = h.next;
    }
  }
  for (auto& old : regions_)
    if (old.index == index) {
      if (old.fd >= 0) close(old.fd);
      old = r;
      return r;
    }
  regions_.push_back(r);
  return r;
}

Result<IrqInfo> Client::irq_info(uint32_t index) {
  IrqInfo in{sizeof(IrqInfo), 0, index, 0};
  Message m;
  VDPU_TRY(check(request(VFIO_USER_DEVICE_GET_IRQ_INFO, bytes(in)), "GET_IRQ_INFO", &m));
  IrqInfo out{};
  if (m.payload.size() < sizeof(out)) return make_error(Errc::kProtocol, "short irq info");
  std::memcpy(&out, m.payload.data(), sizeof(out));
  return out;
}

Status Client::dma_map(uint64_t iova, uint64_t size, int fd, uint64_t fd_offset, uint32_t flags) {
  DmaMap d{sizeof(DmaMap), flags, fd_offset, iova, size};
  std::span<const int> fds;
  if (fd >= 0) fds = {&fd, 1};
  return check(request(VFIO_USER_DMA_MAP, bytes(d), fds), "DMA_MAP");
}

Status Client::dma_unmap(uint64_t iova, uint64_t size, uint32_t flags) {
  DmaUnmap u{sizeof(DmaUnmap), flags, iova, size};
  return check(request(VFIO_USER_DMA_UNMAP, bytes(u)), "DMA_UNMAP");
}

Status Client::set_irq_eventfds(uint32_t index, uint32_t start, std::span<const int> fds) {
  IrqSet s{sizeof(IrqSet), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start,
           uint32_t(fds.size())};
  return check(request(VFIO_USER_DEVICE_SET_IRQS, bytes(s), fds), "SET_IRQS");
}

Status Client::disable_irqs(uint32_t index) {
  IrqSet s{sizeof(IrqSet), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, 0, 0};
  return check(request(VFIO_USER_DEVICE_SET_IRQS, bytes(s)), "SET_IRQS");
}

Status Client::irq_action(uint32_t index, uint32_t start, uint32_t count, uint32_t action) {
  IrqSet s{sizeof(IrqSet), VFIO_IRQ_SET_DATA_NONE | action, index, start, count};
  return check(request(VFIO_USER_DEVICE_SET_IRQS, bytes(s)), "SET_IRQS");
}

Status Client::region_read(uint32_t region, uint64_t offset, std::span<uint8_t> out) {
  RegionAccess a{offset, region, uint32_t(out.size())};
  Message m;
  VDPU_TRY(check(request(VFIO_USER_REGION_READ, bytes(a)), "REGION_READ", &m));
  if (m.payload.size() != sizeof(a) + out.size()) return make_error(Errc::kProtocol, "bad REGION_READ reply");
  std::memcpy(out.data(), m.payload.data() + sizeof(a), out.size());
  return {};
}

Status Client::region_write(uint32_t region, uint64_t offset, std::span<const uint8_t> in) {
  RegionAccess a{offset, region, uint32_t(in.size())};
  std::vector<uint8_t> p(sizeof(a));
  std::memcpy(p.data(), &a, sizeof(a));
  p.insert(p.end(), in.begin(), in.end());
  return check(request(VFIO_USER_REGION_WRITE, p), "REGION_WRITE");
}

Status Client::reset() { return check(request(VFIO_USER_DEVICE_RESET, {}), "DEVICE_RESET"); }

Result<uint32_t> Client::read32(uint32_t region, uint64_t offset) {
  uint32_t v = 0;
  VDPU_TRY(region_read(region, offset, {reinterpret_cast<uint8_t*>(&v), 4}));
  return v;
}
Result<uint64_t> Client::read64(uint32_t region, uint64_t offset) {
  uint64_t v = 0;
  VDPU_TRY(region_read(region, offset, {reinterpret_cast<uint8_t*>(&v), 8}));
  return v;
}
Status Client::write32(uint32_t region, uint64_t offset, uint32_t v) {
  return region_write(region, offset, {reinterpret_cast<const uint8_t*>(&v), 4});
}
Status Client::write64(uint32_t region, uint64_t offset, uint64_t v) {
  return region_write(region, offset, {reinterpret_cast<const uint8_t*>(&v), 8});
}

Result<uint8_t*> Client::mmap_area(uint32_t region, uint64_t area_offset) {
  for (const auto& r : regions_) {
    if (r.index != region) continue;
    if (r.fd < 0 || !(r.flags & VFIO_REGION_INFO_FLAG_MMAP)) break;
    for (auto [off, size] : r.sparse) {
      if (off != area_offset) continue;
      void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, off_t(r.fd_offset + off));
      if (p == MAP_FAILED) return make_error(Errc::kIo, std::string("mmap: ") + strerror(errno));
      maps_.emplace_back(p, size);
      return static_cast<uint8_t*>(p);
    }
  }
  return make_error(Errc::kInvalidArgument, "no such mmap area (call region_info first)");
}

}  // namespace vdpu::vfio_user
