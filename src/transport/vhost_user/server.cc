// vhost-user back-end: sockets, message dispatch, session-wide requests
// (features, memory, config, inflight, reset) and the serialised
// asynchronous operations. Vring requests are in server_vring.cc.
#include "transport/vhost_user/server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace vdpu::vhost_user {

namespace {

// Requests whose reply carries a body (vhost-user.rst "Communication"): a
// failure cannot be reported as a u64 ack, so a malformed one ends the
// connection (the spec lets the back-end close on errors).
bool has_explicit_reply(uint32_t r) {
  switch (r) {
    case VHOST_USER_GET_FEATURES:
    case VHOST_USER_GET_PROTOCOL_FEATURES:
    case VHOST_USER_GET_VRING_BASE:
    case VHOST_USER_GET_QUEUE_NUM:
    case VHOST_USER_GET_INFLIGHT_FD:
    case VHOST_USER_GET_MAX_MEM_SLOTS:
    case VHOST_USER_GET_CONFIG:
      return true;
    default:
      return false;
  }
}

Result<UniqueFd> make_listen_socket(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    return make_error(Errc::kInvalidArgument, "socket path empty or too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(Errc::kInvalidArgument, path + " exists and is not a socket");
    // A socket file: in use by a live server, or stale from a dead one.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0)
      return make_error(Errc::kExists, path + " is in use by another server");
    ::unlink(path.c_str());
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    return make_error(Errc::kIo, "bind " + path + ": " + strerror(errno));
  if (::listen(fd.get(), 8) != 0) {
    ::unlink(path.c_str());
    return make_error(Errc::kIo, std::string("listen: ") + strerror(errno));
  }
  return fd;
}

}  // namespace

Server::Server(rt::Reactor& reactor, virtio::Device& dev) : reactor_(reactor), dev_(dev) {
  vrings_.resize(dev.num_queues());
}

Result<std::unique_ptr<Server>> Server::listen(rt::Reactor& reactor, virtio::Device& dev, std::string path) {
  auto fd = make_listen_socket(path);
  if (!fd) return fd.error();
  std::unique_ptr<Server> s(new Server(reactor, dev));
  s->path_ = std::move(path);
  s->listen_ = std::move(*fd);
  Server* raw = s.get();
  auto st = reactor.add_fd(s->listen_.get(), EPOLLIN, [raw](uint32_t) { raw->on_listen_readable(); });
  if (!st) {
    ::unlink(s->path_.c_str());
    return st.error();
  }
  s->listening_ = true;
  VDPU_INFO("vhost-user: listening on {} ({} queues, device id {})", s->path_, dev.num_queues(),
            dev.device_id());
  return s;
}

Result<std::unique_ptr<Server>> Server::adopt(rt::Reactor& reactor, virtio::Device& dev, UniqueFd conn) {
  if (!conn) return make_error(Errc::kInvalidArgument, "no connection fd");
  int fl = ::fcntl(conn.get(), F_GETFL);
  if (fl < 0 || ::fcntl(conn.get(), F_SETFL, fl | O_NONBLOCK) < 0)
    return make_error(Errc::kIo, std::string("fcntl: ") + strerror(errno));
  std::unique_ptr<Server> s(new Server(reactor, dev));
  s->adopted_ = true;
  s->path_ = "fd:" + std::to_string(conn.get());
  s->conn_ = std::move(conn);
  s->stats_.connections = 1;
  VDPU_TRY(s->watch_conn());
  return s;
}

Server::~Server() {
  *alive_ = false;
  // Queues still running keep their fds, inflight and memory alive until the
  // device reports them stopped.
  for (uint16_t q = 0; q < vrings_.size(); ++q) {
    Vring& v = vrings_[q];
    if (!v.running) continue;
    dev_.stop_queue(q, [k = v.active_kick, c = v.active_call, i = v.active_inflight,
                        m = v.active_mem](virtio::QueueState) {});
  }
  unwatch_conn();
  if (listen_) {
    reactor_.remove_fd(listen_.get());
    listen_.reset();
    ::unlink(path_.c_str());
  }
}

void Server::shutdown(std::function<void()> done) {
  run_op([this, done = std::move(done)](Done finished) {
    auto which = std::make_shared<std::vector<uint16_t>>();
    stop_all(which, [this, done, finished] {
      dev_.reset();
      unwatch_conn();
      conn_.reset();
      reset_session(true);
      if (listen_) {
        reactor_.remove_fd(listen_.get());
        listen_.reset();
        ::unlink(path_.c_str());
      }
      listening_ = false;
      if (done) done();
      finished();
    });
  });
}

uint32_t Server::running_queues() const {
  uint32_t n = 0;
  for (auto& v : vrings_) n += v.running;
  return n;
}

// ---------------------------------------------------------------------------
// Connection handling.

Status Server::watch_conn() {
  if (conn_watched_ || !conn_) return {};
  VDPU_TRY(reactor_.add_fd(conn_.get(), EPOLLIN, [this](uint32_t) { on_conn_readable(); }));
  conn_watched_ = true;
  return {};
}

void Server::unwatch_conn() {
  if (!conn_watched_) return;
  reactor_.remove_fd(conn_.get());
  conn_watched_ = false;
}

void Server::on_listen_readable() {
  for (;;) {
    UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        VDPU_WARN_RL("vhost-user {}: accept: {}", path_, strerror(errno));
      return;
    }
    if (conn_) {
      // One front-end at a time: the device has one driver.
      ++stats_.refused;
      VDPU_WARN_RL("vhost-user {}: refusing a second front-end while one is connected", path_);
      continue;  // fd closes here
    }
    conn_ = std::move(fd);
    rx_.reset();
    ++stats_.connections;
    VDPU_INFO("vhost-user {}: front-end connected", path_);
    // After a disconnect the old session may still be tearing down: the new
    // connection is read once that finishes (op_finished()).
    if (ops_.empty()) {
      if (auto st = watch_conn(); !st) disconnect("cannot watch the connection");
    }
  }
}

