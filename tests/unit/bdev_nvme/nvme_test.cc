// The NVMe/TCP initiator (bdev/nvme) against FakeTarget over loopback TCP:
// attach/identify/enable, I/O with in-capsule data, R2T/H2CData, C2HData in
// chunks, split commands, digests; refusals; bad PDUs; reconnect, fast I/O
// fail and controller loss.
#include "bdev/nvme/nvme.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include "bdev/bdev.h"
#include "fake_target.h"
#include "runtime/runtime.h"

namespace vdpu::bdev::nvme {
namespace {

using test::FakeTarget;

// Waits (bounded) for pred; the bound only keeps a broken build from hanging.
template <class P>
bool eventually(P pred, int seconds = 60) {
  for (int i = 0; i < seconds * 200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class NvmeTcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rt::Options o;
    o.cores = {0, 1};
    o.pin = false;
    rtm_ = std::make_unique<rt::Runtime>(o);
    ASSERT_TRUE(rtm_->start().ok());
    main_ = std::thread([this] { rtm_->run_main(); });
    global_options() = GlobalOptions{};
  }

  void TearDown() override {
    close_dev();
    std::promise<void> p;
    auto f = p.get_future();
    rtm_->main().send_blocking([&] { detach_all([&] { p.set_value(); }); });
    f.wait();
    rtm_->stop();
    main_.join();
    rtm_.reset();
  }

  template <class F>
  auto on_main(F fn) {
    using R = decltype(fn());
    std::promise<R> p;
    auto f = p.get_future();
    rtm_->main().send_blocking([&] { p.set_value(fn()); });
    return f.get();
  }

  AttachOptions opts(const FakeTarget& t, const std::string& name = "nvme0") {
    AttachOptions o;
    o.name = name;
    o.traddr = "127.0.0.1";
    o.trsvcid = t.port_str();
    o.subnqn = t.nqn;
    o.fabrics_timeout_us = 5'000'000;
    return o;
  }

  Result<std::vector<std::string>> attach_sync(const AttachOptions& o) {
    std::promise<Result<std::vector<std::string>>> p;
    auto f = p.get_future();
    rtm_->main().send_blocking(
        [&] { attach(o, [&](Result<std::vector<std::string>> r) { p.set_value(r); }); });
    return f.get();
  }

  bool bdev_exists(const std::string& n) {
    return on_main([&] { return Manager::get().find(n) != nullptr; });
  }

  json controllers() {
    return on_main([] { return controllers_json(); });
  }

  // Opens bdev n and a channel on reactor 0; hot removal closes both.
  void open_dev(const std::string& n) {
    desc_ = on_main([&]() -> Desc* {
      auto d = Manager::get().open(n, true, [this](Desc& d) {
        NvmeTcpTest* self = this;  // d.close() destroys this closure
        self->rtm_->call(0, [self] { self->ch_.reset(); });
        self->desc_ = nullptr;
        self->removed_ = true;
        d.close();
      });
      return d ? *d : nullptr;
    });
    ASSERT_NE(desc_, nullptr);
    Bdev* b = &desc_->bdev();
    ch_ = rtm_->call(0, [b] { return b->create_channel(); });
    ASSERT_NE(ch_, nullptr);
    bs_ = b->block_size();
  }

  void close_dev() {
    if (!desc_) return;
    rtm_->call(0, [this] { ch_.reset(); });
    on_main([this] {
      if (desc_) desc_->close();
      desc_ = nullptr;
      return 0;
    });
  }

  struct Op {
    Io io{};
    iovec iov[4]{};
    std::atomic<int> st{-1};
  };

  void start(Op& op, IoType t, uint64_t lba, uint64_t n, std::vector<iovec> iovs = {}) {
    op.io.type = t;
    op.io.offset_blocks = lba;
    op.io.num_blocks = n;
    for (size_t i = 0; i < iovs.size(); ++i) op.iov[i] = iovs[i];
    op.io.iov = iovs.empty() ? nullptr : op.iov;
    op.io.iovcnt = uint32_t(iovs.size());
    op.io.cb = [](Io& io, IoStatus st) { static_cast<Op*>(io.cb_arg)->st = int(st); };
    op.io.cb_arg = &op;
    rtm_->call(0, [&] { ch_->submit(op.io); });
  }

  IoStatus wait(Op& op, int seconds = 60) {
    EXPECT_TRUE(eventually([&] { return op.st.load() >= 0; }, seconds)) << "I/O did not complete";
    return IoStatus(op.st.load());
  }

  IoStatus io(IoType t, uint64_t lba, uint64_t n, std::vector<iovec> iovs = {}) {
    Op op;
    start(op, t, lba, n, std::move(iovs));
    return wait(op);
  }

  static void fill(std::vector<uint8_t>& b, uint32_t seed) {
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t((i * 131 + seed * 7 + (i >> 9)) & 0xff);
  }

  std::unique_ptr<rt::Runtime> rtm_;
  std::thread main_;
  Desc* desc_ = nullptr;
  std::unique_ptr<Channel> ch_;
  uint32_t bs_ = 512;
  std::atomic<bool> removed_{false};
};

TEST(NvmeTcpOpts, ReconnectRulesAsSpdk) {
  EXPECT_TRUE(check_reconnect_opts(0, 0, 0).ok());
  EXPECT_TRUE(check_reconnect_opts(-1, 1, 0).ok());
  EXPECT_TRUE(check_reconnect_opts(10, 2, 5).ok());
  EXPECT_FALSE(check_reconnect_opts(-2, 1, 0).ok());
  EXPECT_FALSE(check_reconnect_opts(-1, 0, 0).ok());
  EXPECT_FALSE(check_reconnect_opts(0, 1, 0).ok());
  EXPECT_FALSE(check_reconnect_opts(0, 0, 1).ok());
  EXPECT_FALSE(check_reconnect_opts(10, 0, 0).ok());
  EXPECT_FALSE(check_reconnect_opts(10, 11, 0).ok());
  EXPECT_FALSE(check_reconnect_opts(10, 2, 11).ok());
  EXPECT_FALSE(check_reconnect_opts(10, 5, 2).ok());
}

TEST_F(NvmeTcpTest, AttachReadWriteVerify) {
  FakeTarget tgt;
  tgt.start();
  auto r = attach_sync(opts(tgt));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(*r, std::vector<std::string>{"nvme0n1"});
  Bdev* b = on_main([] { return Manager::get().find("nvme0n1"); });
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->block_size(), 512u);
  EXPECT_EQ(b->num_blocks(), tgt.blocks);
  EXPECT_TRUE(b->supports(IoType::kUnmap));
  EXPECT_TRUE(b->supports(IoType::kWriteZeroes));
  json c = controllers();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["name"], "nvme0");
  EXPECT_EQ(c[0]["ctrlrs"][0]["state"], "enabled");
  EXPECT_EQ(c[0]["ctrlrs"][0]["trid"]["trtype"], "TCP");
  EXPECT_EQ(c[0]["ctrlrs"][0]["trid"]["trsvcid"], tgt.port_str());

