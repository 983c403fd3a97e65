// Tests of the bdev core (bdev.h): Manager registry, open/claim/remove/hot
// remove, Channel range and iovec checks, I/O statistics.
#include "bdev/bdev.h"

#include "bdev/malloc/malloc.h"
#include "bdev/null/null.h"
#include "test_util.h"

namespace vdpu::bdev::test {
namespace {

Bdev* make_null(const std::string& name, uint64_t nb = 1024, uint32_t bs = 512) {
  auto r = null::create({.name = name, .num_blocks = nb, .block_size = bs});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

using ManagerTest = BdevTest;

TEST_F(ManagerTest, AddFindListByNameAndUuid) {
  Bdev* b = make_null("n0");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Manager::get().find("n0"), b);
  EXPECT_EQ(Manager::get().find(b->uuid()), b);  // SPDK finds by UUID too
  EXPECT_EQ(Manager::get().find("nope"), nullptr);
  EXPECT_EQ(Manager::get().list().size(), 1u);
  EXPECT_TRUE(valid_uuid(b->uuid()));
}

TEST_F(ManagerTest, DuplicateNameAndUuidRefused) {
  Bdev* b = make_null("n0");
  auto r = null::create({.name = "n0", .num_blocks = 8, .block_size = 512});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kExists);
  auto r2 = null::create({.name = "n1", .num_blocks = 8, .block_size = 512, .uuid = b->uuid()});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, Errc::kExists);
  EXPECT_EQ(Manager::get().list().size(), 1u);
}

TEST_F(ManagerTest, EmptyNameRefusedByAdd) {
  auto r = null::create({.name = "", .num_blocks = 8, .block_size = 512});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

TEST_F(ManagerTest, OpenUnknownIsNotFound) {
  auto d = Manager::get().open("missing", true);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kNotFound);
}

TEST_F(ManagerTest, ClaimIsExclusiveAndReleasedOnClose) {
  make_null("n0");
  auto d1 = Manager::get().open("n0", true);
  auto d2 = Manager::get().open("n0", true);
  ASSERT_TRUE(d1.ok() && d2.ok());
  EXPECT_TRUE((*d1)->claim("nvme_ns A").ok());
  auto s = (*d2)->claim("nvme_ns B");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kBusy);
  Bdev* b = Manager::get().find("n0");
  EXPECT_EQ(b->claimed_by(), "nvme_ns A");
  EXPECT_TRUE(b->info()["claimed"].get<bool>());
  EXPECT_EQ(b->info()["claimed_by"], "nvme_ns A");
  (*d1)->close();
  EXPECT_EQ(b->claimed_by(), "");
  EXPECT_TRUE((*d2)->claim("nvme_ns B").ok());
  (*d2)->close();
}

TEST_F(ManagerTest, RemoveClaimedIsBusy) {
  make_null("n0");
  auto d = Manager::get().open("n0", true, [](Desc& d) { d.close(); });
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->claim("vblk").ok());
  bool done = false;
  auto s = Manager::get().remove("n0", [&] { done = true; });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kBusy);
  EXPECT_FALSE(done);
  EXPECT_NE(Manager::get().find("n0"), nullptr);
  // Module delete helper: same answer.
  auto s2 = null::destroy("n0");
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.error().code, Errc::kBusy);
  (*d)->close();
}

TEST_F(ManagerTest, RemoveUnknownOrOtherModuleIsNoSuchDevice) {
  make_null("n0");
  auto s = Manager::get().remove("missing");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kNotFound);
  auto s2 = malloc::destroy("n0");  // a null bdev is not malloc's to delete
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.error().code, Errc::kNotFound);
  EXPECT_EQ(s2.error().message, "No such device");
  EXPECT_NE(Manager::get().find("n0"), nullptr);
}

TEST_F(ManagerTest, RemoveWithoutHandlesCompletesAtOnce) {
  make_null("n0");
  bool done = false;
  ASSERT_TRUE(null::destroy("n0", [&] { done = true; }).ok());
  EXPECT_TRUE(done);
  EXPECT_EQ(Manager::get().find("n0"), nullptr);
}