void Server::on_conn_readable() {
  while (conn_ && ops_.empty()) {
    std::string err;
    switch (rx_.read(conn_.get(), &err)) {
      case Receiver::Rx::kAgain:
        return;
      case Receiver::Rx::kClosed:
        disconnect("front-end closed the connection");
        return;
      case Receiver::Rx::kError:
        disconnect(err.c_str());
        return;
      case Receiver::Rx::kMessage:
        handle(rx_.msg());
        rx_.reset();  // closes any fd the handler did not take
        break;
    }
  }
  // An asynchronous request is pending: stop reading until it finishes.
  if (conn_ && !ops_.empty()) unwatch_conn();
}

void Server::disconnect(const char* why) {
  if (!conn_) return;
  VDPU_INFO("vhost-user {}: front-end disconnected ({})", path_, why);
  ++stats_.disconnects;
  unwatch_conn();
  conn_.reset();
  // Stop every queue, reset the device and forget the session, then serve
  // the next front-end from a clean state (reconnect).
  run_op([this](Done finished) {
    auto which = std::make_shared<std::vector<uint16_t>>();
    stop_all(which, [this, finished] {
      dev_.reset();
      reset_session(true);
      finished();
    });
  });
}

void Server::reset_session(bool all) {
  for (auto& v : vrings_) v = Vring{};  // all stopped by now; size unchanged
  if (!all) return;
  owner_set_ = false;
  features_ = 0;
  features_set_ = false;
  protocol_features_ = 0;
  mem_.clear();
  map_.reset();
}

// ---------------------------------------------------------------------------
// Asynchronous operations.

void Server::run_op(Op op) {
  ops_.push_back(std::move(op));
  if (op_running_) return;
  op_running_ = true;
  Op cur = std::move(ops_.front());
  cur([this, alive = alive_] {
    if (*alive) op_finished();
  });
}

