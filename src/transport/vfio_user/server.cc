#include "transport/vfio_user/server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "runtime/runtime.h"

namespace vdpu::vfio_user {

struct Server::Mapping {
  void* base = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (base) munmap(base, len);
  }
};

namespace {
// Messages handled per readiness callback: a client that streams requests
// cannot keep the reactor from its other fds (level-triggered: the rest
// comes on the next callback).
constexpr int kMaxMessagesPerWakeup = 16;

template <class T>
bool get(const Message& m, T& out, size_t at = 0) {
  if (m.payload.size() < at + sizeof(T)) return false;
  std::memcpy(&out, m.payload.data() + at, sizeof(T));
  return true;
}
template <class T>
void put(std::vector<uint8_t>& v, const T& x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  v.insert(v.end(), p, p + sizeof(T));
}
int errno_of(const Error& e) { return e.code == Errc::kInvalidArgument ? EINVAL : EIO; }

bool is_eventfd(int fd) {
  char link[64], target[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n <= 0) return false;
  target[n] = 0;
  return std::strcmp(target, "anon_inode:[eventfd]") == 0;
}
}  // namespace

Server::Server(std::string socket_path, pci::Function& fn, rt::Reactor& reactor)
    : path_(std::move(socket_path)),
      fn_(fn),
      reactor_(reactor),
      nvec_(std::min<uint32_t>(fn.num_msix(), 2048)),
      irq_fd_(new std::atomic<int>[nvec_ + 1]),
      irq_masked_(new std::atomic<uint8_t>[nvec_ + 1]),
      irq_pending_(new std::atomic<uint8_t>[nvec_ + 1]) {
  for (uint32_t i = 0; i <= nvec_; ++i) {
    irq_fd_[i].store(-1);
    irq_masked_[i].store(0);
    irq_pending_[i].store(0);
  }
}

Server::~Server() { stop(); }

Status Server::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path))
    return make_error(Errc::kInvalidArgument, "socket path too long: " + path_);
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  unlink(path_.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4) != 0) {
    int e = errno;
    close(fd);
    return make_error(Errc::kIo, "bind/listen " + path_ + ": " + strerror(e));
  }
  listen_ = fd;
  if (auto s = reactor_.add_fd(listen_, EPOLLIN, [this](uint32_t) { on_listen_ready(); }); !s) {
    close(listen_);
    listen_ = -1;
    return s;
  }
  listening_ = true;
  VDPU_INFO("vfio-user: {} listening on {}", fn_.name(), path_);
  return {};
}

void Server::stop() {
  if (conn_ >= 0) {
    if (watched_) reactor_.remove_fd(conn_);
    watched_ = 0;
    close(conn_);
    conn_ = -1;
  }
  reader_.reset();
  out_.clear();
  resetting_ = false;
  clear_irqs();
  if (attached_) {
    attached_ = false;
    fn_.detach([] {});
  }
  negotiated_ = false;
  dma_.clear();
  map_.reset();
  if (listen_ >= 0) {
    if (listening_) reactor_.remove_fd(listen_);
    listening_ = false;
    close(listen_);
    listen_ = -1;
    unlink(path_.c_str());
  }
}

void Server::on_listen_ready() {
  // Non-blocking: every read and write on the connection returns at once.
  int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  if (conn_ >= 0) {  // cannot happen: the listen fd is unwatched while connected
    close(fd);
    return;
  }
  conn_ = fd;
  ++conn_gen_;
  ++stats_.connections;
  reader_.reset();
  out_.clear();
  resetting_ = false;
  // One client at a time: further clients wait in the backlog until this one leaves.
  reactor_.remove_fd(listen_);
  listening_ = false;
  update_watch();
  if (conn_ < 0) return;  // epoll failure: dropped
  VDPU_INFO("vfio-user: client connected to {}", path_);
}