TEST_F(ManagerTest, RemoveWaitsForOpenHandlesToClose) {
  make_null("n0");
  Desc* held = nullptr;
  int notified = 0;
  auto d = Manager::get().open("n0", false, [&](Desc& d) {
    ++notified;
    held = &d;  // the owner closes later, after draining its I/O
  });
  ASSERT_TRUE(d.ok());
  bool done = false;
  ASSERT_TRUE(Manager::get().remove("n0", [&] { done = true; }).ok());
  EXPECT_EQ(notified, 1);
  EXPECT_FALSE(done);
  EXPECT_NE(Manager::get().find("n0"), nullptr);
  // No new handles while removal is pending.
  auto d2 = Manager::get().open("n0", false);
  ASSERT_FALSE(d2.ok());
  EXPECT_EQ(d2.error().code, Errc::kState);
  // A second remove request joins the first and does not notify again.
  bool done2 = false;
  ASSERT_TRUE(Manager::get().remove("n0", [&] { done2 = true; }).ok());
  EXPECT_EQ(notified, 1);
  held->close();
  EXPECT_TRUE(done);
  EXPECT_TRUE(done2);
  EXPECT_EQ(Manager::get().find("n0"), nullptr);
}

TEST_F(ManagerTest, HotRemoveNotifiesClaimedHandles) {
  make_null("n0");
  int notified = 0;
  auto d = Manager::get().open("n0", true, [&](Desc& d) {
    ++notified;
    d.close();
  });
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->claim("nvme_ns").ok());
  bool done = false;
  Manager::get().hot_remove("n0", [&] { done = true; });
  EXPECT_EQ(notified, 1);
  EXPECT_TRUE(done);
  EXPECT_EQ(Manager::get().find("n0"), nullptr);
}

TEST_F(ManagerTest, HotRemoveUnknownStillCallsDone) {
  bool done = false;
  Manager::get().hot_remove("missing", [&] { done = true; });
  EXPECT_TRUE(done);
}

TEST_F(ManagerTest, WriteConfigReplaysCreateRpcs) {
  make_null("n0", 2048, 4096);
  auto m = malloc::create({.name = "m0", .num_blocks = 16, .block_size = 512});
  ASSERT_TRUE(m.ok());
  json c = Manager::get().write_config();
  ASSERT_EQ(c.size(), 2u);
  // std::map order: "m0" < "n0".
  EXPECT_EQ(c[0]["method"], "bdev_malloc_create");
  EXPECT_EQ(c[0]["params"]["num_blocks"], 16);
  EXPECT_EQ(c[0]["params"]["uuid"], (*m)->uuid());
  EXPECT_EQ(c[1]["method"], "bdev_null_create");
  EXPECT_EQ(c[1]["params"]["block_size"], 4096);
  EXPECT_EQ(c[1]["params"]["num_blocks"], 2048);
}

TEST_F(ManagerTest, InfoHasSpdkFields) {
  Bdev* b = make_null("n0", 100, 512);
  json j = b->info();
  for (const char* k : {"name", "aliases", "product_name", "block_size", "num_blocks", "uuid",
                        "assigned_rate_limits", "claimed", "zoned", "supported_io_types",
                        "driver_specific"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["product_name"], "Null disk");
  EXPECT_EQ(j["num_blocks"], 100);
  EXPECT_FALSE(j["claimed"].get<bool>());
  EXPECT_TRUE(j["supported_io_types"]["write_zeroes"].get<bool>());
  EXPECT_FALSE(j["supported_io_types"]["compare"].get<bool>());
}

using ChannelTest = BdevTest;

TEST_F(ChannelTest, RangeChecks) {
  Bdev* b = make_null("n0", 100, 512);
  auto ch = b->create_channel();
  Buf buf(512 * 4);
  TestIo t;
  t.set(IoType::kRead, 99, 1, buf.p, 512);
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);  // last block
  t.set(IoType::kRead, 100, 1, buf.p, 512);
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);  // one past the end
  t.set(IoType::kWrite, 98, 3, buf.p, 512 * 3);
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);  // straddles the end
  t.set(IoType::kRead, UINT64_MAX, 2, buf.p, 1024);
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);  // offset + num overflows
  t.set(IoType::kUnmap, 0, 101);
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);  // more blocks than the bdev
  t.set(IoType::kWriteZeroes, 2, UINT64_MAX);
  EXPECT_EQ(run(*ch, t), IoStatus::kOutOfRange);
  t.set(IoType::kFlush, 0, 0);
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);  // flush has no range
  EXPECT_EQ(t.completions, 7);
}

