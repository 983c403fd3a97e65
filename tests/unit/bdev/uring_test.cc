// Tests of the uring bdev (bdev/uring) on a temporary file. /var/tmp is used
// because /tmp is often tmpfs, which has no O_DIRECT; the module falls back
// to buffered I/O there, and the tests pass either way.
#include "bdev/uring/uring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>

#include "runtime/reactor.h"

#include "test_util.h"

namespace vdpu::bdev::test {
namespace {

class UringTest : public BdevTest {
 protected:
  void SetUp() override {
    const char* dir = getenv("VDPU_TEST_TMPDIR");
    path_ = std::string(dir ? dir : "/var/tmp") + "/vdpu-uring-test-XXXXXX";
    int fd = mkstemp(path_.data());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kSize), 0);
    close(fd);
  }
  void TearDown() override {
    BdevTest::TearDown();
    unlink(path_.c_str());
  }
  Bdev* make(uint32_t ring = 256, uint32_t bs = 0) {
    auto r = uring::create(
        {.name = "u0", .filename = path_, .block_size = bs, .ring_entries = ring});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : nullptr;
  }
  static constexpr off_t kSize = 4 << 20;
  std::string path_;
};

void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(seed * 31 + i * 13);
}
bool all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

TEST_F(UringTest, CreateDetectsGeometry) {
  Bdev* b = make();
  ASSERT_NE(b, nullptr);
  EXPECT_GE(b->block_size(), 512u);
  EXPECT_EQ(b->num_blocks() * b->block_size(), uint64_t(kSize));
  json i = b->info();
  EXPECT_EQ(i["driver_specific"]["uring"]["filename"], path_);
  json c = b->write_config();
  EXPECT_EQ(c["method"], "bdev_uring_create");
  EXPECT_EQ(c["params"]["filename"], path_);
  EXPECT_EQ(c["params"]["name"], "u0");
}

TEST_F(UringTest, ExplicitBlockSize) {
  Bdev* b = make(256, 4096);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->block_size(), 4096u);
  EXPECT_EQ(b->num_blocks(), uint64_t(kSize) / 4096);
}

TEST_F(UringTest, WriteReadFlushRoundTrip) {
  Bdev* b = make();
  auto ch = b->create_channel();
  ASSERT_NE(ch, nullptr);
  const uint32_t bs = b->block_size();
  Buf w(16 * bs), r(16 * bs);
  fill(w.p, w.size, 1);
  TestIo t;
  t.set(IoType::kWrite, 100, 16, w.p, w.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kFlush, 0, 0);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  // Read back through two iovecs.
  t.set(IoType::kRead, 100, 16, r.p, 4 * bs);
  t.iov[1] = {r.p + 4 * bs, 12 * bs};
  t.io.iovcnt = 2;
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(w.p, r.p, w.size), 0);
  // The data is in the file.
  int fd = open(path_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<unsigned char> f(w.size);
  ASSERT_EQ(pread(fd, f.data(), f.size(), 100 * off_t(bs)), ssize_t(f.size()));
  close(fd);
  EXPECT_EQ(memcmp(f.data(), w.p, w.size), 0);
  json s = b->iostat();
  EXPECT_EQ(s["num_write_ops"], 1);
  EXPECT_EQ(s["num_read_ops"], 1);
  EXPECT_EQ(s["num_flush_ops"], 1);
}

TEST_F(UringTest, UnmapAndWriteZeroesReadBackZeroes) {
  Bdev* b = make(256, 4096);
  auto ch = b->create_channel();
  ASSERT_NE(ch, nullptr);
  Buf w(32 * 4096), r(32 * 4096);
  fill(w.p, w.size, 2);
  TestIo t;
  t.set(IoType::kWrite, 0, 32, w.p, w.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kUnmap, 2, 3);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kWriteZeroes, 10, 4);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kRead, 0, 32, r.p, r.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  for (uint64_t blk = 0; blk < 32; ++blk) {
    bool zero = (blk >= 2 && blk < 5) || (blk >= 10 && blk < 14);
    if (zero) EXPECT_TRUE(all_zero(r.p + blk * 4096, 4096)) << blk;
    else EXPECT_EQ(memcmp(r.p + blk * 4096, w.p + blk * 4096, 4096), 0) << blk;
  }
}

