// Internals of the NVMe/TCP target shared by target.cc (listeners, registry),
// fabrics_ctrl.cc (controllers, main reactor) and conn.cc (connections, data
// reactors). Not a public API.
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "nvme/fabrics.h"
#include "nvme/nvm_cmd.h"
#include "nvme/spec.h"
#include "transport/nvmf_tcp/pdu.h"
#include "transport/nvmf_tcp/target.h"

namespace vdpu::nvmf_tcp {

class Connection;
class FabricsCtrl;

// A namespace as an I/O queue sees it (snapshot taken at Connect). The bdev
// stays open while any connection of the subsystem exists: the service layer
// disconnects a subsystem's controllers before removing a namespace.
struct NsInfo {
  uint32_t nsid = 0;
  bdev::Bdev* bdev = nullptr;
  nvme::NvmNsGeometry geo;
  bool flush = false, unmap = false, write_zeroes = false, compare = false;
};

// A connection seen from the main reactor. `alive` is cleared (on the
// connection's reactor) just before the Connection is deleted.
struct ConnRef {
  uint32_t reactor = 0;
  Connection* conn = nullptr;
  std::shared_ptr<bool> alive;
};

// Connect command as the connection extracted it.
struct ConnectArgs {
  uint16_t qid = 0, sqsize = 0, cntlid = 0, recfmt = 0;
  uint32_t kato = 0;
  std::string subnqn, hostnqn;
  std::array<uint8_t, 16> hostid{};
  std::string listen_key;
  ConnRef conn;
};

struct ConnectReply {
  uint16_t status = 0;
  uint32_t cdw0 = 0;
  std::shared_ptr<FabricsCtrl> ctrl;
  std::vector<NsInfo> ns;  // I/O queues
};

struct AdminReply {
  uint16_t status = 0;
  uint32_t cdw0 = 0;
  uint32_t cdw1 = 0;          // Property Get of an 8-byte property
  std::vector<uint8_t> data;  // controller -> host data
  bool park = false;          // Asynchronous Event Request: no completion now
};

struct Listener {
  std::string traddr, trsvcid;
  int fd = -1;
  int port = 0;
  uint16_t portid = 0;
  bool ipv6 = false;
  std::set<std::string> subsystems;
  uint64_t poller = 0;
};

// The target's shared state. Main reactor only, except `env`, `o` and the
// atomic counters.
struct Target::Impl {
  Impl(Target& t, nvme::Env& e, const TargetOptions& opts, TargetHooks h)
      : target(t), env(e), o(opts), hooks(std::move(h)) {}

  Target& target;
  nvme::Env& env;
  const TargetOptions& o;
  TargetHooks hooks;
  std::map<std::string, Listener> listeners;  // key "traddr:trsvcid"
  std::map<Connection*, ConnRef> conns;
  std::map<std::string, std::vector<std::shared_ptr<FabricsCtrl>>> ctrls;  // by subnqn
  std::map<std::string, std::set<uint16_t>> cntlids;                       // in use, by subnqn
  std::vector<std::pair<std::set<Connection*>, std::function<void()>>> waiters;
  uint64_t ka_poller = 0;
  uint16_t next_portid = 1;
  uint64_t genctr = 1;  // discovery log generation
  bool shutting_down = false;

  // Counters (nvmf_get_stats).
  std::atomic<uint64_t> admin_qpairs{0}, io_qpairs{0}, completed_io{0};

  // ---- main reactor ----
  void accept_ready(Listener& l);
  ConnectReply connect(const ConnectArgs& a);
  void conn_gone(Connection* c);
  // Closes the connections of ctrl (admin and I/O).
  void drop_ctrl(const std::shared_ptr<FabricsCtrl>& c, const char* why);
  // done after every connection in `set` is gone.
  void wait_conns(std::set<Connection*> set, std::function<void()> done);
  void close_conn(const ConnRef& r, const char* why);
  bool keep_alive_poll();
  bool listening(const std::string& key, const std::string& subnqn) const;
};

// One controller of an association (dynamic controller model, Base 2.0
// §3.3.1): created by the admin queue's Connect, found by cntlid for the I/O
// queues' Connect. Main reactor only (shared_ptr copies cross reactors, the
// object is touched only on the main reactor).
class FabricsCtrl {
 public:
  FabricsCtrl(Target::Impl& t, nvme::Subsystem* s, const ConnectArgs& a, uint16_t cntlid);

  Target::Impl& tgt;
  nvme::Subsystem* subsys;  // nullptr: the discovery controller
  std::string subnqn, hostnqn, listen_key;
  std::array<uint8_t, 16> hostid{};
  uint16_t cntlid;
  uint32_t kato_ms;
  uint64_t last_ka_ns = 0;
  uint32_t cc = 0, csts = 0;
  uint32_t num_io_queues;
  ConnRef admin;
  std::vector<ConnRef> io;  // by qid (index 0 unused)
  bool dead = false;
  uint32_t aers = 0;
  // Features (Base 2.0 §5.27.1), the subset a fabrics controller keeps.
  uint32_t aec = 0, arbitration = 0, power_mgmt = 0, error_recovery = 0, write_atomicity = 0;
  uint16_t temp_over = 0x0157, temp_under = 0;
  bool wce = true;

  bool discovery() const { return subsys == nullptr; }
  AdminReply exec_admin(const nvme::SqEntry& c, const std::vector<uint8_t>& in, uint32_t out_len);
  AdminReply property(const nvme::SqEntry& c);
  uint64_t cap() const;

 private:
  void build_identify_ctrl(nvme::IdentifyController& id) const;
  AdminReply identify(const nvme::SqEntry& c);
  AdminReply get_log_page(const nvme::SqEntry& c, uint32_t out_len);
  AdminReply set_features(const nvme::SqEntry& c);
  AdminReply get_features(const nvme::SqEntry& c);
  std::vector<uint8_t> discovery_log() const;
  uint16_t oncs() const;
};

// The admin-queue in-capsule data limit (Linux: NVME_TCP_ADMIN_CCSZ).
constexpr uint32_t kAdminInCapsule = 8192;
constexpr uint32_t kMinAdminQueue = 32;  // Base 2.0: admin SQSIZE >= 31 (0-based)

}  // namespace vdpu::nvmf_tcp
