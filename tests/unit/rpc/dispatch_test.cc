#include "rpc/dispatch.h"

#include <gtest/gtest.h>

#include "base/log.h"
#include "test_methods.h"

namespace vdpu::rpc {
namespace {

using test::dispatch;

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_test_methods();
    Dispatcher::get().reset_for_test();
    Dispatcher::get().set_state(kRuntime);
  }
  static json req(const std::string& method, json params = nullptr, json id = 1) {
    json r = {{"jsonrpc", "2.0"}, {"method", method}, {"id", id}};
    if (!params.is_null()) r["params"] = params;
    return r;
  }
  static int code(const json& resp) { return resp.at("error").at("code"); }
};

TEST_F(DispatchTest, ResultEchoesIdAndAppliesDefaults) {
  json r = dispatch(req("t_echo", {{"value", "x"}}, "abc"));
  EXPECT_EQ(r["jsonrpc"], "2.0");
  EXPECT_EQ(r["id"], "abc");
  EXPECT_EQ(r["result"]["value"], "x");
  EXPECT_EQ(r["result"]["n"], 1);
}

TEST_F(DispatchTest, MethodNotFound) {
  json r = dispatch(req("nope"));
  EXPECT_EQ(code(r), kMethodNotFound);
  EXPECT_EQ(r["id"], 1);
}

TEST_F(DispatchTest, InvalidRequests) {
  EXPECT_EQ(code(dispatch({{"method", "t_any"}, {"id", 1}})), kInvalidRequest);       // no jsonrpc
  EXPECT_EQ(code(dispatch({{"jsonrpc", "1.0"}, {"method", "t_any"}, {"id", 1}})), kInvalidRequest);
  EXPECT_EQ(code(dispatch({{"jsonrpc", "2.0"}, {"id", 1}})), kInvalidRequest);        // no method
  EXPECT_EQ(code(dispatch({{"jsonrpc", "2.0"}, {"method", 5}, {"id", 1}})), kInvalidRequest);
  EXPECT_EQ(code(dispatch({{"jsonrpc", "2.0"}, {"method", "t_any"}, {"id", {1}}})), kInvalidRequest);
  EXPECT_EQ(code(dispatch({{"jsonrpc", "2.0"}, {"method", "t_any"}, {"id", 1}, {"x", 1}})),
            kInvalidRequest);
  EXPECT_EQ(code(dispatch(json::array({req("t_any")}))), kInvalidRequest);  // batch
  EXPECT_EQ(code(dispatch(json("str"))), kInvalidRequest);
  // A bad id is answered with id null.
  EXPECT_TRUE(dispatch({{"jsonrpc", "2.0"}, {"method", "t_any"}, {"id", {{"a", 1}}}})["id"].is_null());
}

TEST_F(DispatchTest, InvalidParamsNameTheParameter) {
  json r = dispatch(req("t_echo", {{"n", 11}}));
  EXPECT_EQ(code(r), kInvalidParams);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'n'"), std::string::npos);
  r = dispatch(req("t_echo", {{"bogus", 1}}));
  EXPECT_EQ(code(r), kInvalidParams);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'bogus'"), std::string::npos);
  EXPECT_EQ(code(dispatch(req("t_echo", json::array({1})))), kInvalidParams);
  EXPECT_EQ(code(dispatch(req("t_echo", {{"flag", "yes"}}))), kInvalidParams);
}

TEST_F(DispatchTest, BoolZeroOneAndParamAliases) {
  json r = dispatch(req("t_echo", {{"flag", 1}, {"ctrl_id", "C"}}));
  EXPECT_EQ(r["result"]["flag"], true);
  EXPECT_EQ(r["result"]["ctrl"], "C");
}

TEST_F(DispatchTest, MethodAlias) {
  json r = dispatch(req("t_echo_alias", {{"value", 3}}));
  EXPECT_EQ(r["result"]["value"], 3);
  auto names = Dispatcher::get().method_names(false, false);
  EXPECT_EQ(std::count(names.begin(), names.end(), "t_echo_alias"), 0);
  names = Dispatcher::get().method_names(false, true);
  EXPECT_EQ(std::count(names.begin(), names.end(), "t_echo_alias"), 1);
}

TEST_F(DispatchTest, NoSchemaMeansNoParams) {
  EXPECT_TRUE(dispatch(req("t_noschema"))["result"].get<bool>());
  EXPECT_EQ(code(dispatch(req("t_noschema", {{"x", 1}}))), kInvalidParams);
  auto missing = Dispatcher::get().methods_without_schema();
  EXPECT_EQ(std::count(missing.begin(), missing.end(), "t_noschema"), 1);
}

