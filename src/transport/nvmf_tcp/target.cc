// The NVMe/TCP target's main-reactor side: options, listeners (accept), the
// Connect rules (Base 2.0 §6.3; dynamic controller model §3.3.1), keep-alive
// (§3.9.1) and the registry of controllers and connections.
#include "transport/nvmf_tcp/target.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "transport/nvmf_tcp/conn.h"
#include "transport/nvmf_tcp/internal.h"

namespace vdpu::nvmf_tcp {

using nvme::kStatusDnr;
namespace sc = nvme::sc;

// ---------------------------------------------------------------- options

namespace {
Result<uint32_t> opt_u32(const json& j, const char* k, uint32_t def, uint32_t lo, uint32_t hi) {
  if (!j.contains(k) || j[k].is_null()) return def;
  if (!j[k].is_number_integer())
    return make_error(Errc::kInvalidArgument, std::string(k) + " must be an integer");
  int64_t v = j[k].get<int64_t>();
  if (v < int64_t(lo) || v > int64_t(hi))
    return make_error(Errc::kInvalidArgument, std::string(k) + " must be in " + std::to_string(lo) +
                                                  ".." + std::to_string(hi));
  return uint32_t(v);
}
}  // namespace

Result<TargetOptions> TargetOptions::from_json(const json& j) {
  TargetOptions o;
  auto get = [&](const char* k, uint32_t& dst, uint32_t lo, uint32_t hi) -> Status {
    auto v = opt_u32(j, k, dst, lo, hi);
    if (!v) return v.error();
    dst = *v;
    return {};
  };
  VDPU_TRY(get("max_queue_depth", o.max_queue_depth, 2, 4096));
  VDPU_TRY(get("max_aq_depth", o.max_aq_depth, kMinAdminQueue, 4096));
  VDPU_TRY(get("max_io_qpairs_per_ctrlr", o.max_io_qpairs_per_ctrlr, 1, 4095));
  VDPU_TRY(get("in_capsule_data_size", o.in_capsule_data_size, 0, 131072));
  VDPU_TRY(get("max_io_size", o.max_io_size, 4096, 4 * 1024 * 1024));
  VDPU_TRY(get("io_unit_size", o.io_unit_size, 512, 4 * 1024 * 1024));
  VDPU_TRY(get("abort_timeout_sec", o.abort_timeout_sec, 0, 3600));
  uint32_t prio = uint32_t(o.sock_priority);
  VDPU_TRY(get("sock_priority", prio, 0, 6));  // SPDK: 0..6 without CAP_NET_ADMIN
  o.sock_priority = int(prio);
  if (j.contains("c2h_success") && !j["c2h_success"].is_null()) {
    if (!j["c2h_success"].is_boolean())
      return make_error(Errc::kInvalidArgument, "c2h_success must be a boolean");
    o.c2h_success = j["c2h_success"].get<bool>();
  }
  if (o.in_capsule_data_size % 16)
    return make_error(Errc::kInvalidArgument, "in_capsule_data_size must be a multiple of 16");
  if (o.max_io_size % 4096 || (o.max_io_size & (o.max_io_size - 1)))
    return make_error(Errc::kInvalidArgument, "max_io_size must be a power of two >= 4096");
  return o;
}

json TargetOptions::to_json() const {
  return {{"max_queue_depth", max_queue_depth},
          {"max_aq_depth", max_aq_depth},
          {"max_io_qpairs_per_ctrlr", max_io_qpairs_per_ctrlr},
          {"in_capsule_data_size", in_capsule_data_size},
          {"max_io_size", max_io_size},
          {"io_unit_size", io_unit_size},
          {"c2h_success", c2h_success},
          {"sock_priority", sock_priority},
          {"abort_timeout_sec", abort_timeout_sec}};
}

// ---------------------------------------------------------------- target

Target::Target(nvme::Env& env, TargetOptions o, TargetHooks hooks)
    : env_(env), o_(o), impl_(std::make_unique<Impl>(*this, env, o_, std::move(hooks))) {
  Impl* im = impl_.get();
  im->ka_poller = env_.add_poller(
      nvme::kMainReactor, "nvmf_tcp_ka", [im] { return im->keep_alive_poll(); }, 100000);
}

Target::~Target() {
  for (auto& [k, l] : impl_->listeners) {
    if (l.poller) env_.remove_poller(nvme::kMainReactor, l.poller);
    if (l.fd >= 0) ::close(l.fd);
  }
  if (impl_->ka_poller) env_.remove_poller(nvme::kMainReactor, impl_->ka_poller);
}

namespace {
std::string key_of(const std::string& a, const std::string& s) {
  return a + ":" + s;
}

Result<int> open_listener(const std::string& traddr, const std::string& trsvcid, bool* v6,
                          int* port) {
  char* end = nullptr;
  long p = std::strtol(trsvcid.c_str(), &end, 10);
  if (trsvcid.empty() || *end || p < 0 || p > 65535)
    return make_error(Errc::kInvalidArgument, "trsvcid must be a TCP port: '" + trsvcid + "'");
  sockaddr_storage ss{};
  socklen_t len;
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, traddr.c_str(), &a4) == 1) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(uint16_t(p));
    s->sin_addr = a4;
    len = sizeof(*s);
    *v6 = false;
  } else if (inet_pton(AF_INET6, traddr.c_str(), &a6) == 1) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(uint16_t(p));
    s->sin6_addr = a6;
    len = sizeof(*s);
    *v6 = true;
  } else {
    return make_error(Errc::kInvalidArgument,
                      "traddr must be an IPv4 or IPv6 address: '" + traddr + "'");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || listen(fd, 512) < 0) {
    std::string e = strerror(errno);
    ::close(fd);
    return make_error(Errc::kIo, "cannot listen on " + traddr + ":" + trsvcid + ": " + e);
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}
}  // namespace