TEST_F(ChannelTest, IovMustMatchLength) {
  Bdev* b = make_null("n0", 100, 512);
  auto ch = b->create_channel();
  Buf buf(4096);
  TestIo t;
  t.set(IoType::kRead, 0, 2, buf.p, 512);  // 512 bytes for 1024
  EXPECT_EQ(run(*ch, t), IoStatus::kFailed);
  t.set(IoType::kWrite, 0, 1, buf.p, 4096);  // too long
  EXPECT_EQ(run(*ch, t), IoStatus::kFailed);
  t.set(IoType::kRead, 0, 1);  // no iovecs
  EXPECT_EQ(run(*ch, t), IoStatus::kFailed);
  // Two iovecs adding up: fine.
  t.set(IoType::kRead, 0, 2, buf.p, 512);
  t.iov[1] = {buf.p + 512, 512};
  t.io.iovcnt = 2;
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);
}

TEST_F(ChannelTest, UnsupportedTypeCompletesUnsupported) {
  Bdev* b = make_null("n0", 100, 512);
  auto ch = b->create_channel();
  Buf buf(512);
  TestIo t;
  t.set(IoType::kCompare, 0, 1, buf.p, 512);
  EXPECT_EQ(run(*ch, t), IoStatus::kUnsupported);
  t.set(IoType::kCount, 0, 1, buf.p, 512);  // not a type at all
  EXPECT_EQ(run(*ch, t), IoStatus::kUnsupported);
}

TEST_F(ChannelTest, IostatCountsPerTypeAndSurvivesChannelDestruction) {
  Bdev* b = make_null("n0", 100, 512);
  Buf buf(4096);
  {
    auto ch = b->create_channel();
    TestIo t;
    for (int i = 0; i < 3; ++i) {
      t.set(IoType::kRead, 0, 2, buf.p, 1024);
      ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
    }
    t.set(IoType::kWrite, 4, 8, buf.p, 4096);
    ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
    t.set(IoType::kUnmap, 0, 10);
    ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
    t.set(IoType::kFlush, 0, 0);
    ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
    t.set(IoType::kWriteZeroes, 0, 1);
    ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
    t.set(IoType::kRead, 200, 1, buf.p, 512);
    ASSERT_EQ(run(*ch, t), IoStatus::kOutOfRange);  // an error
    EXPECT_EQ(ch->stats().num_read_ops.load(), 3u);
  }
  auto ch2 = b->create_channel();  // a second channel adds to the sums
  TestIo t;
  t.set(IoType::kRead, 0, 1, buf.p, 512);
  ASSERT_EQ(run(*ch2, t), IoStatus::kSuccess);
  json s = b->iostat();
  EXPECT_EQ(s["name"], "n0");
  EXPECT_EQ(s["num_read_ops"], 4);
  EXPECT_EQ(s["bytes_read"], 3 * 1024 + 512);
  EXPECT_EQ(s["num_write_ops"], 1);
  EXPECT_EQ(s["bytes_written"], 4096);
  EXPECT_EQ(s["num_unmap_ops"], 1);
  EXPECT_EQ(s["bytes_unmapped"], 5120);
  EXPECT_EQ(s["num_flush_ops"], 1);
  EXPECT_EQ(s["num_write_zeroes_ops"], 1);
  EXPECT_EQ(s["io_error"], 1);
  EXPECT_GE(s["max_read_latency_ticks"].get<uint64_t>(), s["min_read_latency_ticks"].get<uint64_t>());
}

TEST(Uuid, GenerateAndValidate) {
  std::string u = generate_uuid();
  EXPECT_TRUE(valid_uuid(u));
  EXPECT_EQ(u[14], '4');  // version 4
  EXPECT_NE(generate_uuid(), u);
  EXPECT_FALSE(valid_uuid(""));
  EXPECT_FALSE(valid_uuid("913fc008-79a7-447f-b2c4-c73543638c3"));    // short
  EXPECT_FALSE(valid_uuid("913fc008x79a7-447f-b2c4-c73543638c31"));   // bad dash
  EXPECT_FALSE(valid_uuid("913fc008-79a7-447f-b2c4-c73543638c3g"));   // not hex
  EXPECT_TRUE(valid_uuid("913fc008-79a7-447f-b2c4-c73543638c31"));
}

TEST(Ticks, RateIsPlausibleAndMonotonic) {
  uint64_t a = ticks(), b = ticks();
  EXPECT_LE(a, b);
  EXPECT_GT(tick_rate(), 1000000u);  // at least 1 MHz
}

}  // namespace
}  // namespace vdpu::bdev::test
