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

}  // namespace
}  // namespace vdpu::rpc::cli
