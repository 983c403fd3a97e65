#include <gtest/gtest.h>

#include "rpc/dispatch.h"
#include "rpc/framework.h"
#include "test_methods.h"

namespace vdpu::rpc {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_test_methods();
    static bool writers = false;
    if (!writers) {
      writers = true;
      // Registered out of order on purpose: bdev must come first.
      register_config_writer("zz_snap", [] {
        return json::array({{{"method", "t_any"}}});
      });
      register_config_writer("bdev", [] {
        return json::array({{{"method", "t_echo"}, {"params", {{"value", "b"}}}}});
      });
      register_config_writer("empty", [] { return json(nullptr); });
    }
    Dispatcher::get().reset_for_test();
    Dispatcher::get().set_state(kRuntime);
  }
};

TEST_F(ConfigTest, SaveConfigShapeAndOrder) {
  json c = test::dispatch({{"jsonrpc", "2.0"}, {"method", "save_config"}, {"id", 1}})["result"];
  ASSERT_TRUE(c["subsystems"].is_array());
  ASSERT_EQ(c["subsystems"].size(), 3u);
  EXPECT_EQ(c["subsystems"][0]["subsystem"], "bdev");
  EXPECT_EQ(c["subsystems"][0]["config"][0]["method"], "t_echo");
  EXPECT_EQ(c["subsystems"][1]["subsystem"], "empty");
  EXPECT_EQ(c["subsystems"][1]["config"], json::array());
  EXPECT_EQ(c["subsystems"][2]["subsystem"], "zz_snap");
  EXPECT_TRUE(is_spdk_subsystem("bdev"));
  EXPECT_FALSE(is_spdk_subsystem("zz_snap"));
}

TEST_F(ConfigTest, ParseConfigRefusesBadShapes) {
  EXPECT_FALSE(parse_config(json::array()).ok());
  EXPECT_FALSE(parse_config({{"subsystems", 1}}).ok());
  EXPECT_FALSE(parse_config({{"subsystems", {{{"config", json::array()}}}}}).ok());
  EXPECT_FALSE(parse_config({{"subsystems", {{{"subsystem", "a"}, {"config", {{{"params", 1}}}}}}}}).ok());
  auto r = parse_config({{"subsystems", {{{"subsystem", "a"}, {"config", {{{"method", "nope"}}}}}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown method 'nope'"), std::string::npos);
  r = parse_config({{"subsystems", {{{"subsystem", "a"}, {"config", {{{"method", "t_any"}}}}},
                                    {{"subsystem", "b"}, {"config", {{{"method", "t_any"}}}}}}}},
                   {"b"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST_F(ConfigTest, LoadConfigReplaysInOrderAndStopsAtFailure) {
  std::vector<std::string> seen;
  Dispatcher::get().add_observer([&](const std::string& m, const json&, const json&) { seen.push_back(m); });
  json cfg = {{"subsystems",
               {{{"subsystem", "a"},
                 {"config", {{{"method", "t_any"}}, {{"method", "t_fail"}}, {{"method", "t_any"}}}}}}}};
  json r = test::dispatch({{"jsonrpc", "2.0"}, {"method", "load_config"}, {"id", 1}, {"params", cfg}});
  ASSERT_TRUE(r.contains("error"));
  EXPECT_NE(r["error"]["message"].get<std::string>().find("t_fail failed"), std::string::npos);
  // load_config itself + t_any + t_fail; the last t_any never ran.
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "t_any"), 1);
}

TEST_F(ConfigTest, LoadConfigWaitsForAsyncReplies) {
  auto entries = parse_config(
      {{"subsystems", {{{"subsystem", "a"}, {"config", {{{"method", "t_later"}}, {{"method", "t_any"}}}}}}}});
  ASSERT_TRUE(entries.ok());
  bool finished = false;
  Status st;
  load_config(*entries, [&](Status s) {
    finished = true;
    st = s;
  });
  EXPECT_FALSE(finished);
  ASSERT_TRUE(test::later().has_value());
  test::later()->result(true);
  test::later().reset();
  EXPECT_TRUE(finished);
  EXPECT_TRUE(st.ok());
}

TEST_F(ConfigTest, LoadConfigInStartupStateInitializesBetweenPhases) {
  Dispatcher::get().set_state(kStartup);
  std::vector<std::string> order;
  Dispatcher::get().add_observer([&](const std::string& m, const json&, const json& r) {
    if (!r.contains("error")) order.push_back(m);
  });
  auto entries = parse_config(
      {{"subsystems", {{{"subsystem", "a"}, {"config", {{{"method", "t_echo"}}, {{"method", "t_startup"}}}}}}}});
  ASSERT_TRUE(entries.ok());
  Status st = make_error(Errc::kIo, "not called");
  load_config(*entries, [&](Status s) { st = s; });
  EXPECT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "t_startup");  // allowed first, then init, then the runtime one
  EXPECT_EQ(order[1], "t_echo");
  EXPECT_TRUE(Dispatcher::get().initialized());
}

TEST_F(ConfigTest, ReplayOfManyInlineEntriesDoesNotRecurse) {
  std::vector<ConfigEntry> many(20000, ConfigEntry{"a", "t_any", nullptr});
  bool ok = false;
  replay_config(many, [&](Status s, std::vector<ConfigEntry> rest) { ok = s.ok() && rest.empty(); });
  EXPECT_TRUE(ok);
}

TEST_F(ConfigTest, ShutdownHooksRunInReverseOrder) {
  std::vector<int> order;
  DoneFn later_done;
  register_shutdown_hook("one", [&](DoneFn d) {
    order.push_back(1);
    d();
  });
  register_shutdown_hook("two", [&](DoneFn d) {
    order.push_back(2);
    later_done = d;  // finishes later
  });
  bool all = false;
  run_shutdown_hooks([&] { all = true; });
  EXPECT_EQ(order, std::vector<int>({2}));
  EXPECT_FALSE(all);
  later_done();
  EXPECT_EQ(order, std::vector<int>({2, 1}));
  EXPECT_TRUE(all);
}

}  // namespace
}  // namespace vdpu::rpc
