// The NVMe/TCP target driven over a real loopback TCP connection by a host
// written with the same PDU library (Role::kHost), on ManualEnv (every
// reactor runs on the test thread): IC negotiation, Connect rules, Property
// Get/Set, Identify, discovery, reads and writes (in-capsule, R2T, C2H
// SUCCESS), digests, and bad input answered by status or C2HTermReq.
#include "transport/nvmf_tcp/target.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <set>

#include "bdev/bdev.h"
#include "nvme/fabrics.h"
#include "test_host.h"
#include "transport/nvmf_tcp/pdu.h"

namespace vdpu::nvmf_tcp {
namespace {

using nvme::test::ManualEnv;
using nvme::test::TestBdev;

constexpr const char* kNqn = "nqn.2026-11.io.vdpu:tcp-test";
constexpr const char* kHost =
    "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";

struct Pdu {
  PduType type;
  uint8_t flags;
  std::vector<uint8_t> hdr, data;
};

// Host side: a socket plus a PduReceiver in host role.
class Host : public PduHandler {
 public:
  Host(ManualEnv& env, int port) : env_(env) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~Host() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void send(const std::vector<uint8_t>& b) {
    size_t off = 0;
    while (off < b.size()) {
      ssize_t n = ::send(fd_, b.data() + off, b.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) {
        pump();
        continue;
      }
      ASSERT_GT(n, 0);
      off += size_t(n);
    }
  }
  // Runs the target and reads what it sent.
  void pump() {
    for (int i = 0; i < 20; ++i) {
      env_.run_until_idle();
      uint8_t buf[65536];
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) {
        eof = true;
        return;
      }
      if (n < 0) {
        if (i > 2) return;
        continue;
      }
      size_t k = rx.feed(buf, size_t(n), *this);
      EXPECT_EQ(k, size_t(n)) << "host receiver failed: " << rx.error().reason;
    }
  }
  std::optional<Pdu> next() {
    for (int i = 0; i < 50 && got.empty() && !eof; ++i) pump();
    if (got.empty()) return std::nullopt;
    Pdu p = std::move(got.front());
    got.pop_front();
    return p;
  }

  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    cur_data.assign(pdu.data_len, 0);
    if (pdu.data_len) {
      iov = {cur_data.data(), cur_data.size()};
      *place = {&iov, 1};
    }
    return {};
  }
  PduError on_pdu_done(const PduView& pdu, bool ok, bool*) override {
    EXPECT_TRUE(ok) << "data digest from the target";
    got.push_back({pdu.type, pdu.flags, {pdu.hdr, pdu.hdr + pdu.hlen}, cur_data});
    if (pdu.type == PduType::kICResp) {
      const auto& r = pdu.as<ICResp>();
      rx.params().hdgst = r.dgst & kDgstHdgstEnable;
      rx.params().ddgst = r.dgst & kDgstDdgstEnable;
      rx.params().max_data = 1 << 24;
    }
    return {};
  }

