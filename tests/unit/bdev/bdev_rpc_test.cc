// Tests of the bdev JSON-RPC glue (bdev_rpc.cc, malloc/null/uring *_rpc.cc)
// through the dispatcher, so that src/rpc/schema/bdev.json is exercised too.
#include <fcntl.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"
#include "test_util.h"

namespace vdpu::bdev::test {
namespace {

class BdevRpcTest : public BdevTest {
 protected:
  void SetUp() override { rpc::Dispatcher::get().set_state(rpc::kRuntime); }
  json call(const std::string& method, const json& params) {
    json out;
    bool got = false;
    rpc::Dispatcher::get().call(method, params, [&](json r) {
      out = std::move(r);
      got = true;
    });
    EXPECT_TRUE(got) << method << ": no synchronous reply";
    return out;
  }
  static int code(const json& r) { return r.contains("error") ? r["error"]["code"].get<int>() : 0; }
};

TEST_F(BdevRpcTest, MallocCreateGetDelete) {
  json r = call("bdev_malloc_create", {{"num_blocks", 128}, {"block_size", 512}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  std::string name = r["result"];
  EXPECT_EQ(name.rfind("Malloc", 0), 0u);
  r = call("bdev_get_bdevs", {{"name", name}});
  ASSERT_TRUE(r["result"].is_array()) << r.dump();
  ASSERT_EQ(r["result"].size(), 1u);
  EXPECT_EQ(r["result"][0]["product_name"], "Malloc disk");
  EXPECT_EQ(r["result"][0]["num_blocks"], 128);
  r = call("bdev_get_bdevs", json::object());
  EXPECT_EQ(r["result"].size(), 1u);
  r = call("bdev_malloc_delete", {{"name", name}});
  EXPECT_EQ(r["result"], true) << r.dump();
  EXPECT_EQ(Manager::get().find(name), nullptr);
}

TEST_F(BdevRpcTest, MallocCreateWithNameUuidAndBoundary) {
  const std::string u = "dd5b8f6e-b67a-4506-b606-7fff5a859920";
  json r = call("bdev_malloc_create", {{"num_blocks", 64}, {"block_size", 4096}, {"name", "Malloc9"},
                                       {"uuid", u}, {"optimal_io_boundary", 8}});
  ASSERT_EQ(r["result"], "Malloc9") << r.dump();
  EXPECT_EQ(Manager::get().find("Malloc9")->uuid(), u);
}

TEST_F(BdevRpcTest, CreateRefusesBadParams) {
  // Schema: block_size below 512, missing num_blocks, unknown parameter.
  EXPECT_EQ(code(call("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 100}})), -32602);
  EXPECT_EQ(code(call("bdev_malloc_create", {{"block_size", 512}})), -32602);
  EXPECT_EQ(code(call("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 512}, {"md_sz", 1}})),
            -32602);
  EXPECT_EQ(code(call("bdev_null_create", {{"num_blocks", 8}, {"block_size", 512}})), -32602);
  // Module checks: not a multiple of 512, bad UUID, duplicate name.
  EXPECT_NE(code(call("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 1000}})), 0);
  EXPECT_NE(code(call("bdev_null_create",
                      {{"name", "n"}, {"num_blocks", 8}, {"block_size", 512}, {"uuid", "x"}})),
            0);
  ASSERT_EQ(call("bdev_null_create", {{"name", "n"}, {"num_blocks", 8}, {"block_size", 512}})["result"],
            "n");
  EXPECT_EQ(code(call("bdev_null_create", {{"name", "n"}, {"num_blocks", 8}, {"block_size", 512}})),
            -17);  // -EEXIST
}

TEST_F(BdevRpcTest, DeleteUnknownIsNoSuchDevice) {
  for (const char* m : {"bdev_malloc_delete", "bdev_null_delete", "bdev_uring_delete"}) {
    json r = call(m, {{"name", "nope"}});
    EXPECT_EQ(code(r), -19) << m;
    EXPECT_EQ(r["error"]["message"], "No such device") << m;
  }
  // A bdev of another module is not found either.
  call("bdev_null_create", {{"name", "n0"}, {"num_blocks", 8}, {"block_size", 512}});
  EXPECT_EQ(code(call("bdev_malloc_delete", {{"name", "n0"}})), -19);
  EXPECT_NE(Manager::get().find("n0"), nullptr);
}

TEST_F(BdevRpcTest, DeleteClaimedIsBusy) {
  call("bdev_null_create", {{"name", "n0"}, {"num_blocks", 8}, {"block_size", 512}});
  auto d = Manager::get().open("n0", true, [](Desc& d) { d.close(); });
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->claim("vblk VblkCtrl1").ok());
  EXPECT_EQ(code(call("bdev_null_delete", {{"name", "n0"}})), -16);
  EXPECT_EQ(code(call("snap_bdev_null_destroy_dbg", {{"bdev", "n0"}})), -16);
  (*d)->close();
  EXPECT_EQ(call("bdev_null_delete", {{"name", "n0"}})["result"], true);
}

TEST_F(BdevRpcTest, GetBdevsUnknownIsNoSuchDevice) {
  json r = call("bdev_get_bdevs", {{"name", "nope"}});
  EXPECT_EQ(code(r), -19);
  EXPECT_EQ(r["error"]["message"], "No such device");
}

TEST_F(BdevRpcTest, IostatShape) {
  call("bdev_null_create", {{"name", "n0"}, {"num_blocks", 8}, {"block_size", 512}});
  call("bdev_null_create", {{"name", "n1"}, {"num_blocks", 8}, {"block_size", 512}});
  json r = call("bdev_get_iostat", json::object());
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_GT(r["result"]["tick_rate"].get<uint64_t>(), 0u);
  EXPECT_TRUE(r["result"].contains("ticks"));
  EXPECT_EQ(r["result"]["bdevs"].size(), 2u);
  r = call("bdev_get_iostat", {{"name", "n1"}});
  ASSERT_EQ(r["result"]["bdevs"].size(), 1u);
  EXPECT_EQ(r["result"]["bdevs"][0]["name"], "n1");
  EXPECT_EQ(r["result"]["bdevs"][0]["num_read_ops"], 0);
  EXPECT_EQ(code(call("bdev_get_iostat", {{"name", "nope"}})), -19);
}

TEST_F(BdevRpcTest, SnapNullPlugin) {
  json r = call("snap_bdev_null_create_dbg", {{"bdev", "null1"}, {"size_mb", 64}, {"block_size", 512}});
  ASSERT_EQ(r["result"], "null1") << r.dump();
  EXPECT_EQ(Manager::get().find("null1")->num_blocks(), 131072u);
  EXPECT_EQ(call("snap_bdev_null_destroy_dbg", {{"bdev", "null1"}})["result"], true);
  EXPECT_EQ(Manager::get().find("null1"), nullptr);
  EXPECT_EQ(code(call("snap_bdev_null_destroy_dbg", {{"bdev", "null1"}})), -19);
}

TEST_F(BdevRpcTest, SnapMallocPluginCreateResizeDestroy) {
  json r = call("snap_bdev_malloc_create", {{"bdev", "m0"}, {"size_mb", 1}, {"block_size", 4096}});
  ASSERT_EQ(r["result"], "m0") << r.dump();
  std::string uuid = Manager::get().find("m0")->uuid();
  EXPECT_EQ(Manager::get().find("m0")->num_blocks(), 256u);
  r = call("snap_bdev_malloc_resize", {{"bdev", "m0"}, {"new_size_mb", 2}});
  ASSERT_EQ(r["result"], true) << r.dump();
  Bdev* b = Manager::get().find("m0");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->num_blocks(), 512u);
  EXPECT_EQ(b->block_size(), 4096u);
  EXPECT_EQ(b->uuid(), uuid);
  EXPECT_EQ(code(call("snap_bdev_malloc_resize", {{"bdev", "zz"}, {"new_size_mb", 2}})), -19);
  EXPECT_EQ(call("snap_bdev_malloc_destroy", {{"bdev", "m0"}})["result"], true);
  EXPECT_EQ(Manager::get().find("m0"), nullptr);
}

TEST_F(BdevRpcTest, UringCreateDelete) {
  std::string path = "/var/tmp/vdpu-uring-rpc-XXXXXX";
  int fd = mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
  close(fd);
  json r = call("bdev_uring_create", {{"filename", path}, {"name", "u0"}, {"block_size", 4096}});
  EXPECT_EQ(r["result"], "u0") << r.dump();
  r = call("bdev_get_bdevs", {{"name", "u0"}});
  EXPECT_EQ(r["result"][0]["driver_specific"]["uring"]["filename"], path);
  EXPECT_EQ(r["result"][0]["num_blocks"], 256);
  EXPECT_EQ(call("bdev_uring_delete", {{"name", "u0"}})["result"], true);
  EXPECT_NE(code(call("bdev_uring_create", {{"filename", path + ".missing"}, {"name", "u1"}})), 0);
  EXPECT_EQ(code(call("bdev_uring_create", {{"name", "u1"}})), -32602);  // filename required
  unlink(path.c_str());
}

TEST_F(BdevRpcTest, SaveConfigHasBdevSubsystem) {
  call("bdev_null_create", {{"name", "n0"}, {"num_blocks", 8}, {"block_size", 512}});
  json c = rpc::build_config();
  bool found = false;
  for (auto& s : c["subsystems"])
    if (s["subsystem"] == "bdev") {
      found = true;
      ASSERT_EQ(s["config"].size(), 1u) << s.dump();
      EXPECT_EQ(s["config"][0]["method"], "bdev_null_create");
      EXPECT_EQ(s["config"][0]["params"]["name"], "n0");
    }
  EXPECT_TRUE(found) << c.dump();
}

}  // namespace
}  // namespace vdpu::bdev::test