void Server::update_watch() {
  uint32_t want = 0;
  if (conn_ >= 0 && !resetting_) want = out_.empty() ? uint32_t(EPOLLIN | EPOLLRDHUP) : uint32_t(EPOLLOUT);
  if (want == watched_) return;
  if (watched_) reactor_.remove_fd(conn_);
  watched_ = 0;
  if (!want) return;
  if (auto s = reactor_.add_fd(conn_, want, [this](uint32_t ev) { on_conn_ready(ev); }); !s) {
    VDPU_ERR("vfio-user {}: {}", path_, s.error().message);
    disconnect("epoll failure");
    return;
  }
  watched_ = want;
}

void Server::on_conn_ready(uint32_t /*events*/) {
  if (conn_ < 0) return;
  if (!out_.empty() && !flush_out()) return;  // dropped
  // Whatever has arrived, without waiting for the rest of a message: a
  // client that stalls mid-message keeps only its own partial buffer.
  for (int i = 0; i < kMaxMessagesPerWakeup && conn_ >= 0 && !resetting_ && out_.empty(); ++i) {
    Message m;
    auto r = reader_.read(conn_, m);
    if (!r) {
      std::string why = is_eof(r.error()) ? "client closed the connection" : r.error().message;
      if (r.error().code == Errc::kProtocol)
        VDPU_WARN_RL("vfio-user {}: malformed message ({}): dropping the client", path_, why);
      disconnect(why.c_str());
      return;
    }
    if (!*r) break;  // the rest has not arrived yet
    handle(m, [this](Reply&& rep) { send_reply(std::move(rep)); });
  }
  update_watch();
}

void Server::send_reply(Reply&& r) {
  if (r.suppressed || conn_ < 0) return;
  OutMsg o;
  Header h = r.hdr;
  h.msg_size = uint32_t(sizeof(Header) + r.payload.size());
  o.bytes.resize(h.msg_size);
  std::memcpy(o.bytes.data(), &h, sizeof(h));
  if (!r.payload.empty()) std::memcpy(o.bytes.data() + sizeof(h), r.payload.data(), r.payload.size());
  o.fds = std::move(r.fds);
  out_.push_back(std::move(o));
  if (out_.size() == 1 && !flush_out()) return;  // else it waits its turn
  update_watch();
}

bool Server::flush_out() {
  while (!out_.empty()) {
    OutMsg& o = out_.front();
    iovec iov{o.bytes.data() + o.off, o.bytes.size() - o.off};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxMsgFds)];
    if (o.off == 0 && !o.fds.empty()) {
      size_t nfd = std::min<size_t>(o.fds.size(), kMaxMsgFds);
      mh.msg_control = cbuf;
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfd);
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
      std::memcpy(CMSG_DATA(c), o.fds.data(), sizeof(int) * nfd);
    }
    ssize_t n;
    do {
      n = sendmsg(conn_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;  // EPOLLOUT resumes
      std::string why = std::string("sendmsg: ") + strerror(errno);
      disconnect(why.c_str());
      return false;
    }
    o.off += size_t(n);  // the fds went with the first byte
    if (o.off == o.bytes.size()) out_.pop_front();
  }
  return true;
}

void Server::disconnect(const char* why) {
  if (conn_ < 0) return;
  VDPU_INFO("vfio-user: {}: client gone ({})", path_, why);
  if (watched_) reactor_.remove_fd(conn_);
  watched_ = 0;
  close(conn_);
  conn_ = -1;
  reader_.reset();
  out_.clear();
  resetting_ = false;
  reset_session([this] {
    if (listen_ >= 0 && !listening_ && conn_ < 0) {
      if (reactor_.add_fd(listen_, EPOLLIN, [this](uint32_t) { on_listen_ready(); }))
        listening_ = true;
    }
  });
}

void Server::reset_session(std::function<void()> done) {
  negotiated_ = false;
  clear_irqs();
  auto finish = [this, done = std::move(done)] {
    dma_.clear();
    map_.reset();
    if (done) done();
  };
  if (attached_) {
    attached_ = false;
    fn_.detach(std::move(finish));
  } else {
    finish();
  }
}

