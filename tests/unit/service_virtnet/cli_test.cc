// The virtnet CLI's argv -> params (virtio-net spec §3, §4) and its
// agreement with src/rpc/schema/virtnet.json (every key the CLI sends is a
// parameter of the method's schema).
#include <gtest/gtest.h>

#include "apps/virtnet/cli.h"
#include "rpc/schema.h"

namespace vdpu::virtnet_cli {
namespace {

Result<Request> B(const std::string& cmd, std::vector<std::string> a) { return build_request(cmd, a); }

TEST(VirtnetCli, HotplugSpecExamples) {
  auto r = B("hotplug", {"-i", "mlx5_0", "-f", "0x0", "-m", "0C:C4:7A:FF:22:93", "-t", "1500", "-n", "3", "-s", "1024"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->method, "hotplug");
  EXPECT_EQ(echo(r->params),
            "{'ib_device': 'mlx5_0', 'features': '0x0', 'mac': '0C:C4:7A:FF:22:93', 'mtu': '0x5dc', "
            "'num_queues': '0x3', 'max_queue_size': '0x400'}");
  auto q = B("hotplug", {"-i", "mlx5_0", "-m", "0C:C4:7A:FF:22:93", "-t", "1500", "-qp", "1", "-s", "1024"});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->params["max_queue_pairs"], 1);
  EXPECT_EQ(B("hotplug", {"-i", "a", "-m", "x", "-t", "1", "-n", "3", "-s", "4", "-f", "ff"})->params["features"], 0xff);
}

TEST(VirtnetCli, HotplugUsageErrors) {
  EXPECT_FALSE(B("hotplug", {"-i", "mlx5_0", "-m", "x", "-t", "1500", "-s", "1024"}));           // no -n / -qp
  EXPECT_FALSE(B("hotplug", {"-i", "mlx5_0", "-m", "x", "-t", "1500", "-n", "3", "-qp", "1", "-s", "4"}));
  EXPECT_FALSE(B("hotplug", {"-m", "x", "-t", "1500", "-n", "3", "-s", "4"}));                     // no -i
  EXPECT_FALSE(B("hotplug", {"-i", "a", "-m", "x", "-t", "abc", "-n", "3", "-s", "4"}));           // bad number
  EXPECT_FALSE(B("hotplug", {"-i", "a", "-m", "x", "-t", "1", "-n", "3", "-s", "4", "--bogus"}));
  EXPECT_FALSE(B("hotplug", {"-i"}));
  EXPECT_FALSE(B("nosuch", {}));
}

TEST(VirtnetCli, ModifyEcho) {
  auto r = B("modify", {"-p", "0", "device", "-l", "0"});
  ASSERT_TRUE(r) << r.error().message;
  // §4.6 example echo.
  EXPECT_EQ(echo(r->params), "{'pf': '0x0', 'all': '0x0', 'subcmd': '0x0', 'link': '0x0'}");
  auto d = B("modify", {"-p", "0", "-v", "1", "device", "-qp", "2", "-dim", "enable", "-pkt_cnt", "disable",
                        "-netdim", "enable", "-f", "0x8900010300e7982f"});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->params["dim_config"], 1);
  EXPECT_EQ(d->params["net_dim_config"], 1);
  EXPECT_EQ(d->params["packet_counter"], 0);
  EXPECT_EQ(d->params["features"], 0x8900010300e7982full);
  auto q = B("modify", {"-p", "0", "queue", "-e", "event", "-n", "10", "-c", "30"});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->params["subcmd"], 1);
  EXPECT_FALSE(B("modify", {"-p", "0", "queue", "-e", "never", "-n", "10", "-c", "30"}));
  EXPECT_FALSE(B("modify", {"-p", "0", "queue", "-e", "event"}));
  EXPECT_FALSE(B("modify", {"-p", "0", "device", "-qp", "2", "-n", "6"}));  // §15
  EXPECT_FALSE(B("modify", {"-p", "0", "device"}));
  EXPECT_FALSE(B("modify", {"device", "-l", "0"}));                      // no selector
  EXPECT_FALSE(B("modify", {"-p", "0", "-u", "X", "device", "-l", "0"}));  // exclusive
  EXPECT_FALSE(B("modify", {"-v", "0", "device", "-l", "0"}));           // -v needs -p
  EXPECT_FALSE(B("modify", {"-p", "0", "devices", "-l", "0"}));
  EXPECT_FALSE(B("modify", {"-p", "0", "device", "-dc", "maybe"}));
}