TEST_F(DispatchTest, StartupStateAllowsOnlyStartupMethods) {
  Dispatcher::get().set_state(kStartup);
  json r = dispatch(req("t_echo"));
  EXPECT_EQ(code(r), -1);
  EXPECT_EQ(r["error"]["message"], kNeedInitMsg);
  EXPECT_EQ(dispatch(req("t_startup"))["result"], "startup");
  EXPECT_EQ(dispatch(req("t_any"))["result"], "any");
  EXPECT_EQ(code(dispatch(req("spdk_get_version"))), -1);
}

TEST_F(DispatchTest, RuntimeStateRefusesStartupOnlyMethods) {
  json r = dispatch(req("t_startup"));
  EXPECT_EQ(code(r), -1);
  EXPECT_EQ(r["error"]["message"], kStartupOnlyMsg);
  EXPECT_EQ(code(dispatch(req("framework_start_init"))), -1);
}

TEST_F(DispatchTest, FrameworkStartInitSwitchesStateAndReleasesWaiters) {
  Dispatcher::get().set_state(kStartup);
  json waited;
  Dispatcher::get().handle(req("framework_wait_init", nullptr, 7), [&](json r) { waited = r; });
  EXPECT_TRUE(waited.is_null());
  auto current = dispatch(req("rpc_get_methods", {{"current", true}}))["result"];
  EXPECT_EQ(std::count(current.begin(), current.end(), "t_echo"), 0);
  EXPECT_EQ(std::count(current.begin(), current.end(), "framework_start_init"), 1);
  EXPECT_EQ(dispatch(req("framework_start_init"))["result"], true);
  EXPECT_EQ(Dispatcher::get().state(), kRuntime);
  EXPECT_EQ(waited["result"], true);
  EXPECT_EQ(waited["id"], 7);
  EXPECT_EQ(dispatch(req("framework_wait_init"))["result"], true);
  current = dispatch(req("rpc_get_methods", {{"current", 1}}))["result"];
  EXPECT_EQ(std::count(current.begin(), current.end(), "t_echo"), 1);
}

TEST_F(DispatchTest, InitHookFailureIsReported) {
  Dispatcher::get().set_state(kStartup);
  Dispatcher::get().set_init_hook([](std::function<void(Status)> done) {
    done(make_error(Errc::kIo, "disk on fire"));
  });
  json r = dispatch(req("framework_start_init"));
  EXPECT_EQ(code(r), -5);
  EXPECT_FALSE(Dispatcher::get().initialized());
}

TEST_F(DispatchTest, NotificationGetsNoResponse) {
  json n = {{"jsonrpc", "2.0"}, {"method", "t_any"}};
  bool called = false;
  Dispatcher::get().handle(n, [&](json) { called = true; });
  EXPECT_FALSE(called);
  // Even an error to a notification is not answered.
  Dispatcher::get().handle({{"jsonrpc", "2.0"}, {"method", "nope"}}, [&](json) { called = true; });
  EXPECT_FALSE(called);
}

TEST_F(DispatchTest, ResponderLaterExactlyOnce) {
  json out;
  int calls = 0;
  Dispatcher::get().handle(req("t_later", nullptr, 5), [&](json r) {
    out = r;
    ++calls;
  });
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(test::later().has_value());
  test::later()->result("late");
  test::later()->result("again");  // ignored
  test::later().reset();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(out["result"], "late");
  EXPECT_EQ(out["id"], 5);
}

TEST_F(DispatchTest, DroppedResponderAnswersInternalError) {
  json r = dispatch(req("t_drop"));
  EXPECT_EQ(code(r), kInternalError);
  EXPECT_EQ(r["error"]["message"], "no response");
}

TEST_F(DispatchTest, HandlerExceptionBecomesInternalError) {
  json r = dispatch(req("t_throw"));
  EXPECT_EQ(code(r), kInternalError);
  EXPECT_EQ(r["error"]["message"], "boom");
}

