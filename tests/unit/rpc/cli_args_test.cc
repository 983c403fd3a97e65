#include "apps/rpc_cli/cli_args.h"

#include <gtest/gtest.h>

namespace vdpu::rpc::cli {
namespace {

const schema::Method& method(const char* text, size_t i = 0) {
  static std::vector<std::vector<schema::Method>> keep;
  auto r = schema::parse_file("t.json", text);
  EXPECT_TRUE(r.ok()) << r.error().message;
  keep.push_back(*r);
  return keep.back()[i];
}

const char* kCreate = R"({"methods": [{"name": "x_create", "params": [
  {"name": "name", "type": "string", "short": "b"},
  {"name": "num_queues", "type": "uint", "short": "q"},
  {"name": "offset", "type": "int"},
  {"name": "ratio", "type": "number"},
  {"name": "force", "type": "bool", "short": "f"},
  {"name": "serial_number", "type": "string", "short": "sn"},
  {"name": "bdev", "type": "string", "required": true, "positional": true},
  {"name": "nsids", "type": "array"},
  {"name": "opts", "type": "object"},
  {"name": "ctrl", "type": "string", "cli_name": "controller"}
]}]})";

Result<json> parse(const schema::Method& m, std::vector<std::string> a) { return parse_args(m, a); }

TEST(CliArgs, LongDashedShortAndPositional) {
  const auto& m = method(kCreate);
  auto r = parse(m, {"Malloc0", "--name", "n1", "--num-queues", "4", "-f", "-sn", "SN1"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, json({{"bdev", "Malloc0"}, {"name", "n1"}, {"num_queues", 4}, {"force", true},
                      {"serial_number", "SN1"}}));
  r = parse(m, {"-b", "n2", "--num_queues=0x10", "Malloc1", "--controller", "C1"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["num_queues"], 16);
  EXPECT_EQ((*r)["name"], "n2");
  EXPECT_EQ((*r)["ctrl"], "C1");
  // A positional also takes its option form.
  r = parse(m, {"--bdev", "M2"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["bdev"], "M2");
}

TEST(CliArgs, BoolFlagFalse) {
  auto r = parse(method(kCreate), {"M", "--force=false"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["force"], false);
}

// rpc.py's store_false options (nvmf_create_transport -o/--c2h-success).
TEST(CliArgs, StoreFalseFlag) {
  const auto& m = method(R"({"methods": [{"name": "t_x", "params": [
    {"name": "c2h_success", "type": "bool", "short": "o", "cli_store_false": true}]}]})");
  auto r = parse(m, {"-o"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, json({{"c2h_success", false}}));
  r = parse(m, {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->contains("c2h_success")) << "absent: the server's default (true)";
  EXPECT_FALSE(schema::parse_file("t.json", R"({"methods": [{"name": "t_y", "params": [
    {"name": "n", "type": "uint", "cli_store_false": true}]}]})").ok());
}