TEST(VirtnetCli, QueryEchoKeys) {
  auto r = B("query", {"-p", "0", "-b"});
  ASSERT_TRUE(r);
  EXPECT_EQ(echo(r->params), "{'all': '0x0', 'pf': '0x0', 'dbg_stats': '0x0', 'brief': '0x1', "
                             "'latency_stats': '0x0', 'stats_clear': '0x0'}");
  EXPECT_TRUE(B("query", {"-a"}));
  EXPECT_TRUE(B("query", {"-u", "VUID", "-q", "2", "--dbg_stats"}));
  EXPECT_FALSE(B("query", {}));
  EXPECT_FALSE(B("query", {"-a", "-p", "0"}));
}

TEST(VirtnetCli, OtherCommands) {
  EXPECT_EQ(echo(B("unplug", {"-p", "1"})->params), "{'id': '0x1'}");
  EXPECT_FALSE(B("unplug", {}));
  EXPECT_FALSE(B("unplug", {"-p", "1", "-u", "x"}));
  EXPECT_EQ(echo(B("log", {"-l", "info"})->params), "{'level': 'info'}");
  EXPECT_FALSE(B("log", {"-l", "warn"}));
  EXPECT_FALSE(B("log", {}));
  EXPECT_EQ(echo(B("update", {"-s"})->params), "{'start': '0x1'}");
  EXPECT_EQ(echo(B("update", {"-t"})->params), "{'status': '0x1'}");
  EXPECT_FALSE(B("update", {}));
  EXPECT_FALSE(B("update", {"-s", "-t"}));
  EXPECT_TRUE(B("health", {"-p", "0", "show"}));
  EXPECT_FALSE(B("health", {"-p", "0"}));
  EXPECT_TRUE(B("stats", {"-p", "0", "-v", "1", "-q", "0"}));
  EXPECT_FALSE(B("stats", {"-a"}));
  EXPECT_EQ(B("validate", {"-f", "/x"})->params["file"], "/x");
  EXPECT_EQ(B("validate", {"-p", "/x"})->params["file"], "/x");
  EXPECT_FALSE(B("validate", {}));
  EXPECT_TRUE(B("list", {}));
  EXPECT_FALSE(B("list", {"-x"}));
  EXPECT_TRUE(B("list", {"-h"})->help);
}

TEST(VirtnetCli, EveryKeyIsInTheSchema) {
  auto& reg = rpc::schema::Registry::get();
  ASSERT_TRUE(reg.errors().empty());
  auto check = [&](const std::string& method, const std::vector<Opt>& opts) {
    const auto* m = reg.find(method);
    ASSERT_NE(m, nullptr) << method;
    for (auto& o : opts)
      EXPECT_NE(m->find_param(o.key), nullptr) << method << " " << o.key;
  };
  for (auto& c : commands())
    if (!c.method.empty()) check(c.method, c.opts);
  check("modify", modify_device_opts());
  check("modify", modify_queue_opts());
  for (const char* k : {"subcmd", "all", "dbg_stats", "brief", "latency_stats", "stats_clear"})
    EXPECT_TRUE(reg.find("modify")->find_param("subcmd") && reg.find("query")->find_param("brief")) << k;
}

}  // namespace
}  // namespace vdpu::virtnet_cli