Status Target::listen(const std::string& subnqn, const std::string& traddr,
                      const std::string& trsvcid) {
  Impl& im = *impl_;
  std::string key = key_of(traddr, trsvcid);
  auto it = im.listeners.find(key);
  if (it != im.listeners.end()) {
    if (!it->second.subsystems.insert(subnqn).second)
      return make_error(Errc::kExists, "subsystem " + subnqn + " already listens on " + key);
    ++im.genctr;
    return {};
  }
  Listener l;
  l.traddr = traddr;
  l.trsvcid = trsvcid;
  auto fd = open_listener(traddr, trsvcid, &l.ipv6, &l.port);
  if (!fd) return fd.error();
  l.fd = *fd;
  l.portid = im.next_portid++;
  l.subsystems.insert(subnqn);
  Listener* lp = &im.listeners.emplace(key, std::move(l)).first->second;
  Impl* imp = &im;
  // Accept from a 1 ms poller on the main reactor (connection set-up only;
  // the data path runs on the data reactors).
  lp->poller = env_.add_poller(
      nvme::kMainReactor, "nvmf_tcp_accept",
      [imp, lp] {
        imp->accept_ready(*lp);
        return false;
      },
      1000);
  ++im.genctr;
  VDPU_INFO("nvmf_tcp: listening on {} (port {}) for {}", key, lp->port, subnqn);
  return {};
}

void Target::stop_listen(const std::string& subnqn, const std::string& traddr,
                         const std::string& trsvcid, std::function<void()> done) {
  Impl& im = *impl_;
  std::string key = key_of(traddr, trsvcid);
  auto it = im.listeners.find(key);
  if (it != im.listeners.end()) {
    it->second.subsystems.erase(subnqn);
    if (it->second.subsystems.empty()) {
      env_.remove_poller(nvme::kMainReactor, it->second.poller);
      ::close(it->second.fd);
      im.listeners.erase(it);
    }
    ++im.genctr;
  }
  // Controllers of the subsystem that came through this listener go away.
  std::set<Connection*> wait;
  auto cit = im.ctrls.find(subnqn);
  if (cit != im.ctrls.end()) {
    auto list = cit->second;
    for (auto& c : list) {
      if (c->listen_key != key) continue;
      if (c->admin.conn) wait.insert(c->admin.conn);
      for (auto& q : c->io)
        if (q.conn) wait.insert(q.conn);
      im.drop_ctrl(c, "listener removed");
    }
  }
  im.wait_conns(std::move(wait), std::move(done));
}