TEST_F(DispatchTest, SecondReplyIgnored) {
  int calls = 0;
  json out;
  Dispatcher::get().handle(req("t_twice"), [&](json r) {
    ++calls;
    out = r;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(out["result"], 1);
}

TEST_F(DispatchTest, ErrcMapsToSpdkCodes) {
  EXPECT_EQ(code(dispatch(req("t_fail", {{"code", 1}}))), -17);
  EXPECT_EQ(error_code(Errc::kInvalidArgument), kInvalidParams);
  EXPECT_EQ(error_code(Errc::kNotFound), -19);
  EXPECT_EQ(error_code(Errc::kBusy), -16);
  EXPECT_EQ(error_code(Errc::kState), -1);
  EXPECT_EQ(error_code(Errc::kUnsupported), -95);
}

TEST_F(DispatchTest, ObserversSeeEveryAnswer) {
  std::vector<std::string> seen;
  Dispatcher::get().add_observer([&](const std::string& m, const json&, const json& r) {
    seen.push_back(m + (r.contains("error") ? ":err" : ":ok"));
  });
  dispatch(req("t_any"));
  dispatch(req("t_echo", {{"n", 0}}));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "t_any:ok");
  EXPECT_EQ(seen[1], "t_echo:err");
}

TEST_F(DispatchTest, VersionAndLogMethods) {
  json v = dispatch(req("spdk_get_version"))["result"];
  EXPECT_EQ(v["version"], "vdpu v0.1.0");
  EXPECT_EQ(v["fields"]["major"], 0);
  EXPECT_EQ(v["fields"]["minor"], 1);
  EXPECT_EQ(dispatch(req("snap_log_level_set", {{"level", 4}}))["result"], true);
  EXPECT_EQ(code(dispatch(req("snap_log_level_set", {{"level", 6}}))), kInvalidParams);
  EXPECT_EQ(code(dispatch(req("snap_log_level_set"))), kInvalidParams);
  EXPECT_EQ(dispatch(req("log_set_level", {{"level", "debug"}}))["result"], true);
  EXPECT_EQ(dispatch(req("log_get_level"))["result"], "DEBUG");
  EXPECT_EQ(code(dispatch(req("log_set_level", {{"level", "LOUD"}}))), kInvalidParams);
  EXPECT_EQ(dispatch(req("log_set_flag", {{"flag", "rpc"}}))["result"], true);
  EXPECT_EQ(dispatch(req("log_get_flags"))["result"]["rpc"], true);
  EXPECT_TRUE(log::flag_enabled("rpc"));
  EXPECT_EQ(dispatch(req("log_clear_flag", {{"flag", "rpc"}}))["result"], true);
  EXPECT_EQ(dispatch(req("log_get_flags"))["result"]["rpc"], false);
  EXPECT_FALSE(log::flag_enabled("rpc"));  // really off, not only reported off
  // "all" on, one flag cleared: log_get_flags tells the truth for each.
  dispatch(req("log_set_flag", {{"flag", "bdev"}}));
  dispatch(req("log_set_flag", {{"flag", "all"}}));
  dispatch(req("log_clear_flag", {{"flag", "bdev"}}));
  json f = dispatch(req("log_get_flags"))["result"];
  EXPECT_EQ(f["all"], true);
  EXPECT_EQ(f["rpc"], true);
  EXPECT_EQ(f["bdev"], false);
  dispatch(req("log_clear_flag", {{"flag", "all"}}));
  f = dispatch(req("log_get_flags"))["result"];
  EXPECT_EQ(f["all"], false);
  EXPECT_EQ(f["rpc"], false);
  EXPECT_FALSE(log::flag_enabled("rpc"));
  dispatch(req("snap_log_level_set", {{"level", 3}}));
  EXPECT_EQ(code(dispatch(req("spdk_kill_instance", {{"sig_name", "SIGFOO"}}))), kInvalidParams);
}

TEST_F(DispatchTest, SnapGlobalParamListFormat) {
  setenv("SNAP_POLL_CYCLE_SIZE", "32", 1);
  unsetenv("SNAP_ENABLE_POLL_SKIP");
  json l = dispatch(req("snap_global_param_list"))["result"];
  unsetenv("SNAP_POLL_CYCLE_SIZE");
  ASSERT_TRUE(l.is_array());
  EXPECT_EQ(l[0], "SNAP_ENABLE_POLL_SKIP : not set : 0 ");
  EXPECT_EQ(l[1], "SNAP_POLL_CYCLE_SIZE : set : 32 ");
  std::string all = l.dump();
  for (const char* n : {"SNAP_RPC_LOG_ENABLE", "SNAP_MEMPOOL_SIZE_MB", "SNAP_MEMPOOL_4K_BUFFS_PER_CORE",
                        "SNAP_RDMA_ZCOPY_ENABLE", "SNAP_TCP_XLIO_ENABLE", "SNAP_TCP_XLIO_TX_ZCOPY",
                        "MLX5_SHUT_UP_BF", "SNAP_SHARED_RX_CQ", "SNAP_SHARED_TX_CQ",
                        "NVME_BDEV_RESET_ENABLE", "VBLK_RECOVERY_SHM", "SNAP_EMULATION_MANAGER",
                        "VIRTIO_EMU_PROVIDER", "dpa_nvme_core_mask", "dpa_helper_core_mask",
                        "SNAP_RPC_INIT_CONF", "SPDK_RPC_INIT_CONF", "SNAP_RPC_INIT_CONF_JSON",
                        "SPDK_RPC_INIT_CONF_JSON", "SPDK_XLIO_PATH", "XLIO_RX_BUFS", "APP_ARGS"})
    EXPECT_NE(all.find(std::string("\"") + n + " : "), std::string::npos) << n;
}

}  // namespace
}  // namespace vdpu::rpc
