// NVMe/TCP wire format: CRC32C, builders, and the incremental receiver with
// well-formed and malformed input (NVMe/TCP Transport 1.0 §3.6).
#include "transport/nvmf_tcp/pdu.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace vdpu::nvmf_tcp {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4 / the usual check value of CRC-32C.
  const char* s = "123456789";
  EXPECT_EQ(crc32c(s, 9), 0xe3069283u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = uint8_t(i);
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8a9136aau);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62a8ab43u);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46dd794eu);
}

// The hardware path (with its three-stream rounds) must agree with a plain
// bitwise CRC on every length and alignment, and incremental updates must
// equal one-shot digests.
uint32_t crc_ref(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, MatchesReferenceAllSizes) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(20000);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t n : {0, 1, 7, 8, 9, 31, 32, 33, 3071, 3072, 3073, 4096, 6144, 9216, 12345, 19990}) {
    for (size_t off : {0, 1, 3, 8}) {
      EXPECT_EQ(crc32c(buf.data() + off, n), crc_ref(buf.data() + off, n)) << n << "+" << off;
    }
  }
  uint32_t s = kCrc32cInit;
  s = crc32c_update(s, buf.data(), 5000);
  s = crc32c_update(s, buf.data() + 5000, 11);
  s = crc32c_update(s, buf.data() + 5011, 9000);
  EXPECT_EQ(crc32c_final(s), crc_ref(buf.data(), 14011));
  iovec iov[3] = {{buf.data(), 100}, {buf.data() + 100, 4000}, {buf.data() + 4100, 900}};
  EXPECT_EQ(crc32c_iov(iov, 3, 5000), crc_ref(buf.data(), 5000));
  EXPECT_EQ(crc32c_iov(iov, 3, 150), crc_ref(buf.data(), 150));
}

// A handler that records what it sees and places data in a buffer.
struct Recorder : PduHandler {
  struct Seen {
    PduType type;
    uint8_t flags;
    uint32_t data_len;
    std::vector<uint8_t> hdr;
    std::vector<uint8_t> data;
    bool ddgst_ok;
  };
  std::vector<Seen> seen;
  std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20);
  iovec iov[3]{};
  bool split_iov = false;
  bool discard = false;
  PduError fail_header{};
  PduReceiver* rx = nullptr;
  RecvParams after_ic{};

  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    if (fail_header) return fail_header;
    if (pdu.data_len && !discard) {
      std::fill(buf.begin(), buf.begin() + pdu.data_len, 0);
      if (split_iov && pdu.data_len > 2) {
        iov[0] = {buf.data(), 1};
        iov[1] = {buf.data() + 1, pdu.data_len / 2};
        iov[2] = {buf.data() + 1 + pdu.data_len / 2, pdu.data_len - 1 - pdu.data_len / 2};
        *place = {iov, 3};
      } else {
        iov[0] = {buf.data(), pdu.data_len};
        *place = {iov, 1};
      }
    }
    return {};
  }
  PduError on_pdu_done(const PduView& pdu, bool ok, bool* pause) override {
    (void)pause;
    Seen s{pdu.type, pdu.flags, pdu.data_len, {pdu.hdr, pdu.hdr + pdu.hlen}, {}, ok};
    if (!discard) s.data.assign(buf.begin(), buf.begin() + pdu.data_len);
    seen.push_back(std::move(s));
    if ((pdu.type == PduType::kICReq || pdu.type == PduType::kICResp) && rx)
      rx->params() = after_ic;
    return {};
  }
};

std::vector<uint8_t> icreq(bool hd = false, bool dd = false) {
  std::vector<uint8_t> v(kIcLen);
  build_icreq(v.data(), 0, hd, dd, 0);
  return v;
}

