// Debug log flags (base/log.h): set, clear, "all", and what VDPU_DEBUGLOG
// emits.
#include "base/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

namespace vdpu::log {
namespace {

class LogFlags : public ::testing::Test {
 protected:
  void TearDown() override { disable_flag("all"); }
};

TEST_F(LogFlags, ClearDisablesWhatSetEnabled) {
  EXPECT_FALSE(flag_enabled("bdev"));
  enable_flag("bdev");
  EXPECT_TRUE(flag_enabled("bdev"));
  EXPECT_FALSE(flag_enabled("rpc"));
  disable_flag("bdev");
  EXPECT_FALSE(flag_enabled("bdev"));
  disable_flag("never_set");  // harmless
  EXPECT_FALSE(flag_enabled("never_set"));
}

TEST_F(LogFlags, AllAndExceptions) {
  enable_flag("all");
  EXPECT_TRUE(flag_enabled("anything"));
  disable_flag("nvme");  // one flag off while "all" is on
  EXPECT_FALSE(flag_enabled("nvme"));
  EXPECT_TRUE(flag_enabled("bdev"));
  enable_flag("nvme");
  EXPECT_TRUE(flag_enabled("nvme"));
  enable_flag("virtio");
  disable_flag("all");  // everything off, named flags included
  EXPECT_FALSE(flag_enabled("virtio"));
  EXPECT_FALSE(flag_enabled("nvme"));
  EXPECT_FALSE(flag_enabled("anything"));
}

TEST_F(LogFlags, DebugLogFollowsTheFlag) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto prev = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("t", sink));
  spdlog::set_level(spdlog::level::debug);
  enable_flag("rpc");
  VDPU_DEBUGLOG("rpc", "first {}", 1);
  disable_flag("rpc");
  VDPU_DEBUGLOG("rpc", "second {}", 2);
  enable_flag("bdev");
  VDPU_DEBUGLOG("bdev", "third {}", 3);
  spdlog::set_default_logger(prev);
  EXPECT_NE(out.str().find("first 1"), std::string::npos);
  EXPECT_EQ(out.str().find("second 2"), std::string::npos);
  EXPECT_NE(out.str().find("third 3"), std::string::npos);
}

}  // namespace
}  // namespace vdpu::log
