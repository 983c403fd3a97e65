#include "rpc/server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "base/log.h"
#include "rpc/client.h"
#include "rpc/dispatch.h"
#include "rpc/framing.h"
#include "rpc/rpc_log.h"

namespace vdpu::rpc {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 16;       // fairness between clients
constexpr size_t kOutputHighWater = 4u << 20;  // stop reading while this much is unsent

struct Conn {
  Server::Impl* srv = nullptr;
  int fd = -1;
  JsonSplitter split;
  std::string out;
  size_t out_off = 0;
  uint32_t events = 0;  // current epoll registration
  bool reading = true;
  bool closing = false;  // close once the output is flushed (after an error)
  bool eof = false;
  bool closed = false;
  bool in_handler = false;
  size_t pending = 0;  // requests without a reply yet
  explicit Conn(size_t max_request) : split(max_request) {}
  size_t unsent() const { return out.size() - out_off; }
};

}  // namespace

struct Server::Impl {
  rt::Reactor& reactor;
  ServerOptions opts;
  int lfd = -1;
  std::set<std::shared_ptr<Conn>> conns;

  Impl(rt::Reactor& r, ServerOptions o) : reactor(r), opts(std::move(o)) {}

  void on_accept() {
    for (;;) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) VDPU_WARN_RL("rpc: accept: {}", strerror(errno));
        return;
      }
      if (conns.size() >= opts.max_connections) {
        VDPU_WARN_RL("rpc: too many connections ({}), refusing one", conns.size());
        close(fd);
        continue;
      }
      auto c = std::make_shared<Conn>(opts.max_request);
      c->srv = this;
      c->fd = fd;
      conns.insert(c);
      update(c);
    }
  }

  void on_event(const std::shared_ptr<Conn>& c, uint32_t ev) {
    if (c->closed) return;
    c->in_handler = true;
    if (ev & EPOLLERR) {
      close_conn(c);
      return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP)) && c->reading) read_some(c);
    if (!c->closed && (ev & EPOLLOUT)) flush(c);
    c->in_handler = false;
    if (!c->closed) update(c);
  }

  void read_some(const std::shared_ptr<Conn>& c) {
    char buf[kReadChunk];
    for (int i = 0; i < kReadsPerEvent && c->reading && !c->closed; ++i) {
      ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) close_conn(c);
        return;
      }
      if (n == 0) {
        c->eof = true;
        c->reading = false;
        return;
      }
      auto err = c->split.feed(std::string_view(buf, size_t(n)), [&](std::string_view text) {
        if (!c->closing && !c->closed) process(c, text);
      });
      if (err != JsonSplitter::Err::kNone && !c->closing) {
        if (RpcLog* log = Dispatcher::get().log())
          log->raw(std::string(std::string_view(buf, size_t(n))));
        if (err == JsonSplitter::Err::kTooLarge) {
          VDPU_WARN_RL("rpc: request larger than {} bytes refused", opts.max_request);
          fail(c, kInvalidRequest,
               "Invalid request: request too large (limit " + std::to_string(opts.max_request) +
                   " bytes)");
        } else {
          fail(c, kParseError, "Parse error");
        }
        return;
      }
    }
  }

  void fail(const std::shared_ptr<Conn>& c, int code, const std::string& msg) {
    queue(c, error_response(nullptr, code, msg).dump());
    c->closing = true;
    c->reading = false;
  }

  void process(const std::shared_ptr<Conn>& c, std::string_view text) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      if (RpcLog* log = Dispatcher::get().log()) log->raw(std::string(text));
      // SPDK answers a parse error and closes the connection.
      fail(c, kParseError, "Parse error");
      return;
    }
    // The guard counts the request as pending until its reply sink is gone
    // (replied, or a notification whose Responder was released).
    struct Guard {
      std::weak_ptr<Conn> wc;
      explicit Guard(const std::shared_ptr<Conn>& c) : wc(c) {}
      Guard(const Guard&) = delete;
      ~Guard() {
        if (auto c = wc.lock()) {
          --c->pending;
          if (!c->closed && !c->in_handler) c->srv->update(c);
        }
      }
    };
    ++c->pending;
    auto guard = std::make_shared<Guard>(c);
    std::weak_ptr<Conn> wc = c;
    Dispatcher::get().handle(j, [wc, guard](json response) {
      auto c = wc.lock();
      if (!c || c->closed) return;
      c->srv->queue(c, response.dump());
    });
  }

  void queue(const std::shared_ptr<Conn>& c, std::string text) {
    if (c->closed) return;
    if (c->out.empty()) c->out = std::move(text);
    else c->out += text;
    flush(c);
    if (!c->closed && !c->in_handler) update(c);
  }

  void flush(const std::shared_ptr<Conn>& c) {
    while (c->unsent() > 0) {
      ssize_t n = send(c->fd, c->out.data() + c->out_off, c->unsent(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c->out_off += size_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(c);  // peer gone
      return;
    }
    if (c->unsent() == 0) {
      c->out.clear();
      c->out_off = 0;
    }
  }

  // Recomputes what to wait for, or closes the connection when done.
  void update(const std::shared_ptr<Conn>& c) {
    if (c->closed) return;
    if (c->unsent() == 0 && c->pending == 0 && (c->eof || c->closing)) {
      close_conn(c);
      return;
    }
    if (c->unsent() > opts.max_output) {
      VDPU_WARN_RL("rpc: client does not read its responses; closing it");
      close_conn(c);
      return;
    }
    uint32_t want = 0;
    if (c->reading && c->unsent() < kOutputHighWater) want |= EPOLLIN;
    if (c->unsent() > 0) want |= EPOLLOUT;
    if (want == c->events) return;
    if (c->events) reactor.remove_fd(c->fd);
    c->events = 0;
    if (want) {
      Status s = reactor.add_fd(c->fd, want, [this, c](uint32_t ev) { on_event(c, ev); });
      if (!s) {
        VDPU_ERR("rpc: {}", s.error().message);
        close_conn(c);
        return;
      }
      c->events = want;
    }
  }

  void close_conn(const std::shared_ptr<Conn>& c) {
    if (c->closed) return;
    c->closed = true;
    if (c->events) reactor.remove_fd(c->fd);
    c->events = 0;
    close(c->fd);
    c->fd = -1;
    conns.erase(c);
  }

  void stop_listening() {
    if (lfd < 0) return;
    reactor.remove_fd(lfd);
    close(lfd);
    lfd = -1;
    unlink(opts.path.c_str());
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  close_all();
  stop_listening();
}

Result<std::unique_ptr<Server>> Server::start(rt::Reactor& reactor, ServerOptions opts) {
  register_framework_methods();
  sockaddr_un addr{};
  if (opts.path.empty() || opts.path.size() >= sizeof(addr.sun_path))
    return make_error(Errc::kInvalidArgument, "bad RPC socket path '" + opts.path + "'");
  struct stat st;
  if (lstat(opts.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(Errc::kExists, opts.path + " exists and is not a socket");
    if (socket_in_use(opts.path))
      return make_error(Errc::kBusy, "RPC socket " + opts.path +
                                         " is in use by another process (is the service already running?)");
    VDPU_INFO("removing stale RPC socket {}", opts.path);
    unlink(opts.path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, opts.path.c_str(), opts.path.size() + 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    int e = errno;
    close(fd);
    return make_error(Errc::kIo, "cannot listen on " + opts.path + ": " + strerror(e));
  }
  auto impl = std::make_unique<Impl>(reactor, std::move(opts));
  impl->lfd = fd;
  Impl* ip = impl.get();
  Status s = reactor.add_fd(fd, EPOLLIN, [ip](uint32_t) { ip->on_accept(); });
  if (!s) {
    close(fd);
    unlink(ip->opts.path.c_str());
    return s.error();
  }
  VDPU_INFO("RPC server listening on {}", ip->opts.path);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::stop_listening() { impl_->stop_listening(); }

void Server::close_all() {
  auto conns = impl_->conns;
  for (auto& c : conns) {
    impl_->flush(c);
    impl_->close_conn(c);
  }
}

size_t Server::num_connections() const { return impl_->conns.size(); }
const std::string& Server::path() const { return impl_->opts.path; }

}  // namespace vdpu::rpc