std::vector<uint8_t> capsule(uint16_t cid, const std::vector<uint8_t>& data, TxDigests dg,
                             uint8_t cpda = 0) {
  nvme::SqEntry sqe{};
  sqe.opc = nvme::kIoWrite;
  sqe.cid = cid;
  uint8_t hdr[kMaxTxHeader];
  uint32_t n = build_capsule_cmd(hdr, sqe, uint32_t(data.size()), dg, cpda);
  std::vector<uint8_t> v(hdr, hdr + n);
  v.insert(v.end(), data.begin(), data.end());
  if (dg.ddgst && !data.empty()) {
    uint8_t d[4];
    nvme::put_le32(d, crc32c(data.data(), data.size()));
    v.insert(v.end(), d, d + 4);
  }
  return v;
}

std::vector<uint8_t> h2c(uint16_t cccid, uint16_t ttag, uint32_t datao,
                         const std::vector<uint8_t>& data, TxDigests dg, bool last = true) {
  uint8_t hdr[kMaxTxHeader];
  uint32_t n = build_h2c_data(hdr, cccid, ttag, datao, uint32_t(data.size()), last, dg, 0);
  std::vector<uint8_t> v(hdr, hdr + n);
  v.insert(v.end(), data.begin(), data.end());
  if (dg.ddgst) {
    uint8_t d[4];
    nvme::put_le32(d, crc32c(data.data(), data.size()));
    v.insert(v.end(), d, d + 4);
  }
  return v;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7);
  return v;
}

struct Fixture : ::testing::Test {
  PduReceiver rx{Role::kTarget};
  Recorder h;
  void SetUp() override { h.rx = &rx; }
  // Feeds a stream in chunks of `chunk` bytes; returns bytes consumed.
  size_t feed(const std::vector<uint8_t>& s, size_t chunk = SIZE_MAX) {
    size_t pos = 0;
    while (pos < s.size()) {
      size_t n = std::min(chunk, s.size() - pos);
      size_t k = rx.feed(s.data() + pos, n, h);
      pos += k;
      if (k < n) break;
    }
    return pos;
  }
  void connect(bool hd, bool dd) {
    h.after_ic = {};
    h.after_ic.hdgst = hd;
    h.after_ic.ddgst = dd;
    ASSERT_EQ(feed(icreq(hd, dd)), kIcLen);
    ASSERT_FALSE(rx.failed());
    h.seen.clear();
  }
};

TEST_F(Fixture, IcReqFields) {
  ASSERT_EQ(feed(icreq(true, true)), kIcLen);
  ASSERT_EQ(h.seen.size(), 1u);
  const auto& r = *reinterpret_cast<const ICReq*>(h.seen[0].hdr.data());
  EXPECT_EQ(r.pfv, 0);
  EXPECT_EQ(r.dgst, kDgstHdgstEnable | kDgstDdgstEnable);
  EXPECT_EQ(h.seen[0].type, PduType::kICReq);
}

class AnySplit : public Fixture,
                 public ::testing::WithParamInterface<std::tuple<bool, bool, size_t>> {};