TEST(CliArgs, StrictNumbers) {
  const auto& m = method(kCreate);
  EXPECT_FALSE(parse(m, {"M", "-q", "4x"}).ok());
  EXPECT_FALSE(parse(m, {"M", "-q", "-1"}).ok());
  EXPECT_FALSE(parse(m, {"M", "-q", "99999999999999999999"}).ok());
  EXPECT_FALSE(parse(m, {"M", "--ratio", "abc"}).ok());
  auto r = parse(m, {"M", "--offset", "-7", "--ratio", "0.5"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["offset"], -7);
  EXPECT_EQ((*r)["ratio"], 0.5);
}

TEST(CliArgs, ArraysAndObjects) {
  const auto& m = method(kCreate);
  auto r = parse(m, {"M", "--nsids", "1", "2", "--opts", R"({"a":1})"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["nsids"], json::array({1, 2}));
  EXPECT_EQ((*r)["opts"]["a"], 1);
  r = parse(m, {"M", "--nsids", "[3,4]"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["nsids"], json::array({3, 4}));
  EXPECT_FALSE(parse(m, {"M", "--opts", "[1]"}).ok());
}

TEST(CliArgs, UnknownOptionAndMissingRequired) {
  const auto& m = method(kCreate);
  auto r = parse(m, {"M", "--colour", "red"});
  ASSERT_FALSE(r.ok());
  r = parse(m, {"--name", "x"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bdev"), std::string::npos);
  EXPECT_FALSE(parse(m, {"M", "extra_positional"}).ok());
}

TEST(CliArgs, MinMaxEnumCheckedEarly) {
  const auto& m = method(R"({"methods": [{"name": "y", "params": [
    {"name": "level", "type": "int", "min": 0, "max": 5, "positional": true, "short": "l"},
    {"name": "mode", "type": "string", "enum": ["a", "b"]}]}]})");
  EXPECT_TRUE(parse(m, {"5"}).ok());
  EXPECT_TRUE(parse(m, {"-l", "0"}).ok());
  EXPECT_FALSE(parse(m, {"6"}).ok());
  EXPECT_FALSE(parse(m, {"--mode", "c"}).ok());
}

TEST(CliArgs, MallocSizeTransformWithRpcPyOrder) {
  const auto& m = method(R"({"methods": [{"name": "bdev_malloc_create", "params": [
    {"name": "num_blocks", "type": "uint", "required": true, "min": 1},
    {"name": "block_size", "type": "uint", "required": true, "positional": true},
    {"name": "name", "type": "string", "short": "b"}],
    "cli": {"extra": [{"name": "total_size", "type": "number", "positional": true}],
            "transform": "malloc_size"}}]})");
  EXPECT_EQ(positional_order(m), std::vector<std::string>({"total_size", "block_size"}));
  auto r = parse(m, {"64", "512", "-b", "Malloc0"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, json({{"num_blocks", 131072}, {"block_size", 512}, {"name", "Malloc0"}}));
  r = parse(m, {"0.5", "4096"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["num_blocks"], 128);
  EXPECT_FALSE(parse(m, {"64", "0"}).ok());
}

TEST(CliArgs, NullSizeTransformOrder) {
  const auto& m = method(R"({"methods": [{"name": "bdev_null_create", "params": [
    {"name": "name", "type": "string", "required": true, "positional": true},
    {"name": "num_blocks", "type": "uint", "required": true},
    {"name": "block_size", "type": "uint", "required": true, "positional": true}],
    "cli": {"extra": [{"name": "total_size", "type": "uint", "positional": true}],
            "transform": "null_size"}}]})");
  auto r = parse(m, {"null1", "64", "512"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, json({{"name", "null1"}, {"num_blocks", 131072}, {"block_size", 512}}));
}

TEST(CliArgs, ExplicitPositionalOrderWins) {
  const auto& m = method(R"({"methods": [{"name": "z", "params": [
    {"name": "a", "type": "string", "positional": true},
    {"name": "b", "type": "string", "positional": true}],
    "cli": {"positionals": ["b", "a"]}}]})");
  auto r = parse(m, {"1", "2"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["b"], "1");
  EXPECT_EQ((*r)["a"], "2");
}

TEST(SplitLine, QuotesEscapesComments) {
  auto w = split_line(R"(  nvme_x --nqn 'a b' --sn "c \"d\"" e\ f  # comment)");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, std::vector<std::string>({"nvme_x", "--nqn", "a b", "--sn", "c \"d\"", "e f"}));
  EXPECT_TRUE(split_line("# only a comment")->empty());
  EXPECT_TRUE(split_line("   ")->empty());
  EXPECT_FALSE(split_line("x 'open").ok());
  EXPECT_FALSE(split_line("x \"open").ok());
  auto h = split_line("a#b");
  EXPECT_EQ(*h, std::vector<std::string>({"a#b"}));
}

TEST(ParseLine, UsesEmbeddedSchema) {
  auto c = parse_line("snap_log_level_set 4");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->method, "snap_log_level_set");
  EXPECT_EQ(c->params["level"], 4);
  EXPECT_TRUE(parse_line("  # nothing")->method.empty());
  EXPECT_FALSE(parse_line("no_such_method 1").ok());
  EXPECT_FALSE(parse_line("snap_log_level_set 9").ok());
  auto k = parse_line("spdk_kill_instance SIGTERM");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->params["sig_name"], "SIGTERM");
}

