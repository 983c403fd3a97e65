// virtio-blk controller parameters (spec snap-storage §5.3).
#include "service/vblk/vblk_params.h"

#include <gtest/gtest.h>

namespace vdpu::service::vblk {
namespace {

using nlohmann::json;

TEST(VblkParams, Defaults) {
  auto r = parse_create(json{{"pf_id", 0}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->cfg.num_queues, 1);
  EXPECT_EQ(r->cfg.queue_size, 256);
  EXPECT_EQ(r->cfg.size_max, 4096u);
  EXPECT_EQ(r->cfg.seg_max, 1u);
  EXPECT_TRUE(r->bdev.empty());
  EXPECT_FALSE(r->ctrl);
  EXPECT_FALSE(r->suspended);
  EXPECT_EQ(*r->fn.pf_id, 0u);
}

TEST(VblkParams, QueueSizeMustBePowerOfTwoInRange) {
  for (int bad : {0, 257, 100, 3, 255}) {
    auto r = parse_create(json{{"pf_id", 0}, {"queue_size", bad}});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_NE(r.error().message.find("queue_size"), std::string::npos);
  }
  EXPECT_NE(check_queue_size(100).error().message.find("power of two"), std::string::npos);
  for (int good : {1, 2, 64, 128, 256}) EXPECT_TRUE(check_queue_size(good).ok()) << good;
}

TEST(VblkParams, NumQueuesRange) {
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"num_queues", 0}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"num_queues", 65}}).ok());
  EXPECT_TRUE(parse_create(json{{"pf_id", 0}, {"num_queues", 64}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"num_queues", -1}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"num_queues", "2"}}).ok());
}

TEST(VblkParams, SegMaxBoundByQueueSize) {
  EXPECT_TRUE(parse_create(json{{"pf_id", 0}, {"queue_size", 64}, {"seg_max", 62}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"queue_size", 64}, {"seg_max", 63}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"seg_max", 0}}).ok());
  EXPECT_TRUE(parse_create(json{{"pf_id", 0}, {"queue_size", 2}, {"seg_max", 1}}).ok());
}

TEST(VblkParams, FlagsAcceptBoolAndZeroOne) {
  auto r = parse_create(json{{"vuid", "x"}, {"read_only", 1}, {"indirect_desc", true},
                             {"suspended", 0}, {"dbg_admin_q", 1}, {"force_in_order", false}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cfg.read_only);
  EXPECT_TRUE(r->cfg.indirect_desc);
  EXPECT_FALSE(r->suspended);
  EXPECT_TRUE(r->cfg.admin_q);  // §5.6 alias
  EXPECT_FALSE(parse_create(json{{"vuid", "x"}, {"read_only", 2}}).ok());
  EXPECT_FALSE(parse_create(json{{"vuid", "x"}, {"read_only", "yes"}}).ok());
}

TEST(VblkParams, BdevNoneMeansNoBdev) {
  auto r = parse_create(json{{"pf_id", 0}, {"bdev", "none"}, {"dbg_bdev_type", "null"}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->bdev.empty());
}

TEST(VblkParams, VblkIdAndCtrlName) {
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"vblk_id", std::string(21, 'a')}}).ok());
  EXPECT_TRUE(parse_create(json{{"pf_id", 0}, {"vblk_id", std::string(20, 'a')}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"ctrl", "a b"}}).ok());
  EXPECT_FALSE(parse_create(json{{"pf_id", 0}, {"ctrl", ""}}).ok());
  EXPECT_TRUE(parse_create(json{{"pf_id", 0}, {"ctrl", "My_Ctrl-1.2"}}).ok());
}

}  // namespace
}  // namespace vdpu::service::vblk