// Every digest combination and every chunk size gives the same PDUs and data.
TEST_P(AnySplit, CapsuleAndH2CData) {
  auto [hd, dd, chunk] = GetParam();
  connect(hd, dd);
  h.split_iov = chunk % 2;
  TxDigests dg{hd, dd};
  std::vector<uint8_t> stream;
  auto d1 = pattern(4096, 1), d2 = pattern(100, 2), d3 = pattern(8192, 3);
  for (auto* part : {&d1, &d2}) {
    auto c = capsule(uint16_t(part->size()), *part, dg);
    stream.insert(stream.end(), c.begin(), c.end());
  }
  auto c0 = capsule(9, {}, dg);
  stream.insert(stream.end(), c0.begin(), c0.end());
  auto x = h2c(5, 77, 4096, d3, dg);
  stream.insert(stream.end(), x.begin(), x.end());
  ASSERT_EQ(feed(stream, chunk), stream.size());
  ASSERT_FALSE(rx.failed()) << rx.error().reason;
  ASSERT_EQ(h.seen.size(), 4u);
  EXPECT_EQ(h.seen[0].data, d1);
  EXPECT_EQ(h.seen[1].data, d2);
  EXPECT_EQ(h.seen[2].data_len, 0u);
  EXPECT_EQ(h.seen[2].type, PduType::kCapsuleCmd);
  EXPECT_EQ(reinterpret_cast<const CapsuleCmd*>(h.seen[2].hdr.data())->sqe.cid, 9);
  EXPECT_EQ(h.seen[3].type, PduType::kH2CData);
  EXPECT_EQ(h.seen[3].data, d3);
  const auto& hh = *reinterpret_cast<const H2CData*>(h.seen[3].hdr.data());
  EXPECT_EQ(hh.ttag, 77);
  EXPECT_EQ(hh.datao, 4096u);
  EXPECT_TRUE(h.seen[3].flags & kFlagLastPdu);
  for (auto& s : h.seen) EXPECT_TRUE(s.ddgst_ok);
  EXPECT_TRUE(rx.at_pdu_boundary());
}

INSTANTIATE_TEST_SUITE_P(Digests, AnySplit,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(1, 3, 7, 64, 1000, SIZE_MAX)));

TEST_F(Fixture, PdoPaddingHonoursCpda) {
  h.after_ic.pda = 7;  // we asked for 32-byte alignment
  ASSERT_EQ(feed(icreq()), kIcLen);
  h.seen.clear();
  auto d = pattern(512, 9);
  auto c = capsule(1, d, {}, 7);
  EXPECT_EQ(c[3], 96) << "PDO: 72 rounded up to 32";
  ASSERT_EQ(feed(c), c.size());
  ASSERT_EQ(h.seen.size(), 1u);
  EXPECT_EQ(h.seen[0].data, d);
  // A PDO not aligned as asked is an invalid header field.
  auto bad = capsule(1, d, {}, 0);
  feed(bad);
  EXPECT_TRUE(rx.failed());
  EXPECT_EQ(rx.error().fes, Fes::kInvalidHeaderField);
  EXPECT_EQ(rx.error().fei, kFeiPdo);
}

TEST_F(Fixture, ZeroCopyDataPath) {
  connect(false, true);
  auto d = pattern(65536, 4);
  auto s = capsule(3, d, {false, true});
  h.after_ic.max_incapsule = 65536;
  rx.params().max_incapsule = 65536;
  // Header only through feed().
  ASSERT_EQ(rx.feed(s.data(), kCapsuleCmdHlen, h), kCapsuleCmdHlen);
  EXPECT_EQ(rx.data_remaining(), d.size());
  size_t pos = kCapsuleCmdHlen;
  iovec v[4];
  while (rx.data_remaining()) {
    int n = rx.data_iov(v, 4);
    ASSERT_GT(n, 0);
    size_t k = std::min<size_t>(v[0].iov_len, 3000);
    std::memcpy(v[0].iov_base, s.data() + pos, k);
    pos += k;
    ASSERT_TRUE(rx.data_received(k, h));
  }
  ASSERT_EQ(rx.feed(s.data() + pos, s.size() - pos, h), s.size() - pos);
  ASSERT_EQ(h.seen.size(), 1u);
  EXPECT_TRUE(h.seen[0].ddgst_ok);
  EXPECT_EQ(h.seen[0].data, d);
}

TEST_F(Fixture, DataDigestMismatchIsReportedNotFatal) {
  connect(false, true);
  auto s = capsule(3, pattern(100, 1), {false, true});
  s.back() ^= 1;
  ASSERT_EQ(feed(s), s.size());
  ASSERT_EQ(h.seen.size(), 1u);
  EXPECT_FALSE(h.seen[0].ddgst_ok);
  EXPECT_FALSE(rx.failed());
}