void Server::op_finished() {
  ops_.pop_front();
  op_running_ = false;
  if (!ops_.empty()) {
    op_running_ = true;
    Op cur = std::move(ops_.front());
    cur([this, alive = alive_] {
      if (*alive) op_finished();
    });
    return;
  }
  // Idle again: resume reading the front-end (epoll is level-triggered, so
  // bytes that arrived meanwhile wake us at once).
  if (conn_ && !conn_watched_) {
    if (auto st = watch_conn(); !st) disconnect("cannot watch the connection");
  }
}

// ---------------------------------------------------------------------------
// Dispatch.

void Server::reply(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds) {
  if (!conn_) return;
  Header h{request, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, size};
  if (auto st = send_message(conn_.get(), h, payload, fds); !st) {
    VDPU_WARN_RL("vhost-user {}: reply to {}: {}", path_, request_name(request), st.error().message);
    disconnect("reply failed");
  }
}

void Server::handle(Message& m) {
  ++stats_.messages;
  const uint32_t req = m.hdr.request;
  const bool need = m.need_reply();
  // -L vhost / log_set_flag vhost (SPDK's flag name for its vhost target).
  VDPU_DEBUGLOG("vhost", "vhost-user {}: {} size {} fds {}{}", path_, request_name(req), m.hdr.size, m.nfds,
                need ? " need_reply" : "");
  if (auto st = check_message(m); !st) {
    ++stats_.bad_messages;
    VDPU_WARN_RL("vhost-user {}: {}", path_, st.error().message);
    if (has_explicit_reply(req))
      disconnect("malformed request");
    else
      ack(req, need, false);
    return;
  }
  switch (dispatch(m)) {
    case Res::kOk:
      ack(req, need, true);
      break;
    case Res::kFail:
      ++stats_.bad_messages;
      if (has_explicit_reply(req))
        disconnect("request failed");
      else
        ack(req, need, false);
      break;
    case Res::kReplied:
    case Res::kAsync:
      break;
    case Res::kDisconnect:
      ++stats_.bad_messages;
      disconnect("protocol violation");
      break;
  }
}

Server::Res Server::dispatch(Message& m) {
  switch (m.hdr.request) {
    case VHOST_USER_GET_FEATURES: return on_get_features(m);
    case VHOST_USER_SET_FEATURES: return on_set_features(m);
    case VHOST_USER_GET_PROTOCOL_FEATURES: return on_get_protocol_features(m);
    case VHOST_USER_SET_PROTOCOL_FEATURES: return on_set_protocol_features(m);
    case VHOST_USER_SET_OWNER:
      owner_set_ = true;
      return Res::kOk;
    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_RESET_DEVICE:
      return on_reset(m);
    case VHOST_USER_GET_QUEUE_NUM:
      reply_u64(m.hdr.request, dev_.num_queues());
      return Res::kReplied;
    case VHOST_USER_GET_MAX_MEM_SLOTS:
      reply_u64(m.hdr.request, MemTable::kMaxSlots);
      return Res::kReplied;
    case VHOST_USER_SET_MEM_TABLE: return on_set_mem_table(m);
    case VHOST_USER_ADD_MEM_REG: return on_add_mem_reg(m);
    case VHOST_USER_REM_MEM_REG: return on_rem_mem_reg(m);
    case VHOST_USER_GET_CONFIG: return on_get_config(m);
    case VHOST_USER_SET_CONFIG: return on_set_config(m);
    case VHOST_USER_GET_INFLIGHT_FD: return on_get_inflight_fd(m);
    case VHOST_USER_SET_INFLIGHT_FD: return on_set_inflight_fd(m);
    case VHOST_USER_SET_VRING_NUM: return on_vring_num(m);
    case VHOST_USER_SET_VRING_ADDR: return on_vring_addr(m);
    case VHOST_USER_SET_VRING_BASE: return on_vring_base(m);
    case VHOST_USER_GET_VRING_BASE: return on_get_vring_base(m);
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
      return on_vring_file(m);
    case VHOST_USER_SET_VRING_ENABLE: return on_vring_enable(m);
    default:
      // Not offered (log, postcopy, iotlb, in-band notifications, status …)
      // or unknown: refuse, never crash. Fds are closed by the caller.
      VDPU_WARN_RL("vhost-user {}: unsupported request {} ({})", path_, m.hdr.request,
                   request_name(m.hdr.request));
      return Res::kFail;
  }
}