// Closes eventfds only once every data reactor has passed a message boundary,
// so that a raise() that loaded an old fd never writes to a reused number.
void Server::retire_fds(std::vector<int> fds) {
  if (fds.empty()) return;
  rt::Runtime* r = rt::Runtime::get();
  if (!r || r->size() == 0) {
    for (int fd : fds) close(fd);
    return;
  }
  auto left = std::make_shared<std::atomic<size_t>>(r->size());
  auto owned = std::make_shared<std::vector<int>>(std::move(fds));
  for (size_t i = 0; i < r->size(); ++i)
    r->reactor(i).send_blocking([left, owned] {
      if (left->fetch_sub(1) == 1)
        for (int fd : *owned) close(fd);
    });
}

void Server::clear_irqs() {
  std::vector<int> old;
  for (uint32_t i = 0; i < nvec_; ++i) {
    int fd = irq_fd_[i].exchange(-1);
    if (fd >= 0) old.push_back(fd);
    irq_masked_[i].store(0);
    irq_pending_[i].store(0);
  }
  retire_fds(std::move(old));
}

void Server::raise(uint16_t v) noexcept {
  if (v >= nvec_) return;
  if (irq_masked_[v].load()) {
    irq_pending_[v].store(1);
    // Re-check against a concurrent unmask (which clears mask, then takes pending).
    if (irq_masked_[v].load() || !irq_pending_[v].exchange(0)) return;
  }
  int fd = irq_fd_[v].load(std::memory_order_acquire);
  if (fd < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
  irqs_.fetch_add(1, std::memory_order_relaxed);
}

void Server::rebuild_map() {
  std::vector<hostmem::Region> regions;
  std::vector<std::shared_ptr<Mapping>> owners;
  for (const DmaRegion& d : dma_) {
    if (!d.map) continue;  // no fd: DMA there fails (the device reports an error)
    hostmem::Region r;
    r.gpa = d.iova;
    r.size = d.size;
    r.hva = d.hva;
    r.writable = d.writable;
    regions.push_back(r);  // mmap_base stays null: the Mapping owners unmap
    owners.push_back(d.map);
  }
  map_ = hostmem::MemoryMapPtr(new hostmem::MemoryMap(std::move(regions)),
                               [owners = std::move(owners)](const hostmem::MemoryMap* m) { delete m; });
  if (attached_) fn_.dma_changed(map_);
}

void Server::handle(Message& m, std::function<void(Reply&&)> send) {
  ++stats_.messages;
  // -L vfio_user / log_set_flag vfio_user (SPDK's flag name).
  VDPU_DEBUGLOG("vfio_user", "vfio-user {}: command {} id {} size {} fds {}", path_, uint16_t(m.hdr.command),
                uint16_t(m.hdr.msg_id), uint32_t(m.hdr.msg_size), m.fds.size());
  Reply r;
  r.hdr.msg_id = m.hdr.msg_id;
  r.hdr.command = m.hdr.command;
  r.hdr.flags = kFlagsTypeReply;
  const bool no_reply = m.hdr.flags & kFlagsNoReply;
  auto finish = [&](int err) {
    if (err) {
      ++stats_.errors;
      VDPU_WARN_RL("vfio-user {}: command {} (id {}) failed: {}", path_, uint16_t(m.hdr.command), uint16_t(m.hdr.msg_id),
                   strerror(err));
      r.payload.clear();
      r.fds.clear();
      r.hdr.flags |= kFlagsError;
      r.hdr.error_no = uint32_t(err);
    }
    r.suppressed = no_reply;
    m.close_fds();  // fds not taken by a handler are closed before the reply
    send(std::move(r));
  };
  // Header (spec "Header"): only commands flow client -> server here; the
  // Error flag is meaningless on a command.
  if ((m.hdr.flags & kFlagsTypeMask) != kFlagsTypeCommand || (m.hdr.flags & kFlagsError))
    return finish(EINVAL);
  uint16_t cmd = m.hdr.command;
  if (cmd != VFIO_USER_VERSION && !negotiated_) return finish(EINVAL);  // VERSION comes first
  // Only DMA_MAP and SET_IRQS carry fds; any other fd is closed (Message dtor).
  if (!m.fds.empty() && cmd != VFIO_USER_DMA_MAP && cmd != VFIO_USER_DEVICE_SET_IRQS)
    return finish(EINVAL);
  switch (cmd) {
    case VFIO_USER_VERSION: return finish(on_version(m, r));
    case VFIO_USER_DMA_MAP: return finish(on_dma_map(m, r));
    case VFIO_USER_DMA_UNMAP: return finish(on_dma_unmap(m, r));
    case VFIO_USER_DEVICE_GET_INFO: return finish(on_get_info(m, r));
    case VFIO_USER_DEVICE_GET_REGION_INFO: return finish(on_region_info(m, r));
    case VFIO_USER_DEVICE_GET_IRQ_INFO: return finish(on_irq_info(m, r));
    case VFIO_USER_DEVICE_SET_IRQS: return finish(on_set_irqs(m, r));
    case VFIO_USER_REGION_READ: return finish(on_region_read(m, r));
    case VFIO_USER_REGION_WRITE: return finish(on_region_write(m, r));
    case VFIO_USER_DEVICE_RESET: {
      if (!m.payload.empty()) return finish(EINVAL);
      // Reply only after the reset finished; read no request meanwhile.
      resetting_ = true;
      update_watch();
      auto hdr = r.hdr;
      uint64_t gen = conn_gen_;
      fn_.reset([this, hdr, no_reply, gen, send = std::move(send)] {
        if (gen != conn_gen_) return;  // that client is gone; do not answer the next one
        resetting_ = false;
        Reply rr;
        rr.hdr = hdr;
        rr.suppressed = no_reply;
        send(std::move(rr));
        update_watch();
      });
      return;
    }
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
    case VFIO_USER_DIRTY_PAGES:
    case VFIO_USER_REGION_WRITE_MULTI:
    case VFIO_USER_DEVICE_FEATURE:
    case VFIO_USER_MIG_DATA_READ:
    case VFIO_USER_MIG_DATA_WRITE:
      return finish(ENOSYS);  // valid, not supported (not advertised)
    default:
      return finish(EINVAL);  // unknown, or server->client only (DMA_READ/WRITE)
  }
}

int Server::on_version(Message& m, Reply& r) {
  Version v;
  if (negotiated_ || !get(m, v)) return EINVAL;
  // Spec "VFIO_USER_VERSION": majors must match; the minor is the lower one.
  if (v.major != kMajor) return EINVAL;
  std::string json(m.payload.begin() + sizeof(Version), m.payload.end());
  while (!json.empty() && json.back() == '\0') json.pop_back();
  if (json.find('\0') != std::string::npos) return EINVAL;
  uint32_t max_fds = 1, max_xfer = kMaxDataXferSize;
  if (!json.empty()) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return EINVAL;
    if (j.contains("capabilities")) {
      const auto& c = j["capabilities"];
      if (!c.is_object()) return EINVAL;
      auto num = [&c](const char* k, uint64_t lo, uint64_t hi, uint32_t* out) {
        if (!c.contains(k)) return true;
        if (!c[k].is_number_unsigned()) return false;
        uint64_t x = c[k].get<uint64_t>();
        if (x < lo || x > hi) return false;
        if (out) *out = uint32_t(x);
        return true;
      };
      uint32_t pgsizes = 0;
      if (!num("max_msg_fds", 0, 1024, &max_fds) || !num("max_data_xfer_size", 1, UINT32_MAX, &max_xfer) ||
          !num("pgsizes", 1, UINT64_MAX, nullptr) || !num("max_dma_maps", 0, UINT64_MAX, nullptr))
        return EINVAL;
      (void)pgsizes;
      if (c.contains("migration") && !c["migration"].is_object()) return EINVAL;
    }
  }
  client_max_fds_ = max_fds;
  client_max_xfer_ = max_xfer;
  Version out{kMajor, std::min<uint16_t>(v.minor, kMinor)};
  nlohmann::json caps = {{"capabilities",
                          {{"max_msg_fds", kMaxMsgFds},
                           {"max_data_xfer_size", kMaxDataXferSize},
                           {"pgsizes", 4096},
                           {"max_dma_maps", kMaxDmaMaps}}}};
  std::string s = caps.dump();
  put(r.payload, out);
  r.payload.insert(r.payload.end(), s.begin(), s.end());
  r.payload.push_back(0);
  negotiated_ = true;
  if (!attached_) {
    attached_ = true;
    map_ = std::make_shared<const hostmem::MemoryMap>();
    fn_.attach(map_, this);
  }
  return 0;
}