  // ---- protocol helpers
  ICResp ic(bool hd = false, bool dd = false) {
    std::vector<uint8_t> b(kIcLen);
    build_icreq(b.data(), 0, hd, dd, 0);
    send(b);
    auto p = next();
    EXPECT_TRUE(p && p->type == PduType::kICResp);
    dg = {hd, dd};
    ICResp r{};
    if (p) std::memcpy(&r, p->hdr.data(), sizeof r);
    return r;
  }
  void capsule(const nvme::SqEntry& sqe, const std::vector<uint8_t>& data = {}) {
    uint8_t h[kMaxTxHeader];
    uint32_t n = build_capsule_cmd(h, sqe, uint32_t(data.size()), dg, 0);
    std::vector<uint8_t> b(h, h + n);
    b.insert(b.end(), data.begin(), data.end());
    if (dg.ddgst && !data.empty()) {
      uint8_t d[4];
      nvme::put_le32(d, crc32c(data.data(), data.size()));
      b.insert(b.end(), d, d + 4);
    }
    send(b);
  }
  static void sgl_transport(nvme::SqEntry& c, uint32_t len) {
    auto* p = reinterpret_cast<uint8_t*>(&c) + 24;
    std::memset(p, 0, 16);
    nvme::put_le32(p + 8, len);
    p[15] = nvme::kSglIdTransport;
    c.flags |= 0x40;
  }
  static void sgl_incapsule(nvme::SqEntry& c, uint32_t len) {
    auto* p = reinterpret_cast<uint8_t*>(&c) + 24;
    std::memset(p, 0, 16);
    nvme::put_le32(p + 8, len);
    p[15] = nvme::kSglIdIncapsule;
    c.flags |= 0x40;
  }
  // Connect; returns the response CQE.
  nvme::CqEntry connect(uint16_t qid, uint16_t sqsize, uint16_t cntlid, const char* subnqn = kNqn,
                        const char* hostnqn = kHost) {
    nvme::ConnectCmd c{};
    c.opc = nvme::kOpcFabrics;
    c.cid = cid++;
    c.fctype = nvme::kFctypeConnect;
    c.qid = qid;
    c.sqsize = sqsize;
    c.kato = qid ? 0 : 30000;
    nvme::SqEntry sqe;
    std::memcpy(&sqe, &c, 64);
    sgl_incapsule(sqe, 1024);
    std::vector<uint8_t> d(1024, 0);
    auto* cd = reinterpret_cast<nvme::ConnectData*>(d.data());
    cd->cntlid = cntlid;
    std::strncpy(cd->subnqn, subnqn, 255);
    std::strncpy(cd->hostnqn, hostnqn, 255);
    capsule(sqe, d);
    return resp();
  }
  nvme::CqEntry resp() {
    auto p = next();
    EXPECT_TRUE(p && p->type == PduType::kCapsuleResp)
        << (p ? pdu_type_name(uint8_t(p->type)) : "none");
    nvme::CqEntry e{};
    if (p && p->type == PduType::kCapsuleResp) std::memcpy(&e, p->hdr.data() + 8, 16);
    return e;
  }
  nvme::CqEntry prop_set(uint32_t ofst, uint64_t v) {
    nvme::PropertyCmd c{};
    c.opc = nvme::kOpcFabrics;
    c.cid = cid++;
    c.fctype = nvme::kFctypePropertySet;
    c.ofst = ofst;
    c.value = v;
    nvme::SqEntry sqe;
    std::memcpy(&sqe, &c, 64);
    capsule(sqe);
    return resp();
  }
  nvme::CqEntry prop_get(uint32_t ofst, bool eight) {
    nvme::PropertyCmd c{};
    c.opc = nvme::kOpcFabrics;
    c.cid = cid++;
    c.fctype = nvme::kFctypePropertyGet;
    c.attrib = eight ? 1 : 0;
    c.ofst = ofst;
    nvme::SqEntry sqe;
    std::memcpy(&sqe, &c, 64);
    capsule(sqe);
    return resp();
  }
  // A command with controller -> host data: returns (status, data).
  std::pair<uint16_t, std::vector<uint8_t>> read_cmd(nvme::SqEntry sqe, uint32_t len) {
    sqe.cid = cid++;
    sgl_transport(sqe, len);
    capsule(sqe);
    auto p = next();
    if (!p) return {0xffff, {}};
    if (p->type == PduType::kCapsuleResp) {
      nvme::CqEntry e;
      std::memcpy(&e, p->hdr.data() + 8, 16);
      return {uint16_t(e.status >> 1), {}};
    }
    EXPECT_EQ(p->type, PduType::kC2HData);
    std::vector<uint8_t> data = p->data;
    if (p->flags & kFlagSuccess) return {0, data};
    nvme::CqEntry e = resp();
    return {uint16_t(e.status >> 1), data};
  }
  // Write through R2T/H2CData (in_capsule false) or in-capsule data.
  uint16_t write_cmd(nvme::SqEntry sqe, const std::vector<uint8_t>& data, bool in_capsule,
                     uint32_t h2c_chunk = 4096) {
    sqe.cid = cid++;
    if (in_capsule) {
      sgl_incapsule(sqe, uint32_t(data.size()));
      capsule(sqe, data);
      return uint16_t(resp().status >> 1);
    }
    sgl_transport(sqe, uint32_t(data.size()));
    capsule(sqe);
    auto p = next();
    if (!p) return 0xffff;
    if (p->type == PduType::kCapsuleResp) {
      nvme::CqEntry e;
      std::memcpy(&e, p->hdr.data() + 8, 16);
      return uint16_t(e.status >> 1);
    }
    EXPECT_EQ(p->type, PduType::kR2T);
    R2T r;
    std::memcpy(&r, p->hdr.data(), sizeof r);
    EXPECT_EQ(r.r2tl, data.size());
    for (uint32_t off = 0; off < data.size(); off += h2c_chunk) {
      uint32_t n = std::min<uint32_t>(h2c_chunk, uint32_t(data.size()) - off);
      uint8_t h[kMaxTxHeader];
      uint32_t hn = build_h2c_data(h, sqe.cid, r.ttag, off, n, off + n == data.size(), dg, 0);
      std::vector<uint8_t> b(h, h + hn);
      b.insert(b.end(), data.begin() + off, data.begin() + off + n);
      if (dg.ddgst) {
        uint8_t d[4];
        nvme::put_le32(d, crc32c(data.data() + off, n));
        b.insert(b.end(), d, d + 4);
      }
      send(b);
    }
    return uint16_t(resp().status >> 1);
  }
  // Admin queue up to CC.EN = 1; returns the cntlid.
  uint16_t bring_up(bool hd = false, bool dd = false) {
    ic(hd, dd);
    nvme::CqEntry e = connect(0, 31, nvme::kCntlidDynamic);
    EXPECT_EQ(e.status >> 1, 0);
    EXPECT_EQ(prop_set(nvme::kPropCc, nvme::kCcEn).status >> 1, 0);
    return uint16_t(e.dw0);
  }