void Target::disconnect_subsystem(const std::string& subnqn, std::function<void()> done) {
  Impl& im = *impl_;
  std::set<Connection*> wait;
  auto cit = im.ctrls.find(subnqn);
  if (cit != im.ctrls.end()) {
    auto list = cit->second;
    for (auto& c : list) {
      if (c->admin.conn) wait.insert(c->admin.conn);
      for (auto& q : c->io)
        if (q.conn) wait.insert(q.conn);
      im.drop_ctrl(c, "subsystem changed");
    }
  }
  im.wait_conns(std::move(wait), std::move(done));
}

bool Target::set_options(const TargetOptions& o) {
  if (!impl_->conns.empty()) return false;
  o_ = o;
  return true;
}

int Target::bound_port(const std::string& traddr, const std::string& trsvcid) const {
  auto it = impl_->listeners.find(key_of(traddr, trsvcid));
  return it == impl_->listeners.end() ? -1 : it->second.port;
}

std::vector<DiscoveryRecord> Target::discovery_records(const std::string& hostnqn) const {
  std::vector<DiscoveryRecord> out;
  for (auto& [k, l] : impl_->listeners)
    for (auto& s : l.subsystems) {
      if (impl_->hooks.host_allowed && !impl_->hooks.host_allowed(s, hostnqn)) continue;
      out.push_back({s, l.traddr, l.trsvcid, l.ipv6, l.portid});
    }
  return out;
}

json Target::stats() const {
  return {{"trtype", "TCP"},
          {"admin_qpairs", impl_->admin_qpairs.load()},
          {"io_qpairs", impl_->io_qpairs.load()},
          {"completed_nvme_io", impl_->completed_io.load()},
          {"current_qpairs", impl_->conns.size()}};
}

void Target::shutdown(std::function<void()> done) {
  Impl& im = *impl_;
  im.shutting_down = true;
  for (auto& [k, l] : im.listeners) {
    env_.remove_poller(nvme::kMainReactor, l.poller);
    ::close(l.fd);
  }
  im.listeners.clear();
  std::set<Connection*> wait;
  for (auto& [c, ref] : im.conns) {
    wait.insert(c);
    im.close_conn(ref, "target shutdown");
  }
  im.wait_conns(std::move(wait), std::move(done));
}

// ---------------------------------------------------------------- Impl

bool Target::Impl::listening(const std::string& key, const std::string& subnqn) const {
  auto it = listeners.find(key);
  return it != listeners.end() && it->second.subsystems.count(subnqn);
}

void Target::Impl::accept_ready(Listener& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        VDPU_WARN_RL("nvmf_tcp: accept on {}:{}: {}", l.traddr, l.trsvcid, strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o.sock_priority) setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &o.sock_priority, sizeof(int));
    uint32_t r = env.pick();
    auto* c = new Connection(*this, r, fd, key_of(l.traddr, l.trsvcid));
    conns[c] = c->ref();
    env.post(r, [c] { c->start(); });
  }
}

void Target::Impl::close_conn(const ConnRef& r, const char* why) {
  std::shared_ptr<bool> alive = r.alive;
  Connection* c = r.conn;
  env.post(r.reactor, [alive, c, why] {
    if (*alive) c->close(why);
  });
}