int Server::on_dma_map(Message& m, Reply& r) {
  DmaMap d;
  // Spec "VFIO_USER_DMA_MAP": argsz is the size of this structure.
  if (m.payload.size() != sizeof(DmaMap) || !get(m, d) || d.argsz != sizeof(DmaMap)) return EINVAL;
  if (d.flags & ~(VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) return EINVAL;
  if (!d.size || d.address + d.size < d.address || m.fds.size() > 1) return EINVAL;
  for (const DmaRegion& x : dma_)
    if (d.address < x.iova + x.size && x.iova < d.address + d.size) return EEXIST;
  if (dma_.size() >= kMaxDmaMaps) return ENOSPC;
  DmaRegion reg;
  reg.iova = d.address;
  reg.size = d.size;
  reg.readable = d.flags & VFIO_USER_F_DMA_REGION_READ;
  reg.writable = d.flags & VFIO_USER_F_DMA_REGION_WRITE;
  if (m.fds.size() == 1) {
    int fd = m.fds[0];
    struct stat st;
    // Map only what the file holds: a mapping past EOF would SIGBUS on access.
    if (fstat(fd, &st) != 0) return EINVAL;
    if (S_ISREG(st.st_mode) && (d.offset > uint64_t(st.st_size) || d.size > uint64_t(st.st_size) - d.offset))
      return EINVAL;
    uint64_t page = 4096, base = d.offset & ~(page - 1), delta = d.offset - base;
    int prot = (reg.readable ? PROT_READ : 0) | (reg.writable ? PROT_WRITE : 0);
    if (!prot) prot = PROT_READ;
    if (d.size > SIZE_MAX - delta) return EINVAL;
    void* p = mmap(nullptr, d.size + delta, prot, MAP_SHARED, fd, off_t(base));
    if (p == MAP_FAILED) return errno ? errno : EINVAL;
    reg.map = std::make_shared<Mapping>();
    reg.map->base = p;
    reg.map->len = d.size + delta;
    reg.hva = static_cast<uint8_t*>(p) + delta;
  } else {
    VDPU_WARN_RL("vfio-user {}: DMA region {:#x}+{:#x} without fd: not accessible", path_, uint64_t(d.address), uint64_t(d.size));
  }
  dma_.push_back(std::move(reg));
  rebuild_map();
  (void)r;
  return 0;
}

int Server::on_dma_unmap(Message& m, Reply& r) {
  DmaUnmap u;
  if (m.payload.size() != sizeof(DmaUnmap) || !get(m, u) || u.argsz != sizeof(DmaUnmap)) return EINVAL;
  if (u.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) return EINVAL;  // no migration support
  if (u.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) return EINVAL;
  if (u.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (u.address || u.size) return EINVAL;
    dma_.clear();
  } else {
    auto it = std::find_if(dma_.begin(), dma_.end(),
                           [&](const DmaRegion& x) { return x.iova == u.address && x.size == u.size; });
    if (it == dma_.end()) return ENOENT;
    dma_.erase(it);
  }
  rebuild_map();
  put(r.payload, u);
  return 0;
}

int Server::on_get_info(Message& m, Reply& r) {
  DeviceInfo in;
  if (!get(m, in) || m.payload.size() != sizeof(DeviceInfo) || in.argsz < sizeof(DeviceInfo)) return EINVAL;
  DeviceInfo out{sizeof(DeviceInfo), VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, VFIO_PCI_NUM_REGIONS,
                 VFIO_PCI_NUM_IRQS};
  put(r.payload, out);
  return 0;
}

int Server::on_region_info(Message& m, Reply& r) {
  RegionInfo in;
  if (!get(m, in) || m.payload.size() != sizeof(RegionInfo) || in.argsz < sizeof(RegionInfo)) return EINVAL;
  if (in.index >= VFIO_PCI_NUM_REGIONS) return EINVAL;
  pci::RegionInfo ri = fn_.region_info(static_cast<pci::RegionIndex>(in.index));
  RegionInfo out{};
  out.index = in.index;
  out.size = ri.size;
  if (ri.size && ri.readable) out.flags |= VFIO_REGION_INFO_FLAG_READ;
  if (ri.size && ri.writable) out.flags |= VFIO_REGION_INFO_FLAG_WRITE;
  std::vector<uint8_t> caps;
  if (ri.size && ri.mmappable && ri.mmap_fd >= 0) {
    out.flags |= VFIO_REGION_INFO_FLAG_MMAP;
    out.offset = ri.mmap_fd_offset;  // where the region starts in the fd
    if (!ri.mmap_areas.empty()) {
      SparseMmapCap cap{{VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0}, uint32_t(ri.mmap_areas.size()), 0};
      put(caps, cap);
      for (auto [off, size] : ri.mmap_areas) put(caps, SparseMmapArea{off, size});
      out.flags |= VFIO_REGION_INFO_FLAG_CAPS;
    }
    r.fds.push_back(ri.mmap_fd);
  }
  uint32_t need = uint32_t(sizeof(RegionInfo) + caps.size());
  out.argsz = need;
  // Linux vfio semantics: too small an argsz gets the required size and no caps.
  bool with_caps = !caps.empty() && in.argsz >= need;
  out.cap_offset = with_caps ? sizeof(RegionInfo) : 0;
  put(r.payload, out);
  if (with_caps) r.payload.insert(r.payload.end(), caps.begin(), caps.end());
  if (client_max_fds_ == 0) r.fds.clear();
  return 0;
}

int Server::on_irq_info(Message& m, Reply& r) {
  IrqInfo in;
  if (!get(m, in) || m.payload.size() != sizeof(IrqInfo) || in.argsz < sizeof(IrqInfo)) return EINVAL;
  if (in.index >= VFIO_PCI_NUM_IRQS) return EINVAL;
  IrqInfo out{sizeof(IrqInfo), VFIO_IRQ_INFO_EVENTFD, in.index, 0};
  if (in.index == VFIO_PCI_MSIX_IRQ_INDEX) {
    out.count = nvec_;
    out.flags |= VFIO_IRQ_INFO_NORESIZE | VFIO_IRQ_INFO_MASKABLE;
  }
  put(r.payload, out);
  return 0;
}

int Server::on_set_irqs(Message& m, Reply& r) {
  IrqSet s;
  if (!get(m, s) || s.argsz < sizeof(IrqSet)) return EINVAL;
  uint32_t data = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK, action = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
  // vfio.h: exactly one data type and one action, no other flag bits.
  if (s.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) return EINVAL;
  if (__builtin_popcount(data) != 1 || __builtin_popcount(action) != 1) return EINVAL;
  if (s.index >= VFIO_PCI_NUM_IRQS) return EINVAL;
  size_t want_payload = sizeof(IrqSet) + (data == VFIO_IRQ_SET_DATA_BOOL ? s.count : 0);
  if (m.payload.size() != want_payload) return EINVAL;
  size_t want_fds = data == VFIO_IRQ_SET_DATA_EVENTFD ? s.count : 0;
  if (m.fds.size() != want_fds) return EINVAL;
  uint32_t n = s.index == VFIO_PCI_MSIX_IRQ_INDEX ? nvec_ : 0;
  if (s.count == 0) {
    // DATA_NONE + TRIGGER with count 0 disables every vector of the index.
    if (data != VFIO_IRQ_SET_DATA_NONE || action != VFIO_IRQ_SET_ACTION_TRIGGER) return EINVAL;
    if (s.index == VFIO_PCI_MSIX_IRQ_INDEX) clear_irqs();
    return 0;
  }
  if (s.start >= n || s.count > n - s.start) return EINVAL;
  if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
    if (action != VFIO_IRQ_SET_ACTION_TRIGGER) return EINVAL;  // no masking eventfds
    for (int fd : m.fds)
      if (!is_eventfd(fd)) return EINVAL;
    std::vector<int> old;
    for (uint32_t i = 0; i < s.count; ++i) {
      int prev = irq_fd_[s.start + i].exchange(m.take_fd(i), std::memory_order_acq_rel);
      if (prev >= 0) old.push_back(prev);
    }
    retire_fds(std::move(old));
    return 0;
  }
  for (uint32_t i = 0; i < s.count; ++i) {
    if (data == VFIO_IRQ_SET_DATA_BOOL && !m.payload[sizeof(IrqSet) + i]) continue;
    uint16_t v = uint16_t(s.start + i);
    if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
      raise(v);  // loopback test of the eventfd
    } else if (action == VFIO_IRQ_SET_ACTION_MASK) {
      irq_masked_[v].store(1);
    } else {
      irq_masked_[v].store(0);
      if (irq_pending_[v].exchange(0)) raise(v);
    }
  }
  (void)r;
  return 0;
}