  ManualEnv& env_;
  int fd_ = -1;
  PduReceiver rx{Role::kHost};
  std::deque<Pdu> got;
  std::vector<uint8_t> cur_data;
  iovec iov{};
  TxDigests dg{};
  bool eof = false;
  uint16_t cid = 1;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed * 31 + i * 7 + (i >> 9));
  return v;
}

nvme::SqEntry rw(uint8_t opc, uint64_t slba, uint32_t nlb) {
  nvme::SqEntry c{};
  c.opc = opc;
  c.nsid = 1;
  c.cdw10 = uint32_t(slba);
  c.cdw11 = uint32_t(slba >> 32);
  c.cdw12 = nlb - 1;
  return c;
}

class TcpTarget : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    bdev_name = "tcp_tgt_test_" + std::to_string(n++);
    auto b = std::make_unique<TestBdev>(bdev_name, 512, 16384);
    bdev = b.get();
    ASSERT_TRUE(bdev::Manager::get().add(std::move(b)).ok());
    nvme::SubsystemOptions so;
    so.nqn = kNqn;
    so.serial_number = "VDPU-TCP-1";
    subsys = nvme::Subsystem::create(so).value();
    ASSERT_TRUE(subsys->add_namespace(1, bdev_name).ok());
    TargetHooks hooks;
    hooks.find_subsystem = [this](const std::string& nqn) {
      return nqn == kNqn ? subsys.get() : nullptr;
    };
    hooks.host_allowed = [this](const std::string&, const std::string& h) {
      return allow_any || allowed.count(h);
    };
    tgt = std::make_unique<Target>(env, opts, std::move(hooks));
    ASSERT_TRUE(tgt->listen(kNqn, "127.0.0.1", "0").ok());
    port = tgt->bound_port("127.0.0.1", "0");
    ASSERT_GT(port, 0);
  }
  void TearDown() override {
    bool done = false;
    tgt->shutdown([&] { done = true; });
    env.run_until_idle();
    EXPECT_TRUE(done);
    tgt.reset();
    subsys.reset();
    (void)bdev::Manager::get().remove(bdev_name);
    env.run_until_idle();
  }

  ManualEnv env{2};
  TargetOptions opts;
  std::unique_ptr<Target> tgt;
  std::unique_ptr<nvme::Subsystem> subsys;
  TestBdev* bdev = nullptr;
  std::string bdev_name;
  bool allow_any = true;
  std::set<std::string> allowed;
  int port = 0;
};