void Target::Impl::drop_ctrl(const std::shared_ptr<FabricsCtrl>& c, const char* why) {
  if (c->dead) return;
  c->dead = true;
  VDPU_INFO("nvmf_tcp: controller {} of {} (host {}) goes away: {}", c->cntlid, c->subnqn,
            c->hostnqn, why);
  if (c->admin.conn) {
    admin_qpairs.fetch_sub(1, std::memory_order_relaxed);
    close_conn(c->admin, why);
  }
  for (auto& q : c->io)
    if (q.conn) {
      io_qpairs.fetch_sub(1, std::memory_order_relaxed);
      close_conn(q, why);
    }
  auto it = ctrls.find(c->subnqn);
  if (it != ctrls.end()) {
    std::erase(it->second, c);
    if (it->second.empty()) ctrls.erase(it);
  }
  auto ci = cntlids.find(c->subnqn);
  if (ci != cntlids.end()) ci->second.erase(c->cntlid);
}

void Target::Impl::conn_gone(Connection* c) {
  conns.erase(c);
  // The controller of an admin queue ends with it; an I/O queue frees its qid.
  std::vector<std::shared_ptr<FabricsCtrl>> drop;
  for (auto& [nqn, list] : ctrls)
    for (auto& ctrl : list) {
      if (ctrl->admin.conn == c) drop.push_back(ctrl);
      for (auto& q : ctrl->io)
        if (q.conn == c) {
          q = {};
          io_qpairs.fetch_sub(1, std::memory_order_relaxed);
        }
    }
  for (auto& ctrl : drop) drop_ctrl(ctrl, "admin queue closed");
  for (auto it = waiters.begin(); it != waiters.end();) {
    it->first.erase(c);
    if (it->first.empty()) {
      auto fn = std::move(it->second);
      it = waiters.erase(it);
      fn();
    } else {
      ++it;
    }
  }
}

void Target::Impl::wait_conns(std::set<Connection*> set, std::function<void()> done) {
  for (auto it = set.begin(); it != set.end();) {
    if (!conns.count(*it))
      it = set.erase(it);
    else
      ++it;
  }
  if (set.empty()) return done();
  waiters.emplace_back(std::move(set), std::move(done));
}

// Keep Alive Timer (Base 2.0 §3.9.1): an association whose host sent no
// admin command for KATO (+ granularity) is torn down.
bool Target::Impl::keep_alive_poll() {
  uint64_t now = env.now_ns();
  std::vector<std::shared_ptr<FabricsCtrl>> expired;
  for (auto& [nqn, list] : ctrls)
    for (auto& c : list)
      if (c->kato_ms && c->last_ka_ns &&
          now > c->last_ka_ns + (uint64_t(c->kato_ms) + 100) * 1'000'000)
        expired.push_back(c);
  for (auto& c : expired) {
    VDPU_WARN("nvmf_tcp: keep alive timeout of controller {} ({} ms)", c->cntlid, c->kato_ms);
    drop_ctrl(c, "keep alive timeout");
  }
  return !expired.empty();
}