// ---------------------------------------------------------------------------
// Features.

uint64_t Server::offered_features() const {
  // No IOTLB (ACCESS_PLATFORM), no dirty logging (LOG_ALL), no notification
  // data or per-ring reset over vhost-user.
  const uint64_t unsupported =
      virtio::kFAccessPlatform | VHOST_F_LOG_ALL | virtio::kFNotificationData | virtio::kFRingReset;
  return (dev_.device_features() & ~unsupported) | VHOST_USER_F_PROTOCOL_FEATURES;
}

Server::Res Server::on_get_features(Message& m) {
  reply_u64(m.hdr.request, offered_features());
  return Res::kReplied;
}

Server::Res Server::on_set_features(Message& m) {
  const uint64_t f = m.u64();
  if (f & ~offered_features()) {
    // virtio 1.2 §3.1.1: the driver MUST NOT accept a feature the device did not offer.
    VDPU_WARN_RL("vhost-user {}: SET_FEATURES 0x{:x} has features not offered", path_, f);
    return Res::kFail;
  }
  if (auto st = dev_.set_features(f & ~VHOST_USER_F_PROTOCOL_FEATURES); !st) {
    VDPU_WARN_RL("vhost-user {}: device refused features 0x{:x}: {}", path_, f, st.error().message);
    return Res::kFail;
  }
  features_ = f;
  features_set_ = true;
  return Res::kOk;
}

Server::Res Server::on_get_protocol_features(Message& m) {
  reply_u64(m.hdr.request, kServerProtocolFeatures);
  return Res::kReplied;
}

Server::Res Server::on_set_protocol_features(Message& m) {
  const uint64_t f = m.u64();
  if (f & ~kServerProtocolFeatures) {
    VDPU_WARN_RL("vhost-user {}: SET_PROTOCOL_FEATURES 0x{:x} has features not offered", path_, f);
    return Res::kFail;
  }
  protocol_features_ = f;
  return Res::kOk;
}

// ---------------------------------------------------------------------------
// Memory.

Server::Res Server::memory_changed() {
  // Running queues switch to the new map; their rings stay valid because each
  // running ring holds the map (and so the mappings) it was started with.
  map_ = mem_.build();
  dev_.update_memory(map_);
  return Res::kOk;
}

Server::Res Server::on_set_mem_table(Message& m) {
  const auto t = m.as<MemoryTable>();  // size checked: nregions entries present
  if (t.nregions == 0) {
    VDPU_WARN_RL("vhost-user {}: SET_MEM_TABLE without regions", path_);
    return Res::kFail;
  }
  if (auto st = mem_.set(t.regions, m.fds, t.nregions); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_MEM_TABLE: {}", path_, st.error().message);
    return Res::kFail;
  }
  return memory_changed();
}

Server::Res Server::on_add_mem_reg(Message& m) {
  const auto r = m.as<SingleMemRegion>().region;
  if (auto st = mem_.add(r, m.take_fd(0)); !st) {
    VDPU_WARN_RL("vhost-user {}: ADD_MEM_REG: {}", path_, st.error().message);
    return Res::kFail;
  }
  return memory_changed();
}

Server::Res Server::on_rem_mem_reg(Message& m) {
  // A fd, if any, is closed unused (the spec: MUST close it).
  const auto r = m.as<SingleMemRegion>().region;
  if (auto st = mem_.remove(r); !st) {
    VDPU_WARN_RL("vhost-user {}: REM_MEM_REG: {}", path_, st.error().message);
    return Res::kFail;
  }
  return memory_changed();
}

// ---------------------------------------------------------------------------
// Config space.