TEST_F(TcpTarget, IcRespNegotiatesDigestsAndLimits) {
  Host h(env, port);
  ICResp r = h.ic(true, true);
  EXPECT_EQ(r.pfv, 0);
  EXPECT_EQ(r.cpda, 0);
  EXPECT_EQ(r.dgst, kDgstHdgstEnable | kDgstDdgstEnable);
  EXPECT_GE(r.maxh2cdata, kMinMaxH2cData);
  EXPECT_EQ(r.maxh2cdata, opts.io_unit_size);
}

TEST_F(TcpTarget, AdminQueuePropertiesIdentifyAndIo) {
  Host h(env, port);
  uint16_t cntlid = h.bring_up();
  EXPECT_GE(cntlid, 1);
  auto cap = h.prop_get(nvme::kPropCap, true);
  uint64_t capv = uint64_t(cap.dw0) | (uint64_t(cap.dw1) << 32);
  EXPECT_EQ(nvme::cap_mqes(capv), opts.max_queue_depth - 1);
  EXPECT_EQ(h.prop_get(nvme::kPropVs, false).dw0, nvme::kNvmeVersion14);
  EXPECT_EQ(h.prop_get(nvme::kPropCsts, false).dw0 & nvme::kCstsRdy, nvme::kCstsRdy);
  // Identify Controller: fabrics fields and the subsystem.
  nvme::SqEntry id{};
  id.opc = nvme::kAdmIdentify;
  id.cdw10 = nvme::kCnsController;
  auto [st, data] = h.read_cmd(id, 4096);
  ASSERT_EQ(st, 0);
  ASSERT_EQ(data.size(), 4096u);
  const auto& ic = *reinterpret_cast<const nvme::IdentifyController*>(data.data());
  EXPECT_EQ(ic.cntlid, cntlid);
  EXPECT_EQ(std::string(ic.subnqn), kNqn);
  EXPECT_EQ(ic.cntrltype, nvme::kCntrltypeIo);
  const auto& fa = *reinterpret_cast<const nvme::IdentifyFabricsAttrs*>(ic.nvmof);
  EXPECT_EQ(fa.ioccsz, (64 + opts.in_capsule_data_size) / 16);
  EXPECT_EQ(fa.icdoff, 0);
  // Identify Namespace through the shared builder.
  nvme::SqEntry ns{};
  ns.opc = nvme::kAdmIdentify;
  ns.nsid = 1;
  ns.cdw10 = nvme::kCnsNamespace;
  auto [st2, nd] = h.read_cmd(ns, 4096);
  ASSERT_EQ(st2, 0);
  EXPECT_EQ(reinterpret_cast<const nvme::IdentifyNamespace*>(nd.data())->nsze, 16384u);
  // Unknown admin opcode.
  nvme::SqEntry bad{};
  bad.opc = 0xc1;
  bad.cid = h.cid++;
  h.capsule(bad);
  EXPECT_EQ((h.resp().status >> 1) & 0x7ff, nvme::sc::kInvalidOpcode);

  // I/O queue on another connection.
  Host q(env, port);
  q.ic();
  auto e = q.connect(1, 127, cntlid);
  ASSERT_EQ(e.status >> 1, 0);
  auto d = pattern(65536, 3);
  EXPECT_EQ(q.write_cmd(rw(nvme::kIoWrite, 8, 128), d, false), 0);
  auto [rs, rd] = q.read_cmd(rw(nvme::kIoRead, 8, 128), 65536);
  EXPECT_EQ(rs, 0);
  EXPECT_EQ(rd, d);
  EXPECT_EQ(std::memcmp(bdev->data.data() + 8 * 512, d.data(), d.size()), 0);
  // In-capsule write (4 KiB fits in_capsule_data_size).
  auto small = pattern(4096, 9);
  EXPECT_EQ(q.write_cmd(rw(nvme::kIoWrite, 1000, 8), small, true), 0);
  EXPECT_EQ(q.read_cmd(rw(nvme::kIoRead, 1000, 8), 4096).second, small);
  // Out of range and unknown opcode: NVMe statuses, connection stays.
  EXPECT_EQ(q.read_cmd(rw(nvme::kIoRead, 16380, 8), 4096).first & 0x7ff,
            nvme::sc::kLbaOutOfRange & 0x7ff);
  nvme::SqEntry unk{};
  unk.opc = 0x7e;
  unk.nsid = 1;
  unk.cid = q.cid++;
  q.capsule(unk);
  EXPECT_EQ((q.resp().status >> 1) & 0x7ff, nvme::sc::kInvalidOpcode);
  // A bad NSID.
  auto bad_ns = rw(nvme::kIoRead, 0, 1);
  bad_ns.nsid = 7;
  EXPECT_EQ(q.read_cmd(bad_ns, 512).first & 0x7ff, nvme::sc::kInvalidNamespaceOrFormat & 0x7ff);
}