  open_dev("nvme0n1");
  // 4 KiB write: in-capsule (icd 4096).
  std::vector<uint8_t> w(4096), rd(4096);
  fill(w, 1);
  ASSERT_EQ(io(IoType::kWrite, 8, 8, {{w.data(), w.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(tgt.disk() + 8 * 512, w.data(), w.size()), 0);
  uint64_t r2ts = tgt.r2ts.load();
  ASSERT_EQ(io(IoType::kRead, 8, 8, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
  EXPECT_EQ(tgt.r2ts.load(), r2ts) << "4 KiB must go in the capsule";

  // 64 KiB: R2T answered with 8 KiB H2CData PDUs; read back in 16 KiB C2HData.
  std::vector<uint8_t> w2(65536), r2(65536);
  fill(w2, 2);
  ASSERT_EQ(io(IoType::kWrite, 100, 128, {{w2.data(), 1000}, {w2.data() + 1000, w2.size() - 1000}}),
            IoStatus::kSuccess);
  EXPECT_GT(tgt.r2ts.load(), r2ts);
  EXPECT_EQ(memcmp(tgt.disk() + 100 * 512, w2.data(), w2.size()), 0);
  ASSERT_EQ(io(IoType::kRead, 100, 128,
               {{r2.data(), 513}, {r2.data() + 513, 30000}, {r2.data() + 30513, 65536 - 30513}}),
            IoStatus::kSuccess);
  EXPECT_EQ(r2, w2);

  // 384 KiB: three commands (MDTS 128 KiB), same request.
  std::vector<uint8_t> w3(393216), r3(393216);
  fill(w3, 3);
  ASSERT_EQ(io(IoType::kWrite, 1000, 768, {{w3.data(), w3.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(tgt.disk() + 1000 * 512, w3.data(), w3.size()), 0);
  ASSERT_EQ(io(IoType::kRead, 1000, 768, {{r3.data(), 4096}, {r3.data() + 4096, r3.size() - 4096}}),
            IoStatus::kSuccess);
  EXPECT_EQ(r3, w3);

  // Unmap (Dataset Management, deallocate) and Write Zeroes.
  ASSERT_EQ(io(IoType::kUnmap, 100, 16), IoStatus::kSuccess);
  std::vector<uint8_t> zero(16 * 512, 0);
  EXPECT_EQ(memcmp(tgt.disk() + 100 * 512, zero.data(), zero.size()), 0);
  EXPECT_NE(memcmp(tgt.disk() + 116 * 512, zero.data(), 512), 0);
  ASSERT_EQ(io(IoType::kWriteZeroes, 1000, 16), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(tgt.disk() + 1000 * 512, zero.data(), zero.size()), 0);
  ASSERT_EQ(io(IoType::kFlush, 0, 0), IoStatus::kSuccess);

  // Beyond the end: refused by the bdev layer, nothing sent.
  ASSERT_EQ(io(IoType::kRead, tgt.blocks - 1, 8, {{rd.data(), rd.size()}}), IoStatus::kOutOfRange);

  // Many in flight at once (more than fits one sendmsg batch).
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<std::vector<uint8_t>> bufs(200, std::vector<uint8_t>(512));
  for (int i = 0; i < 200; ++i) {
    fill(bufs[size_t(i)], uint32_t(i + 10));
    ops.push_back(std::make_unique<Op>());
    start(*ops.back(), IoType::kWrite, 2000 + uint64_t(i), 1, {{bufs[size_t(i)].data(), 512}});
  }
  for (auto& op : ops) EXPECT_EQ(wait(*op), IoStatus::kSuccess);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(memcmp(tgt.disk() + (2000 + i) * 512, bufs[size_t(i)].data(), 512), 0) << i;

  close_dev();
  std::promise<void> p;
  auto f = p.get_future();
  on_main([&] { return detach("nvme0", [&] { p.set_value(); }).ok(); });
  f.wait();
  EXPECT_FALSE(bdev_exists("nvme0n1"));
  EXPECT_TRUE(controllers().empty());
}

TEST_F(NvmeTcpTest, DigestsAndSeparateResponses) {
  FakeTarget tgt;
  tgt.c2h_success = false;
  tgt.maxh2cdata = 4096;
  tgt.c2h_chunk = 3000;
  tgt.start();
  auto o = opts(tgt);
  o.hdgst = o.ddgst = true;
  auto r = attach_sync(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  open_dev("nvme0n1");
  std::vector<uint8_t> w(131072), rd(131072);
  fill(w, 9);
  ASSERT_EQ(io(IoType::kWrite, 0, 256, {{w.data(), w.size()}}), IoStatus::kSuccess);
  ASSERT_EQ(io(IoType::kRead, 0, 256, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
  std::vector<uint8_t> small(512), small_rd(512);
  fill(small, 4);
  ASSERT_EQ(io(IoType::kWrite, 7, 1, {{small.data(), 512}}), IoStatus::kSuccess);
  ASSERT_EQ(io(IoType::kRead, 7, 1, {{small_rd.data(), 512}}), IoStatus::kSuccess);
  EXPECT_EQ(small_rd, small);
  EXPECT_EQ(controllers()[0]["ctrlrs"][0]["hdgst"], true);
}

TEST_F(NvmeTcpTest, ConnectRefusedForUnknownHost) {
  FakeTarget tgt;
  tgt.allowed_host = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";
  tgt.start();
  auto r = attach_sync(opts(tgt));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kPermission);
  EXPECT_NE(r.error().message.find("Connect Invalid Host"), std::string::npos) << r.error().message;
  EXPECT_TRUE(controllers().empty());
  // The allowed host gets in.
  auto o = opts(tgt);
  o.hostnqn = tgt.allowed_host;
  auto ok = attach_sync(o);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST_F(NvmeTcpTest, WrongSubsystemNqn) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);
  o.subnqn = "nqn.2016-06.io.spdk:nosuch";
  auto r = attach_sync(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Connect Invalid Parameters"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("no such subsystem"), std::string::npos) << r.error().message;
  EXPECT_FALSE(bdev_exists("nvme0n1"));
}

TEST_F(NvmeTcpTest, UnreachableTargetAndBadInput) {
  FakeTarget tgt;
  tgt.start();
  std::string port = tgt.port_str();
  tgt.stop();
  auto o = opts(tgt);
  o.trsvcid = port;
  auto r = attach_sync(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kIo);
  EXPECT_NE(r.error().message.find("cannot connect to 127.0.0.1:" + port), std::string::npos)
      << r.error().message;

  o.trtype = "rdma";
  EXPECT_EQ(attach_sync(o).error().code, Errc::kUnsupported);
  o.trtype = "tcp";
  o.trsvcid = "notaport";
  EXPECT_EQ(attach_sync(o).error().code, Errc::kInvalidArgument);
  o.trsvcid = port;
  o.adrfam = "ib";
  EXPECT_EQ(attach_sync(o).error().code, Errc::kInvalidArgument);
  o.adrfam = "ipv4";
  o.ctrlr_loss_timeout_sec = 5;  // reconnect_delay_sec 0: refused as SPDK does
  EXPECT_EQ(attach_sync(o).error().code, Errc::kInvalidArgument);
}

TEST_F(NvmeTcpTest, DuplicateName) {
  FakeTarget tgt;
  tgt.start();
  ASSERT_TRUE(attach_sync(opts(tgt)).ok());
  auto r = attach_sync(opts(tgt));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kExists);
  EXPECT_NE(r.error().message.find("nvme0"), std::string::npos);
  auto other = attach_sync(opts(tgt, "nvme1"));
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(*other, std::vector<std::string>{"nvme1n1"});
  EXPECT_EQ(controllers().size(), 2u);
}

TEST_F(NvmeTcpTest, BadPduFromTargetFailsCleanly) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);  // ctrlr_loss_timeout_sec 0: no reconnect
  ASSERT_TRUE(attach_sync(o).ok());
  open_dev("nvme0n1");
  tgt.bad_pdu_after = 0;  // the next I/O response has a wrong HLEN
  std::vector<uint8_t> buf(4096);
  IoStatus st = io(IoType::kRead, 0, 8, {{buf.data(), buf.size()}});
  EXPECT_NE(st, IoStatus::kSuccess);
  EXPECT_TRUE(eventually([&] { return tgt.got_h2c_term.load(); })) << "no H2CTermReq";
  EXPECT_TRUE(eventually([&] { return !bdev_exists("nvme0n1"); }));
  EXPECT_TRUE(eventually([&] { return controllers().empty(); }));
  EXPECT_TRUE(removed_.load());
}

// Every kind of bad PDU from the target: the command fails (it never
// succeeds), the host answers with H2CTermReq where the spec asks for it
// (not to a C2HTermReq), the connection is closed and, with
// ctrlr_loss_timeout_sec 0, the controller and its bdev go away. No crash.
TEST_F(NvmeTcpTest, BadPdusFromTargetEachFailCleanly) {
  using M = FakeTarget::Misbehave;
  struct Case {
    M m;
    IoType io;
    bool hdgst;
    bool expect_term;
  } cases[] = {
      {M::kUnknownCid, IoType::kRead, false, true},
      {M::kBadHeaderDigest, IoType::kRead, true, true},
      {M::kR2tOutOfRange, IoType::kWrite, false, true},
      {M::kC2HTermReq, IoType::kRead, false, false},
      {M::kBadType, IoType::kRead, false, true},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(i);
    FakeTarget tgt;
    tgt.start();
    auto o = opts(tgt, "bad" + std::to_string(i));
    o.hdgst = c.hdgst;
    ASSERT_TRUE(attach_sync(o).ok());
    removed_ = false;
    open_dev("bad" + std::to_string(i) + "n1");
    std::vector<uint8_t> buf(65536);
    tgt.misbehave = c.m;
    IoStatus st = io(c.io, 0, 128, {{buf.data(), buf.size()}});
    EXPECT_NE(st, IoStatus::kSuccess);
    if (c.expect_term)
      EXPECT_TRUE(eventually([&] { return tgt.got_h2c_term.load(); })) << "no H2CTermReq";
    EXPECT_TRUE(eventually([&] { return removed_.load(); }));
    EXPECT_TRUE(eventually([&] { return controllers().empty(); }));
    ++i;
  }
}

// A retryable status (Transient Transport Error, DNR clear) is retried up to
// bdev_retry_count times; with 0 retries it fails the I/O.
TEST_F(NvmeTcpTest, RetryableStatusRetried) {
  FakeTarget tgt;
  tgt.start();
  ASSERT_TRUE(attach_sync(opts(tgt)).ok());
  open_dev("nvme0n1");
  std::vector<uint8_t> w(4096), rd(4096);
  fill(w, 12);
  ASSERT_EQ(io(IoType::kWrite, 40, 8, {{w.data(), w.size()}}), IoStatus::kSuccess);
  tgt.misbehave = FakeTarget::Misbehave::kTransient;
  ASSERT_EQ(io(IoType::kRead, 40, 8, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
  EXPECT_EQ(tgt.misbehave.load(), FakeTarget::Misbehave::kNone) << "the error was not sent";
  close_dev();

  global_options().bdev_retry_count = 0;
  ASSERT_TRUE(attach_sync(opts(tgt, "noretry")).ok());
  open_dev("noretryn1");
  tgt.misbehave = FakeTarget::Misbehave::kTransient;
  EXPECT_EQ(io(IoType::kRead, 40, 8, {{rd.data(), rd.size()}}), IoStatus::kFailed);
  EXPECT_EQ(controllers().size(), 2u) << "a command error is not a controller loss";
}

// A command the target never answers: after timeout_us the controller is
// reset (action_on_timeout reset) and the command sent again.
TEST_F(NvmeTcpTest, CommandTimeoutResetsController) {
  FakeTarget tgt;
  tgt.start();
  global_options().timeout_us = 300'000;
  global_options().action_on_timeout = "reset";
  auto o = opts(tgt);
  o.ctrlr_loss_timeout_sec = 30;
  o.reconnect_delay_sec = 1;
  ASSERT_TRUE(attach_sync(o).ok());
  open_dev("nvme0n1");
  std::vector<uint8_t> w(4096), rd(4096);
  fill(w, 21);
  ASSERT_EQ(io(IoType::kWrite, 48, 8, {{w.data(), w.size()}}), IoStatus::kSuccess);
  tgt.misbehave = FakeTarget::Misbehave::kNoAnswer;
  ASSERT_EQ(io(IoType::kRead, 48, 8, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
  EXPECT_GE(controllers()[0]["ctrlrs"][0]["reconnects"].get<uint64_t>(), 1u);
}

TEST_F(NvmeTcpTest, ReconnectKeepsQueuedIo) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);
  o.ctrlr_loss_timeout_sec = 30;
  o.reconnect_delay_sec = 1;
  ASSERT_TRUE(attach_sync(o).ok());
  open_dev("nvme0n1");
  std::vector<uint8_t> w(4096), rd(4096);
  fill(w, 5);
  ASSERT_EQ(io(IoType::kWrite, 16, 8, {{w.data(), w.size()}}), IoStatus::kSuccess);
  tgt.stop();  // target gone: every connection dropped, nothing listening
  ASSERT_TRUE(eventually([&] { return controllers()[0]["ctrlrs"][0]["state"] == "resetting"; }));
  Op op;
  start(op, IoType::kRead, 16, 8, {{rd.data(), rd.size()}});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(op.st.load(), -1) << "I/O must wait while reconnecting";
  tgt.start();  // back on the same port
  ASSERT_EQ(wait(op), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
  json c = controllers()[0]["ctrlrs"][0];
  EXPECT_EQ(c["state"], "enabled");
  EXPECT_GE(c["reconnects"].get<uint64_t>(), 1u);
  // A connection dropped by the target (not a stop) is recovered too.
  tgt.drop_connections();
  ASSERT_EQ(io(IoType::kRead, 16, 8, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
  EXPECT_EQ(rd, w);
}

TEST_F(NvmeTcpTest, LossTimeoutFailsIoAndRemovesBdev) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);
  o.ctrlr_loss_timeout_sec = 2;
  o.reconnect_delay_sec = 1;
  ASSERT_TRUE(attach_sync(o).ok());
  open_dev("nvme0n1");
  tgt.stop();
  std::vector<uint8_t> rd(512);
  Op op;
  start(op, IoType::kRead, 0, 1, {{rd.data(), rd.size()}});
  EXPECT_EQ(wait(op), IoStatus::kFailed);
  EXPECT_TRUE(eventually([&] { return !bdev_exists("nvme0n1"); }));
  EXPECT_TRUE(eventually([&] { return controllers().empty(); }));
}

TEST_F(NvmeTcpTest, FastIoFailThenRecover) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);
  o.ctrlr_loss_timeout_sec = -1;
  o.reconnect_delay_sec = 1;
  o.fast_io_fail_timeout_sec = 1;
  ASSERT_TRUE(attach_sync(o).ok());
  open_dev("nvme0n1");
  tgt.stop();
  std::vector<uint8_t> rd(512);
  Op op;
  start(op, IoType::kRead, 0, 1, {{rd.data(), rd.size()}});
  EXPECT_EQ(wait(op), IoStatus::kFailed);
  EXPECT_EQ(controllers().size(), 1u) << "fast I/O fail keeps the controller";
  tgt.start();
  ASSERT_TRUE(eventually([&] { return controllers()[0]["ctrlrs"][0]["state"] == "enabled"; }));
  EXPECT_EQ(io(IoType::kRead, 0, 1, {{rd.data(), rd.size()}}), IoStatus::kSuccess);
}

TEST_F(NvmeTcpTest, KeepAliveAtHalfKato) {
  FakeTarget tgt;
  tgt.start();
  auto o = opts(tgt);
  o.keep_alive_timeout_ms = 200;
  ASSERT_TRUE(attach_sync(o).ok());
  EXPECT_TRUE(eventually([&] { return tgt.keep_alives.load() >= 3; }));
}

}  // namespace
}  // namespace vdpu::bdev::nvme
