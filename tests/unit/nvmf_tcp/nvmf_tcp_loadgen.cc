// A minimal NVMe/TCP host that keeps QD commands in flight on one I/O queue
// of an NVMe-oF/TCP target and reports IOPS: the target-side benchmark
// driver of bench/run-nvmf-tcp-target.sh, independent of vdpu's initiator
// (it does no bdev work: a capsule out, a C2HData/CapsuleResp in, batched
// writev/recv on one pinned thread).
//
//   nvmf_tcp_loadgen --addr 127.0.0.1 --port 4420 --nqn NQN --rw randread
//                    --bs 4096 --qd 32 --time 5 [--core 0] [--blocks N]
// Prints one JSON line: {"rw":...,"bs":...,"qd":...,"ios":...,"secs":...,"iops":...}
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nvme/fabrics.h"
#include "transport/nvmf_tcp/pdu.h"

using namespace vdpu;
using namespace vdpu::nvmf_tcp;

namespace {

[[noreturn]] void die(const char* m) {
  std::fprintf(stderr, "nvmf_tcp_loadgen: %s\n", m);
  std::exit(1);
}

struct Conn : PduHandler {
  int fd = -1;
  PduReceiver rx{Role::kHost};
  std::vector<uint8_t> rbuf = std::vector<uint8_t>(1 << 20);
  std::vector<uint8_t> sink = std::vector<uint8_t>(1 << 20);
  iovec place{};
  // completion bookkeeping
  std::vector<uint16_t> done_cids;
  std::vector<std::pair<uint16_t, uint16_t>> r2ts;  // cid, ttag
  nvme::CqEntry last{};
  bool got_resp = false;

  void open(const char* addr, int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) die("bad --addr");
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) die("connect failed");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  void send_all(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    while (n) {
      ssize_t k = ::send(fd, b, n, MSG_NOSIGNAL);
      if (k <= 0) die("send failed");
      b += k;
      n -= size_t(k);
    }
  }
  void sendv(iovec* v, int n) {
    while (n) {
      ssize_t k = writev(fd, v, n);
      if (k <= 0) die("writev failed");
      while (n && size_t(k) >= v->iov_len) {
        k -= ssize_t(v->iov_len);
        ++v;
        --n;
      }
      if (n) {
        v->iov_base = static_cast<uint8_t*>(v->iov_base) + k;
        v->iov_len -= size_t(k);
      }
    }
  }
  // Reads once (blocking) and parses.
  void pump() {
    ssize_t n = recv(fd, rbuf.data(), rbuf.size(), 0);
    if (n <= 0) die("target closed the connection");
    if (rx.feed(rbuf.data(), size_t(n), *this) != size_t(n)) die(rx.error().reason);
  }
  PduError on_pdu_header(const PduView& pdu, Placement* p) override {
    if (pdu.data_len) {
      place = {sink.data(), std::min<size_t>(pdu.data_len, sink.size())};
      *p = {&place, 1};
    }
    return {};
  }
  PduError on_pdu_done(const PduView& pdu, bool, bool*) override {
    switch (pdu.type) {
      case PduType::kCapsuleResp: {
        const auto& r = pdu.as<CapsuleResp>();
        last = r.cqe;
        got_resp = true;
        if (r.cqe.status >> 1) {
          std::fprintf(stderr, "command %u failed: status %#x\n", r.cqe.cid, r.cqe.status >> 1);
          std::exit(1);
        }
        done_cids.push_back(r.cqe.cid);
        break;
      }
      case PduType::kC2HData:
        if (pdu.flags & kFlagSuccess) {
          done_cids.push_back(pdu.as<C2HData>().cccid);
          got_resp = true;
        }
        break;
      case PduType::kR2T: {
        const auto& r = pdu.as<R2T>();
        r2ts.push_back({r.cccid, r.ttag});
        break;
      }
      case PduType::kC2HTermReq:
        die("target sent C2HTermReq");
      default:
        break;
    }
    return {};
  }
  void icreq() {
    uint8_t b[kIcLen];
    build_icreq(b, 0, false, false, 0);
    send_all(b, sizeof b);
    while (rx.pdus() == 0) pump();
  }
  nvme::CqEntry sync_cmd(const nvme::SqEntry& s, const void* data, uint32_t len) {
    uint8_t h[kMaxTxHeader];
    uint32_t n = build_capsule_cmd(h, s, len, {}, 0);
    iovec v[2] = {{h, n}, {const_cast<void*>(data), len}};
    sendv(v, len ? 2 : 1);
    got_resp = false;
    while (!got_resp) pump();
    done_cids.clear();
    return last;
  }
};

void sgl(nvme::SqEntry& s, uint32_t len, bool incapsule) {
  auto* p = reinterpret_cast<uint8_t*>(&s) + 24;
  std::memset(p, 0, 16);
  nvme::put_le32(p + 8, len);
  p[15] = incapsule ? nvme::kSglIdIncapsule : nvme::kSglIdTransport;
  s.flags |= 0x40;
}