TEST_F(TcpTarget, DigestsEverywhere) {
  Host h(env, port);
  uint16_t cntlid = h.bring_up(true, true);
  Host q(env, port);
  q.ic(true, true);
  ASSERT_EQ(q.connect(1, 31, cntlid).status >> 1, 0);
  auto d = pattern(16384, 5);
  EXPECT_EQ(q.write_cmd(rw(nvme::kIoWrite, 64, 32), d, false, 8192), 0);
  EXPECT_EQ(q.read_cmd(rw(nvme::kIoRead, 64, 32), 16384).second, d);
  // A wrong data digest fails the command with Transient Transport Error.
  auto sqe = rw(nvme::kIoWrite, 64, 8);
  sqe.cid = q.cid++;
  Host::sgl_incapsule(sqe, 4096);
  uint8_t hb[kMaxTxHeader];
  uint32_t n = build_capsule_cmd(hb, sqe, 4096, q.dg, 0);
  std::vector<uint8_t> b(hb, hb + n);
  auto x = pattern(4096, 1);
  b.insert(b.end(), x.begin(), x.end());
  b.insert(b.end(), {1, 2, 3, 4});
  q.send(b);
  EXPECT_EQ((q.resp().status >> 1) & 0x7ff, nvme::sc::kTransientTransportError);
  // A wrong header digest is fatal: C2HTermReq, then the connection closes.
  auto s2 = rw(nvme::kIoRead, 0, 1);
  s2.cid = q.cid++;
  n = build_capsule_cmd(hb, s2, 0, q.dg, 0);
  hb[kCapsuleCmdHlen] ^= 0xff;
  q.send(std::vector<uint8_t>(hb, hb + n));
  auto t = q.next();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->type, PduType::kC2HTermReq);
  EXPECT_EQ(reinterpret_cast<const TermReq*>(t->hdr.data())->fes,
            uint16_t(Fes::kHeaderDigestError));
  q.pump();
  EXPECT_TRUE(q.eof);
}

TEST_F(TcpTarget, ConnectRules) {
  Host h(env, port);
  h.ic();
  // Unknown subsystem: Connect Invalid Parameters, IATTR data, IPO subnqn.
  auto e = h.connect(0, 31, nvme::kCntlidDynamic, "nqn.2026-11.io.vdpu:nope");
  EXPECT_EQ((e.status >> 1) & 0x7ff, nvme::sc::kConnectInvalidParameters);
  EXPECT_EQ(e.dw0, nvme::connect_invalid_param(true, offsetof(nvme::ConnectData, subnqn)));
  // Host not allowed.
  allow_any = false;
  e = h.connect(0, 31, nvme::kCntlidDynamic);
  EXPECT_EQ((e.status >> 1) & 0x7ff, nvme::sc::kConnectInvalidHost);
  allowed.insert(kHost);
  // Admin queue too short (< 32 entries).
  e = h.connect(0, 7, nvme::kCntlidDynamic);
  EXPECT_EQ((e.status >> 1) & 0x7ff, nvme::sc::kConnectInvalidParameters);
  EXPECT_EQ(e.dw0, nvme::connect_invalid_param(false, offsetof(nvme::ConnectCmd, sqsize)));
  // Commands before Connect: Command Sequence Error.
  nvme::SqEntry id{};
  id.opc = nvme::kAdmKeepAlive;
  id.cid = 77;
  h.capsule(id);
  EXPECT_EQ((h.resp().status >> 1) & 0x7ff, nvme::sc::kCommandSequenceError);
  // Now a good one.
  e = h.connect(0, 31, nvme::kCntlidDynamic);
  ASSERT_EQ(e.status >> 1, 0);
  uint16_t cntlid = uint16_t(e.dw0);
  // I/O queue before CC.EN: Command Sequence Error; unknown cntlid: invalid.
  Host q(env, port);
  q.ic();
  EXPECT_EQ((q.connect(1, 31, cntlid).status >> 1) & 0x7ff, nvme::sc::kCommandSequenceError);
  EXPECT_EQ(h.prop_set(nvme::kPropCc, nvme::kCcEn).status >> 1, 0);
  e = q.connect(1, 31, uint16_t(cntlid + 5));
  EXPECT_EQ((e.status >> 1) & 0x7ff, nvme::sc::kConnectInvalidParameters);
  EXPECT_EQ(e.dw0, nvme::connect_invalid_param(true, offsetof(nvme::ConnectData, cntlid)));
  // Queue deeper than max_queue_depth.
  e = q.connect(1, uint16_t(opts.max_queue_depth), cntlid);
  EXPECT_EQ(e.dw0, nvme::connect_invalid_param(false, offsetof(nvme::ConnectCmd, sqsize)));
  ASSERT_EQ(q.connect(1, 31, cntlid).status >> 1, 0);
  // The same qid twice.
  Host q2(env, port);
  q2.ic();
  e = q2.connect(1, 31, cntlid);
  EXPECT_EQ(e.dw0, nvme::connect_invalid_param(false, offsetof(nvme::ConnectCmd, qid)));
  // The admin queue goes away: its I/O queues are closed too.
  ::shutdown(h.fd_, SHUT_RDWR);
  h.pump();
  q.pump();
  EXPECT_TRUE(q.eof);
}