TEST_F(Fixture, HeaderDigestMismatchIsFatal) {
  connect(true, false);
  auto s = capsule(3, {}, {true, false});
  s[kCapsuleCmdHlen] ^= 0x80;
  feed(s);
  ASSERT_TRUE(rx.failed());
  EXPECT_EQ(rx.error().fes, Fes::kHeaderDigestError);
  EXPECT_EQ(rx.error_header_len(), kCapsuleCmdHlen);
  EXPECT_TRUE(h.seen.empty());
  // Once failed, nothing more is consumed.
  auto ok = capsule(4, {}, {true, false});
  EXPECT_EQ(rx.feed(ok.data(), ok.size(), h), 0u);
}

struct BadCase {
  const char* name;
  bool ic;  // after the IC exchange
  std::function<void(std::vector<uint8_t>&)> mutate;
  std::vector<uint8_t> (*make)();
  Fes fes;
  uint32_t fei;
};

std::vector<uint8_t> mk_icreq() {
  return icreq();
}
std::vector<uint8_t> mk_capsule() {
  return capsule(1, pattern(64, 1), {});
}
std::vector<uint8_t> mk_capsule0() {
  return capsule(1, {}, {});
}
std::vector<uint8_t> mk_h2c() {
  return h2c(1, 1, 0, pattern(64, 1), {});
}
std::vector<uint8_t> mk_c2h() {
  std::vector<uint8_t> v(kMaxTxHeader);
  v.resize(build_c2h_data(v.data(), 1, 0, 64, true, true, {}, 0));
  auto d = pattern(64, 1);
  v.insert(v.end(), d.begin(), d.end());
  return v;
}
std::vector<uint8_t> mk_r2t() {
  std::vector<uint8_t> v(kMaxTxHeader);
  v.resize(build_r2t(v.data(), 1, 1, 0, 4096, false));
  return v;
}

void set_plen(std::vector<uint8_t>& v, uint32_t plen) {
  nvme::put_le32(v.data() + 4, plen);
}

class Malformed : public Fixture, public ::testing::WithParamInterface<BadCase> {};

TEST_P(Malformed, FatalWithSpecStatus) {
  const BadCase& c = GetParam();
  if (c.ic) connect(false, false);
  auto v = c.make();
  c.mutate(v);
  feed(v);
  ASSERT_TRUE(rx.failed()) << c.name;
  EXPECT_EQ(rx.error().fes, c.fes) << c.name << ": " << rx.error().reason;
  EXPECT_EQ(rx.error().fei, c.fei) << c.name;
  EXPECT_TRUE(h.seen.empty());
  // The TermReq carries the offending header.
  uint8_t out[kMaxTermReqLen];
  uint32_t n = build_term_req(out, PduType::kC2HTermReq, rx.error().fes, rx.error().fei,
                              rx.error_header(), rx.error_header_len());
  EXPECT_GE(n, kTermReqHlen + 8);
  EXPECT_LE(n, kMaxTermReqLen);
  EXPECT_EQ(std::memcmp(out + kTermReqHlen, v.data(), 8), 0);
}

const auto nop = [](std::vector<uint8_t>&) {};