Server::Res Server::on_get_config(Message& m) {
  const auto ch = m.as<ConfigHeader>();
  if (uint64_t(ch.offset) + ch.size > VHOST_USER_MAX_CONFIG_SIZE) {
    // "vhost-user back-end uses zero length of payload to indicate an error".
    VDPU_WARN_RL("vhost-user {}: GET_CONFIG offset {} size {} out of range", path_, ch.offset, ch.size);
    reply(m.hdr.request, nullptr, 0);
    return Res::kReplied;
  }
  uint8_t out[kMaxPayload] = {};
  std::memcpy(out, &ch, sizeof(ch));
  dev_.read_config(ch.offset, std::span<uint8_t>(out + sizeof(ch), ch.size));
  reply(m.hdr.request, out, uint32_t(sizeof(ch) + ch.size));
  return Res::kReplied;
}

Server::Res Server::on_set_config(Message& m) {
  const auto ch = m.as<ConfigHeader>();
  if (ch.flags > VHOST_SET_CONFIG_TYPE_MIGRATION || uint64_t(ch.offset) + ch.size > VHOST_USER_MAX_CONFIG_SIZE) {
    VDPU_WARN_RL("vhost-user {}: SET_CONFIG offset {} size {} flags {} refused", path_, ch.offset, ch.size,
                 ch.flags);
    return Res::kFail;
  }
  // The device refuses writes to read-only fields (the spec's MUST for
  // SET_CONFIG without the migration flag).
  if (auto st = dev_.write_config(ch.offset, std::span<const uint8_t>(m.payload + sizeof(ch), ch.size)); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_CONFIG: {}", path_, st.error().message);
    return Res::kFail;
  }
  return Res::kOk;
}

// ---------------------------------------------------------------------------
// Inflight I/O tracking.

Server::Res Server::on_get_inflight_fd(Message& m) {
  const auto d = m.as<InflightDesc>();
  if (d.num_queues > dev_.num_queues() || d.queue_size > dev_.max_queue_size()) {
    VDPU_WARN_RL("vhost-user {}: GET_INFLIGHT_FD for {} queues of {} exceeds the device", path_,
                 uint16_t(d.num_queues), uint16_t(d.queue_size));
    return Res::kFail;
  }
  UniqueFd fd;
  auto a = create_inflight(d.num_queues, d.queue_size, &fd);
  if (!a) {
    VDPU_WARN_RL("vhost-user {}: GET_INFLIGHT_FD: {}", path_, a.error().message);
    return Res::kFail;
  }
  inflight_ = std::move(*a);  // rings still running keep the old buffer
  InflightDesc out{inflight_.size, 0, d.num_queues, d.queue_size, 0};
  const int fds[1] = {fd.get()};
  reply(m.hdr.request, &out, m.hdr.size, fds);  // QEMU checks the size it sent
  return Res::kReplied;
}

Server::Res Server::on_set_inflight_fd(Message& m) {
  const auto d = m.as<InflightDesc>();
  if (d.num_queues > dev_.num_queues() || d.queue_size > kMaxQueueSize) {
    VDPU_WARN_RL("vhost-user {}: SET_INFLIGHT_FD geometry {}x{} refused", path_, uint16_t(d.num_queues), uint16_t(d.queue_size));
    return Res::kFail;
  }
  auto a = map_inflight(m.fds[0].get(), d);
  if (!a) {
    VDPU_WARN_RL("vhost-user {}: SET_INFLIGHT_FD: {}", path_, a.error().message);
    return Res::kFail;
  }
  inflight_ = std::move(*a);
  return Res::kOk;
}

// ---------------------------------------------------------------------------
// Reset.

Server::Res Server::on_reset(Message& m) {
  // RESET_DEVICE: "disable all rings and reset all internal device state";
  // RESET_OWNER (deprecated): "ignore, or use it to disable all rings" - we
  // do the same for both. Memory and negotiated features are kept.
  const uint32_t req = m.hdr.request;
  const bool need = m.need_reply();
  run_op([this, req, need](Done finished) {
    auto which = std::make_shared<std::vector<uint16_t>>();
    stop_all(which, [this, req, need, finished] {
      dev_.reset();
      reset_session(false);
      ack(req, need, true);
      finished();
    });
  });
  return Res::kAsync;
}

}  // namespace vdpu::vhost_user