TEST_F(TcpTarget, DiscoveryLogListsTheListener) {
  Host h(env, port);
  h.ic();
  auto e = h.connect(0, 31, nvme::kCntlidDynamic, nvme::kDiscoveryNqn);
  ASSERT_EQ(e.status >> 1, 0);
  ASSERT_EQ(h.prop_set(nvme::kPropCc, nvme::kCcEn).status >> 1, 0);
  nvme::SqEntry g{};
  g.opc = nvme::kAdmGetLogPage;
  uint32_t numd = 4096 / 4 - 1;
  g.cdw10 = nvme::kLidDiscovery | (numd << 16);
  auto [st, data] = h.read_cmd(g, 4096);
  ASSERT_EQ(st, 0);
  const auto& hd = *reinterpret_cast<const nvme::DiscoveryLogHeader*>(data.data());
  ASSERT_EQ(hd.numrec, 1u);
  const auto& en = *reinterpret_cast<const nvme::DiscoveryLogEntry*>(data.data() + 1024);
  EXPECT_EQ(en.trtype, nvme::kTrtypeTcp);
  EXPECT_EQ(std::string(en.subnqn), kNqn);
  EXPECT_EQ(std::string(en.traddr, 9), "127.0.0.1");
  // An I/O queue to the discovery subsystem is refused.
  Host q(env, port);
  q.ic();
  e = q.connect(1, 31, uint16_t(e.dw0), nvme::kDiscoveryNqn);
  EXPECT_EQ((e.status >> 1) & 0x7ff, nvme::sc::kConnectInvalidParameters);
  // The host filter applies to the log.
  allow_any = false;
  auto [st2, d2] = h.read_cmd(g, 4096);
  ASSERT_EQ(st2, 0);
  EXPECT_EQ(reinterpret_cast<const nvme::DiscoveryLogHeader*>(d2.data())->numrec, 0u);
}

struct BadPdu {
  const char* name;
  std::vector<uint8_t> (*make)();
  Fes fes;
};

std::vector<uint8_t> bad_type() {
  std::vector<uint8_t> b(kIcLen);
  build_icreq(b.data(), 0, false, false, 0);
  b[0] = 0x42;
  return b;
}
std::vector<uint8_t> bad_pfv() {
  std::vector<uint8_t> b(kIcLen);
  build_icreq(b.data(), 0, false, false, 0);
  b[8] = 1;
  return b;
}
std::vector<uint8_t> bad_hpda() {
  std::vector<uint8_t> b(kIcLen);
  build_icreq(b.data(), 0, false, false, 0);
  b[10] = 32;
  return b;
}
std::vector<uint8_t> capsule_first() {
  nvme::SqEntry s{};
  std::vector<uint8_t> b(kMaxTxHeader);
  b.resize(build_capsule_cmd(b.data(), s, 0, {}, 0));
  return b;
}
std::vector<uint8_t> short_hlen() {
  std::vector<uint8_t> b(kIcLen);
  build_icreq(b.data(), 0, false, false, 0);
  b[2] = 8;
  return b;
}