int Server::on_region_read(Message& m, Reply& r) {
  RegionAccess a;
  if (!get(m, a) || m.payload.size() != sizeof(RegionAccess)) return EINVAL;
  if (a.region >= VFIO_PCI_NUM_REGIONS || a.count == 0 || a.count > kMaxDataXferSize ||
      a.count > client_max_xfer_)
    return EINVAL;
  pci::RegionInfo ri = fn_.region_info(static_cast<pci::RegionIndex>(a.region));
  if (!ri.readable || a.offset > ri.size || a.count > ri.size - a.offset) return EINVAL;
  r.payload.resize(sizeof(RegionAccess) + a.count);
  auto res = fn_.region_read(static_cast<pci::RegionIndex>(a.region), a.offset,
                             {r.payload.data() + sizeof(RegionAccess), a.count});
  if (!res) return errno_of(res.error());
  std::memcpy(r.payload.data(), &a, sizeof(a));
  return 0;
}

int Server::on_region_write(Message& m, Reply& r) {
  RegionAccess a;
  if (!get(m, a) || a.count == 0 || a.count > kMaxDataXferSize ||
      m.payload.size() != sizeof(RegionAccess) + size_t(a.count))
    return EINVAL;
  if (a.region >= VFIO_PCI_NUM_REGIONS) return EINVAL;
  pci::RegionInfo ri = fn_.region_info(static_cast<pci::RegionIndex>(a.region));
  if (!ri.writable || a.offset > ri.size || a.count > ri.size - a.offset) return EINVAL;
  auto res = fn_.region_write(static_cast<pci::RegionIndex>(a.region), a.offset,
                              {m.payload.data() + sizeof(RegionAccess), a.count});
  if (!res) return errno_of(res.error());
  put(r.payload, a);
  return 0;
}

}  // namespace vdpu::vfio_user