INSTANTIATE_TEST_SUITE_P(
    Pdus, Malformed,
    ::testing::Values(
        BadCase{"capsule before ICReq", false, nop, mk_capsule, Fes::kPduSequenceError, 0},
        BadCase{"second ICReq", true, nop, mk_icreq, Fes::kPduSequenceError, 0},
        BadCase{"unknown type", true, [](auto& v) { v[0] = 0x08; }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiPduType},
        BadCase{"type 0xff", false, [](auto& v) { v[0] = 0xff; }, mk_icreq,
                Fes::kInvalidHeaderField, kFeiPduType},
        BadCase{"C2HData sent to a target", true, nop, mk_c2h, Fes::kInvalidHeaderField,
                kFeiPduType},
        BadCase{"R2T sent to a target", true, nop, mk_r2t, Fes::kInvalidHeaderField,
                kFeiPduType},
        BadCase{"ICReq hlen", false, [](auto& v) { v[2] = 127; }, mk_icreq,
                Fes::kInvalidHeaderField, kFeiHlen},
        BadCase{"ICReq plen", false, [](auto& v) { set_plen(v, 132); }, mk_icreq,
                Fes::kInvalidHeaderField, kFeiPlen},
        BadCase{"ICReq pdo", false, [](auto& v) { v[3] = 8; }, mk_icreq,
                Fes::kInvalidHeaderField, kFeiPdo},
        BadCase{"capsule hlen", true, [](auto& v) { v[2] = 24; }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiHlen},
        BadCase{"capsule plen < hlen", true, [](auto& v) { set_plen(v, 40); }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiPlen},
        BadCase{"capsule HDGSTF not negotiated", true, [](auto& v) { v[1] |= kFlagHdgst; },
                mk_capsule0, Fes::kInvalidHeaderField, kFeiFlags},
        BadCase{"capsule DDGSTF not negotiated", true, [](auto& v) { v[1] |= kFlagDdgst; },
                mk_capsule, Fes::kInvalidHeaderField, kFeiFlags},
        BadCase{"capsule pdo inside header", true, [](auto& v) { v[3] = 64; }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiPdo},
        BadCase{"capsule pdo unaligned", true, [](auto& v) { v[3] = 74; }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiPdo},
        BadCase{"capsule pdo past plen", true, [](auto& v) { v[3] = 200; }, mk_capsule,
                Fes::kInvalidHeaderField, kFeiPlen},
        BadCase{"oversized in-capsule data", true, [](auto& v) { set_plen(v, 72 + 100000); },
                mk_capsule, Fes::kDataLimitExceeded, kFeiPlen},
        BadCase{"huge plen", true, [](auto& v) { set_plen(v, 0xffffffff); }, mk_capsule,
                Fes::kDataLimitExceeded, kFeiPlen},
        BadCase{"h2c without data", true,
                [](auto& v) {
                  set_plen(v, 24);
                  v.resize(24);
                },
                mk_h2c, Fes::kInvalidHeaderField, kFeiPlen},
        BadCase{"h2c datal != plen", true, [](auto& v) { nvme::put_le32(v.data() + 16, 63); },
                mk_h2c, Fes::kInvalidHeaderField, 16},
        BadCase{"h2c larger than maxh2cdata", true,
                [](auto& v) {
                  nvme::put_le32(v.data() + 16, 200000);
                  set_plen(v, 24 + 200000);
                },
                mk_h2c, Fes::kDataLimitExceeded, 16}),
    [](const auto& info) {
      std::string s = info.param.name;
      for (auto& ch : s)
        if (!isalnum(uint8_t(ch))) ch = '_';
      return s;
    });

TEST(HostSide, ReceivesC2HAndR2TAndChecksSuccessFlag) {
  PduReceiver rx(Role::kHost);
  Recorder h;
  h.rx = &rx;
  std::vector<uint8_t> resp(kIcLen);
  build_icresp(resp.data(), 0, false, false, 131072);
  ASSERT_EQ(rx.feed(resp.data(), resp.size(), h), resp.size());
  auto c = mk_c2h();
  auto r = mk_r2t();
  std::vector<uint8_t> cr(kMaxTxHeader);
  nvme::CqEntry cqe{};
  cqe.cid = 5;
  cr.resize(build_capsule_resp(cr.data(), cqe, false));
  for (auto* v : {&c, &r, &cr}) ASSERT_EQ(rx.feed(v->data(), v->size(), h), v->size());
  ASSERT_EQ(h.seen.size(), 4u);
  EXPECT_EQ(h.seen[1].type, PduType::kC2HData);
  EXPECT_TRUE(h.seen[1].flags & kFlagSuccess);
  EXPECT_EQ(h.seen[1].data, pattern(64, 1));
  EXPECT_EQ(h.seen[2].type, PduType::kR2T);
  EXPECT_EQ(h.seen[3].type, PduType::kCapsuleResp);
  // SUCCESS without LAST_PDU (§3.6.2.9).
  auto bad = mk_c2h();
  bad[1] &= uint8_t(~kFlagLastPdu);
  rx.feed(bad.data(), bad.size(), h);
  ASSERT_TRUE(rx.failed());
  EXPECT_EQ(rx.error().fei, kFeiFlags);
  // A CapsuleCmd is not for a host.
  PduReceiver rx2(Role::kHost);
  rx2.feed(resp.data(), resp.size(), h);
  auto cmd = mk_capsule0();
  rx2.feed(cmd.data(), cmd.size(), h);
  EXPECT_TRUE(rx2.failed());
}