// Submits n writes then n reads of distinct blocks with the ring far smaller
// than n, so most Ios wait on the pending list; every one completes once.
void many_in_flight(UringTest& tst, Bdev* b, int n) {
  auto ch = b->create_channel();
  ASSERT_NE(ch, nullptr);
  const uint32_t bs = b->block_size();
  Buf w(size_t(n) * bs), r(size_t(n) * bs);
  fill(w.p, w.size, 3);
  std::deque<TestIo> ios(n);
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < n; ++i) {
      unsigned char* p = (pass == 0 ? w.p : r.p) + size_t(i) * bs;
      ios[i].set(pass == 0 ? IoType::kWrite : IoType::kRead, uint64_t(i) * 3, 1, p, bs);
      ios[i].completions = 0;
      ch->submit(ios[i].io);
    }
    ASSERT_TRUE(poll_until(*ch, [&] {
      for (auto& t : ios)
        if (!t.done) return false;
      return true;
    }));
    for (auto& t : ios) {
      EXPECT_EQ(t.status, IoStatus::kSuccess);
      EXPECT_EQ(t.completions, 1);
    }
  }
  EXPECT_EQ(memcmp(w.p, r.p, w.size), 0);
  EXPECT_FALSE(ch->poll());  // nothing left
}

TEST_F(UringTest, ManyInFlight) { many_in_flight(*this, make(64), 512); }

TEST_F(UringTest, RingFullKeepsIosPending) { many_in_flight(*this, make(4), 64); }

TEST_F(UringTest, DestroyingChannelCompletesInFlightIos) {
  Bdev* b = make(8);
  auto ch = b->create_channel();
  ASSERT_NE(ch, nullptr);
  const uint32_t bs = b->block_size();
  Buf buf(32 * bs);
  std::deque<TestIo> ios(32);
  for (int i = 0; i < 32; ++i) {
    ios[i].set(IoType::kRead, i, 1, buf.p + size_t(i) * bs, bs);
    ch->submit(ios[i].io);
  }
  ch->poll();  // 8 submitted, 24 pending
  ch.reset();
  for (auto& t : ios) {
    EXPECT_TRUE(t.done);
    EXPECT_EQ(t.completions, 1);
    EXPECT_TRUE(t.status == IoStatus::kSuccess || t.status == IoStatus::kAborted);
  }
}

TEST_F(UringTest, OutOfRangeNeverReachesTheKernel) {
  Bdev* b = make();
  auto ch = b->create_channel();
  Buf buf(4096);
  TestIo t;
  t.set(IoType::kRead, b->num_blocks(), 1, buf.p, b->block_size());
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);
}

TEST_F(UringTest, BadParametersRefused) {
  auto r = uring::create({.name = "x", .filename = path_ + ".missing"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNotFound);

  r = uring::create({.name = "x", .filename = "/var/tmp"});  // a directory
  ASSERT_FALSE(r.ok());

  r = uring::create({.name = "x", .filename = path_, .block_size = 1000});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);

  r = uring::create({.name = "", .filename = path_});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);

  r = uring::create({.name = "x", .filename = path_, .uuid = "bad"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);

  // Smaller than one block.
  std::string small = path_ + ".small";
  int fd = open(small.c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 100), 0);
  close(fd);
  r = uring::create({.name = "x", .filename = small});
  unlink(small.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(Manager::get().list().empty());
}

// In event mode the reactor sleeps in epoll when idle: the ring's eventfd
// must wake it for the completion (otherwise this test hangs until the
// ctest timeout).
TEST_F(UringTest, CompletionWakesSleepingEventModeReactor) {
  Bdev* b = make();
  rt::Reactor r(0, -1, /*event_mode=*/true);
  ASSERT_TRUE(r.start_thread().ok());
  std::atomic<int> result{-1};
  const uint32_t bs = b->block_size();
  Buf buf(bs);
  TestIo t;
  std::unique_ptr<Channel> ch;
  r.send_blocking([&] {
    ch = b->create_channel();
    if (!ch) {
      result = int(IoStatus::kFailed);
      r.request_stop();
      return;
    }
    // Let the reactor fall asleep first, then submit from a timer.
    rt::this_reactor()->add_timer(20000, [&] {
      t.set(IoType::kRead, 1, 1, buf.p, bs);
      ch->submit(t.io);
    });
    rt::this_reactor()->add_poller("uring", [&]() {
      bool busy = ch->poll();
      if (t.done && result < 0) {
        result = int(t.status);
        ch.reset();
        r.request_stop();
      }
      return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
    }, 0, [&] { return !ch || ch->prepare_sleep(); });
  });
  r.join();
  EXPECT_EQ(result.load(), int(IoStatus::kSuccess));
  EXPECT_GT(r.stats().sleeps.load(), 0u);
}

TEST_F(UringTest, DestroyDeletes) {
  make();
  ASSERT_TRUE(uring::destroy("u0").ok());
  EXPECT_EQ(Manager::get().find("u0"), nullptr);
}

}  // namespace
}  // namespace vdpu::bdev::test