class BadPdus : public TcpTarget, public ::testing::WithParamInterface<BadPdu> {};

TEST_P(BadPdus, TermReqThenClose) {
  Host h(env, port);
  h.send(GetParam().make());
  auto t = h.next();
  ASSERT_TRUE(t) << GetParam().name;
  EXPECT_EQ(t->type, PduType::kC2HTermReq);
  EXPECT_EQ(reinterpret_cast<const TermReq*>(t->hdr.data())->fes, uint16_t(GetParam().fes));
  h.pump();
  EXPECT_TRUE(h.eof);
  // The target still serves others.
  Host ok(env, port);
  ok.bring_up();
}

INSTANTIATE_TEST_SUITE_P(Pdus, BadPdus,
                         ::testing::Values(BadPdu{"type", bad_type, Fes::kInvalidHeaderField},
                                           BadPdu{"pfv", bad_pfv, Fes::kUnsupportedParameter},
                                           BadPdu{"hpda", bad_hpda, Fes::kInvalidHeaderField},
                                           BadPdu{"capsule_first", capsule_first,
                                                  Fes::kPduSequenceError},
                                           BadPdu{"hlen", short_hlen, Fes::kInvalidHeaderField}),
                         [](const auto& i) { return std::string(i.param.name); });

TEST_F(TcpTarget, H2CDataOutsideR2TIsFatal) {
  Host h(env, port);
  uint16_t cntlid = h.bring_up();
  Host q(env, port);
  q.ic();
  ASSERT_EQ(q.connect(1, 31, cntlid).status >> 1, 0);
  auto sqe = rw(nvme::kIoWrite, 0, 8);
  sqe.cid = 5;
  Host::sgl_transport(sqe, 4096);
  q.capsule(sqe);
  auto p = q.next();
  ASSERT_TRUE(p && p->type == PduType::kR2T);
  R2T r;
  std::memcpy(&r, p->hdr.data(), sizeof r);
  uint8_t hb[kMaxTxHeader];
  uint32_t n = build_h2c_data(hb, 5, r.ttag, 1024, 4096, true, {}, 0);  // beyond the window
  std::vector<uint8_t> b(hb, hb + n);
  b.resize(b.size() + 4096);
  q.send(b);
  auto t = q.next();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->type, PduType::kC2HTermReq);
  EXPECT_EQ(reinterpret_cast<const TermReq*>(t->hdr.data())->fes, uint16_t(Fes::kDataOutOfRange));
}

TEST_F(TcpTarget, KeepAliveTimeoutEndsTheAssociation) {
  Host h(env, port);
  h.bring_up();
  env.clock_ns += 31'000'000'000ull;  // KATO 30 s (+ 100 ms) without a command
  h.pump();
  EXPECT_TRUE(h.eof);
}

}  // namespace
}  // namespace vdpu::nvmf_tcp

namespace vdpu::nvmf_tcp {
namespace {

// bdev kNoMem answers are retried from the next poll; bdev errors map to the
// NVM status (shared table with the PCIe path).
TEST_F(TcpTarget, BdevNoMemRetriedAndErrorsMapped) {
  Host h(env, port);
  uint16_t cntlid = h.bring_up();
  Host q(env, port);
  q.ic();
  ASSERT_EQ(q.connect(1, 31, cntlid).status >> 1, 0);
  auto d = pattern(4096, 4);
  bdev->nomem_next = 3;
  EXPECT_EQ(q.write_cmd(rw(nvme::kIoWrite, 40, 8), d, true), 0);
  EXPECT_EQ(bdev->nomem_next, 0u);
  bdev->nomem_next = 2;
  EXPECT_EQ(q.read_cmd(rw(nvme::kIoRead, 40, 8), 4096).second, d);
  bdev->fail_next = bdev::IoStatus::kFailed;
  EXPECT_EQ(q.read_cmd(rw(nvme::kIoRead, 40, 8), 4096).first & 0x7ff,
            nvme::sc::kUnrecoveredReadError & 0x7ff);
}

}  // namespace
}  // namespace vdpu::nvmf_tcp