TEST(TermReq, RoundTripAndTruncation) {
  PduReceiver rx(Role::kTarget);
  Recorder h;
  std::vector<uint8_t> big(300, 0xab), out(kMaxTermReqLen);
  uint32_t n = build_term_req(out.data(), PduType::kH2CTermReq, Fes::kPduSequenceError, 0,
                              big.data(), uint32_t(big.size()));
  EXPECT_EQ(n, kMaxTermReqLen);
  out.resize(n);
  // A TermReq is accepted even before the IC exchange.
  ASSERT_EQ(rx.feed(out.data(), out.size(), h), out.size());
  ASSERT_EQ(h.seen.size(), 1u);
  EXPECT_EQ(h.seen[0].type, PduType::kH2CTermReq);
  EXPECT_EQ(h.seen[0].data_len, kTermReqMaxData);
  const auto& t = *reinterpret_cast<const TermReq*>(h.seen[0].hdr.data());
  EXPECT_EQ(t.fes, uint16_t(Fes::kPduSequenceError));
  // PLEN beyond 24 + 128 is invalid.
  PduReceiver rx2(Role::kTarget);
  set_plen(out, kMaxTermReqLen + 1);
  out.push_back(0);
  rx2.feed(out.data(), out.size(), h);
  EXPECT_TRUE(rx2.failed());
}

TEST(Builders, LayoutsMatchTheSpec) {
  uint8_t b[kMaxTxHeader];
  EXPECT_EQ(build_c2h_data(b, 7, 4096, 512, true, true, {true, true}, 0), 28u);
  const auto& c = *reinterpret_cast<const C2HData*>(b);
  EXPECT_EQ(c.ch.pdu_type, 7);
  EXPECT_EQ(c.ch.flags, kFlagHdgst | kFlagDdgst | kFlagLastPdu | kFlagSuccess);
  EXPECT_EQ(c.ch.hlen, 24);
  EXPECT_EQ(c.ch.pdo, 28);
  EXPECT_EQ(c.ch.plen, 28u + 512 + 4);
  EXPECT_EQ(nvme::le32(b + 24), crc32c(b, 24));
  EXPECT_EQ(build_r2t(b, 1, 2, 0, 8192, false), 24u);
  EXPECT_EQ(reinterpret_cast<const R2T*>(b)->ch.plen, 24u);
  nvme::CqEntry cqe{};
  EXPECT_EQ(build_capsule_resp(b, cqe, true), 28u);
  EXPECT_EQ(reinterpret_cast<const CapsuleResp*>(b)->ch.plen, 28u);
  EXPECT_EQ(data_offset(72, true, 31), 128u);
  EXPECT_EQ(data_offset(72, false, 0), 72u);
  nvme::SqEntry sqe{};
  EXPECT_EQ(build_capsule_cmd(b, sqe, 0, {true, true}, 0), 76u);
  EXPECT_EQ(reinterpret_cast<const CapsuleCmd*>(b)->ch.pdo, 0);
  EXPECT_EQ(reinterpret_cast<const CapsuleCmd*>(b)->ch.flags, kFlagHdgst);
}

}  // namespace
}  // namespace vdpu::nvmf_tcp