uint16_t connect_q(Conn& c, const std::string& nqn, uint16_t qid, uint16_t sqsize,
                   uint16_t cntlid) {
  nvme::ConnectCmd cc{};
  cc.opc = nvme::kOpcFabrics;
  cc.fctype = nvme::kFctypeConnect;
  cc.qid = qid;
  cc.sqsize = sqsize;
  cc.kato = qid ? 0 : 60000;
  nvme::SqEntry s;
  std::memcpy(&s, &cc, 64);
  sgl(s, 1024, true);
  nvme::ConnectData d{};
  d.cntlid = cntlid;
  std::strncpy(d.subnqn, nqn.c_str(), 255);
  std::strncpy(d.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:6a7d1e4c-0d1b-4c1e-9a55-000000000b01",
               255);
  auto e = c.sync_cmd(s, &d, sizeof d);
  if (e.status >> 1) die("connect refused");
  return uint16_t(e.dw0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1", nqn, rw = "randread";
  int port = 4420, core = -1;
  uint32_t bs = 4096, qd = 32;
  double secs = 5;
  uint64_t blocks = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--addr")
      addr = v;
    else if (k == "--port")
      port = std::atoi(v.c_str());
    else if (k == "--nqn")
      nqn = v;
    else if (k == "--rw")
      rw = v;
    else if (k == "--bs")
      bs = uint32_t(std::atoi(v.c_str()));
    else if (k == "--qd")
      qd = uint32_t(std::atoi(v.c_str()));
    else if (k == "--time")
      secs = std::atof(v.c_str());
    else if (k == "--core")
      core = std::atoi(v.c_str());
    else if (k == "--blocks")
      blocks = std::strtoull(v.c_str(), nullptr, 10);
    else
      die("unknown option");
  }
  if (nqn.empty() || qd < 1 || qd > 1023 || bs < 512 || bs % 512)
    die("need --nqn, 1<=qd<1024, bs%512==0");
  const bool write = rw == "randwrite";
  if (core >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  Conn adm;
  adm.open(addr.c_str(), port);
  adm.icreq();
  uint16_t cntlid = connect_q(adm, nqn, 0, 31, 0xffff);
  {
    nvme::PropertyCmd p{};
    p.opc = nvme::kOpcFabrics;
    p.fctype = nvme::kFctypePropertySet;
    p.ofst = nvme::kPropCc;
    p.value = nvme::kCcEn;
    nvme::SqEntry s;
    std::memcpy(&s, &p, 64);
    adm.sync_cmd(s, nullptr, 0);
  }
  if (!blocks) {  // Identify Namespace 1 for the size
    nvme::SqEntry s{};
    s.opc = nvme::kAdmIdentify;
    s.nsid = 1;
    s.cdw10 = nvme::kCnsNamespace;
    sgl(s, 4096, false);
    adm.sync_cmd(s, nullptr, 0);  // the data lands in adm.sink
    blocks = reinterpret_cast<const nvme::IdentifyNamespace*>(adm.sink.data())->nsze;
    if (!blocks) die("namespace 1 has no blocks");
  }
  Conn io;
  io.open(addr.c_str(), port);
  io.icreq();
  connect_q(io, nqn, 1, uint16_t(qd > 1 ? qd - 1 : 1), cntlid);  // SQSIZE is 0's based

  const uint32_t nlb = bs / 512;
  const uint64_t span = blocks / nlb;
  std::mt19937_64 rng(42);
  std::vector<uint8_t> wdata(bs, 0x5a);
  const bool incap = write && bs <= 4096;
  struct Slot {
    uint8_t hdr[kMaxTxHeader];
    uint32_t hlen;
  };
  std::vector<Slot> slots(qd);
  std::vector<iovec> v;
  v.reserve(2 * qd + 2);
  auto build = [&](uint16_t cid) {
    nvme::SqEntry s{};
    s.opc = write ? nvme::kIoWrite : nvme::kIoRead;
    s.cid = cid;
    s.nsid = 1;
    uint64_t slba = (rng() % span) * nlb;
    s.cdw10 = uint32_t(slba);
    s.cdw11 = uint32_t(slba >> 32);
    s.cdw12 = nlb - 1;
    sgl(s, bs, incap);
    slots[cid].hlen = build_capsule_cmd(slots[cid].hdr, s, incap ? bs : 0, {}, 0);
    v.push_back({slots[cid].hdr, slots[cid].hlen});
    if (incap) v.push_back({wdata.data(), bs});
  };
  for (uint16_t c = 0; c < qd; ++c) build(c);
  io.sendv(v.data(), int(v.size()));
  v.clear();
  uint64_t ios = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto end = t0 + std::chrono::duration<double>(secs);
  std::vector<uint8_t> h2c(kMaxTxHeader);
  for (;;) {
    io.pump();
    // R2T: send the data (writes larger than the in-capsule size).
    for (auto [cid, ttag] : io.r2ts) {
      uint32_t n = build_h2c_data(h2c.data(), cid, ttag, 0, bs, true, {}, 0);
      iovec w[2] = {{h2c.data(), n}, {wdata.data(), bs}};
      io.sendv(w, 2);
    }
    io.r2ts.clear();
    ios += io.done_cids.size();
    bool stop = std::chrono::steady_clock::now() >= end;
    if (!stop)
      for (uint16_t cid : io.done_cids) build(cid);
    io.done_cids.clear();
    if (!v.empty()) io.sendv(v.data(), int(v.size()));
    v.clear();
    if (stop) break;
  }
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"rw\":\"%s\",\"bs\":%u,\"qd\":%u,\"ios\":%llu,\"secs\":%.3f,\"iops\":%.0f}\n",
              rw.c_str(), bs, qd, static_cast<unsigned long long>(ios), el, double(ios) / el);
  return 0;
}