// Connect (Base 2.0 §6.3 and Figures 542-544).
ConnectReply Target::Impl::connect(const ConnectArgs& a) {
  ConnectReply rep;
  auto invalid = [&](bool in_data, uint16_t off) {
    rep.status = sc::kConnectInvalidParameters;
    rep.cdw0 = nvme::connect_invalid_param(in_data, off);
    return rep;
  };
  if (shutting_down) {
    rep.status = sc::kConnectControllerBusy;
    return rep;
  }
  if (a.recfmt != 0) {
    rep.status = sc::kConnectIncompatibleFormat;
    return rep;
  }
  const bool disc = a.subnqn == nvme::kDiscoveryNqn;
  nvme::Subsystem* s = nullptr;
  if (!disc) {
    s = hooks.find_subsystem ? hooks.find_subsystem(a.subnqn) : nullptr;
    if (!s || !listening(a.listen_key, a.subnqn)) {
      VDPU_WARN_RL("nvmf_tcp: connect to unknown subsystem {}", a.subnqn);
      return invalid(true, offsetof(nvme::ConnectData, subnqn));
    }
  }
  if (a.hostnqn.empty()) return invalid(true, offsetof(nvme::ConnectData, hostnqn));
  if (!disc && hooks.host_allowed && !hooks.host_allowed(a.subnqn, a.hostnqn)) {
    VDPU_WARN_RL("nvmf_tcp: host {} not allowed into {}", a.hostnqn, a.subnqn);
    rep.status = sc::kConnectInvalidHost;
    rep.cdw0 = nvme::connect_invalid_param(true, offsetof(nvme::ConnectData, hostnqn));
    return rep;
  }
  if (a.qid == 0) {
    // Admin queue: a new controller (dynamic model: CNTLID FFFFh).
    if (a.sqsize + 1u < kMinAdminQueue || a.sqsize + 1u > o.max_aq_depth)
      return invalid(false, offsetof(nvme::ConnectCmd, sqsize));
    if (a.cntlid != nvme::kCntlidDynamic && !disc)
      return invalid(true, offsetof(nvme::ConnectData, cntlid));
    auto& used = cntlids[a.subnqn];
    uint16_t id = 0;
    for (uint32_t cand = 1; cand <= nvme::kCntlidMax; ++cand)
      if (!used.count(uint16_t(cand))) {
        id = uint16_t(cand);
        break;
      }
    if (!id) {
      rep.status = sc::kConnectControllerBusy;
      return rep;
    }
    used.insert(id);
    auto c = std::make_shared<FabricsCtrl>(*this, s, a, id);
    c->admin = a.conn;
    c->last_ka_ns = env.now_ns();
    ctrls[a.subnqn].push_back(c);
    admin_qpairs.fetch_add(1, std::memory_order_relaxed);
    VDPU_INFO("nvmf_tcp: host {} connected to {} as controller {} (kato {} ms)", a.hostnqn,
              a.subnqn, id, a.kato);
    rep.ctrl = std::move(c);
    return rep;
  }
  // I/O queue of an existing controller of the same host.
  if (disc) return invalid(false, offsetof(nvme::ConnectCmd, qid));
  std::shared_ptr<FabricsCtrl> c;
  auto it = ctrls.find(a.subnqn);
  if (it != ctrls.end())
    for (auto& x : it->second)
      if (x->cntlid == a.cntlid && x->hostnqn == a.hostnqn && !x->dead) c = x;
  if (!c) return invalid(true, offsetof(nvme::ConnectData, cntlid));
  if (!(c->csts & nvme::kCstsRdy)) {
    rep.status = sc::kCommandSequenceError;  // I/O queue before CC.EN = 1
    return rep;
  }
  if (a.qid > c->num_io_queues || a.qid >= c->io.size() || c->io[a.qid].conn)
    return invalid(false, offsetof(nvme::ConnectCmd, qid));
  if (a.sqsize < 1 || a.sqsize + 1u > o.max_queue_depth)
    return invalid(false, offsetof(nvme::ConnectCmd, sqsize));
  c->io[a.qid] = a.conn;
  io_qpairs.fetch_add(1, std::memory_order_relaxed);
  for (nvme::Namespace* ns : s->namespaces()) {
    if (!ns->ready()) continue;
    bdev::Bdev& b = ns->bdev();
    NsInfo n;
    n.nsid = ns->nsid();
    n.bdev = &b;
    n.geo.lba_shift = uint32_t(std::countr_zero(b.block_size()));
    n.geo.num_blocks = b.num_blocks();
    n.flush = b.supports(bdev::IoType::kFlush);
    n.unmap = b.supports(bdev::IoType::kUnmap);
    n.write_zeroes = b.supports(bdev::IoType::kWriteZeroes);
    n.compare = b.supports(bdev::IoType::kCompare);
    rep.ns.push_back(n);
  }
  rep.ctrl = c;
  return rep;
}

}  // namespace vdpu::nvmf_tcp