// snap-storage §7.3's example lines, as a SNAP user writes them: positionals
// and transforms apply exactly as on the command line.
TEST(ParseLine, SnapInitFileExamples) {
  auto m = parse_line("bdev_malloc_create -b Malloc0 128 512");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->params, json({{"name", "Malloc0"}, {"num_blocks", 262144}, {"block_size", 512}}));
  auto m2 = parse_line("bdev_malloc_create 64 512");
  ASSERT_TRUE(m2.ok()) << m2.error().message;
  EXPECT_EQ(m2->params["num_blocks"], 131072);
  auto n = parse_line("bdev_null_create Null0 64 4096");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->params, json({{"name", "Null0"}, {"num_blocks", 16384}, {"block_size", 4096}}));
  auto s = parse_line("nvme_subsystem_create --nqn nqn.2022-10.io.nvda.nvme:0");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->params["nqn"], "nqn.2022-10.io.nvda.nvme:0");
  auto c = parse_line("nvme_controller_create --nqn nqn.2022-10.io.nvda.nvme:0 --ctrl NVMeCtrl1 "
                      "--pf_id 0 --suspended");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->params["suspended"], true);
  EXPECT_EQ(c->params["pf_id"], 0);
  auto v = parse_line("virtio_blk_controller_create --pf_id 0 --bdev Malloc0");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->params, json({{"pf_id", 0}, {"bdev", "Malloc0"}}));
}

// The CLI and the init files share translate(): same results, same errors.
TEST(Translate, SameAsTheCommandLine) {
  auto a = translate({"bdev_malloc_create", "-b", "Malloc0", "128", "512"});
  auto b = parse_line("bdev_malloc_create -b Malloc0 128 512");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->method, b->method);
  EXPECT_EQ(a->params, b->params);
  auto raw = translate({"call", "anything_at_all", R"({"x": [1]})"});
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(raw->method, "anything_at_all");
  EXPECT_EQ(raw->params, json({{"x", {1}}}));
  auto raw_line = parse_line(R"(call bdev_get_bdevs '{"name": "M0"}')");
  ASSERT_TRUE(raw_line.ok()) << raw_line.error().message;
  EXPECT_EQ(raw_line->params["name"], "M0");
  EXPECT_FALSE(translate({"call"}).ok());
  EXPECT_FALSE(translate({"call", "m", "[1]"}).ok());
  EXPECT_TRUE(translate({})->method.empty());
}

// An init file has no stdin: load_config must name its file instead of
// blocking start-up on a read of the daemon's stdin.
TEST(ParseLine, LoadConfigNeedsAFileInInitFiles) {
  auto r = parse_line("load_config");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("-j"), std::string::npos) << r.error().message;
  auto f = parse_line("load_config -j /nonexistent/config.json");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("/nonexistent/config.json"), std::string::npos);
}

// virtnet.json's generic names (list, query ...) belong to the virtnet CLI:
// spdk_rpc / snap_rpc and the init files do not know them (SNAP's snap_rpc.py
// answers "list" with an unknown command).
TEST(Translate, VirtnetMethodsAreNotSnapCommands) {
  auto& reg = schema::Registry::get();
  ASSERT_TRUE(reg.errors().empty());
  for (const char* n : {"list", "query", "hotplug", "unplug", "stats", "modify", "health", "log",
                        "version", "restart", "update", "debug"}) {
    ASSERT_NE(reg.find(n), nullptr) << n;
    EXPECT_EQ(reg.find(n)->service, schema::kServiceVirtnet) << n;
    EXPECT_EQ(find_method(n), nullptr) << n;
    auto r = translate({n});
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_NE(r.error().message.find("unknown command '" + std::string(n) + "'"), std::string::npos)
        << r.error().message;
    EXPECT_FALSE(parse_line(n).ok()) << n;
  }
  for (auto& m : reg.methods())
    if (m.file != "virtnet.json") EXPECT_EQ(m.service, schema::kServiceSnap) << m.name;
  EXPECT_NE(find_method("bdev_get_bdevs"), nullptr);
  EXPECT_NE(find_method("nvmf_delete_listener"), nullptr);  // aliases too
}

}  // namespace
}  // namespace vdpu::rpc::cli
