#include "rpc/schema.h"

#include <gtest/gtest.h>

namespace vdpu::rpc::schema {
namespace {

const char* kFile = R"({"methods": [
  {"name": "t_create", "help": "x", "states": ["runtime"], "params": [
    {"name": "name", "type": "string", "required": true, "short": "b"},
    {"name": "size", "type": "uint", "min": 1, "max": 1024, "default": 8},
    {"name": "delta", "type": "int", "min": -5, "max": 5},
    {"name": "ratio", "type": "number"},
    {"name": "force", "type": "bool", "default": false},
    {"name": "mode", "type": "string", "enum": ["a", "b"]},
    {"name": "ctrl", "type": "string", "aliases": ["ctrl_id"]},
    {"name": "list", "type": "array"},
    {"name": "obj", "type": "object"},
    {"name": "big", "type": "uint"}
  ]},
  {"name": "t_noparams"}
]})";

const Method& m() {
  static std::vector<Method> ms = [] {
    auto r = parse_file("t.json", kFile);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return *r;
  }();
  return ms[0];
}

std::string err(const json& params, const Method& meth = m()) {
  auto r = validate(meth, params);
  return r.ok() ? "" : r.error().message;
}

TEST(Schema, DefaultsAreApplied) {
  auto r = validate(m(), {{"name", "x"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["size"], 8);
  EXPECT_EQ((*r)["force"], false);
  EXPECT_FALSE(r->contains("mode"));
}

TEST(Schema, UnknownParameterNamed) {
  EXPECT_EQ(err({{"name", "x"}, {"colour", 1}}), "unknown parameter 'colour'");
}

TEST(Schema, MissingRequiredNamed) {
  EXPECT_EQ(err(json::object()), "missing required parameter 'name'");
  EXPECT_EQ(err(nullptr), "missing required parameter 'name'");
}

TEST(Schema, MistypedNamed) {
  EXPECT_NE(err({{"name", 5}}).find("'name'"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"size", "8"}}).find("expected uint"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"size", 1.5}}).find("'size'"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"list", "a"}}).find("expected array"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"obj", json::array()}}).find("expected object"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"ratio", "1"}}).find("expected number"), std::string::npos);
}

TEST(Schema, OutOfRange) {
  EXPECT_NE(err({{"name", "x"}, {"size", 0}}).find("must be >= 1"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"size", 1025}}).find("must be <= 1024"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"size", -1}}).find("'size'"), std::string::npos);
  EXPECT_NE(err({{"name", "x"}, {"delta", -6}}).find("must be >= -5"), std::string::npos);
  EXPECT_EQ(err({{"name", "x"}, {"delta", -5}}), "");
  EXPECT_EQ(err({{"name", "x"}, {"big", UINT64_MAX}}), "");
}

TEST(Schema, BoolAcceptsZeroOne) {
  auto r = validate(m(), {{"name", "x"}, {"force", 1}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["force"], true);
  r = validate(m(), {{"name", "x"}, {"force", 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["force"], false);
  EXPECT_NE(err({{"name", "x"}, {"force", 2}}), "");
  EXPECT_NE(err({{"name", "x"}, {"force", "true"}}), "");
}

TEST(Schema, IntegralFloatBecomesInteger) {
  auto r = validate(m(), {{"name", "x"}, {"size", 16.0}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["size"].is_number_unsigned());
  EXPECT_EQ((*r)["size"], 16);
}

TEST(Schema, EnumChecked) {
  EXPECT_EQ(err({{"name", "x"}, {"mode", "a"}}), "");
  EXPECT_NE(err({{"name", "x"}, {"mode", "c"}}).find("allowed"), std::string::npos);
}

TEST(Schema, AliasRenamedToCanonical) {
  auto r = validate(m(), {{"name", "x"}, {"ctrl_id", "C1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["ctrl"], "C1");
  EXPECT_FALSE(r->contains("ctrl_id"));
  EXPECT_NE(err({{"name", "x"}, {"ctrl_id", "C1"}, {"ctrl", "C2"}}).find("twice"), std::string::npos);
}

TEST(Schema, ParamsMustBeAnObject) {
  EXPECT_EQ(err(json::array({1})), "params must be an object");
}

TEST(Schema, NoParamsMethodRefusesAny) {
  auto ms = parse_file("t.json", kFile);
  ASSERT_TRUE(ms.ok());
  const Method& np = (*ms)[1];
  EXPECT_EQ(np.states, 2u);
  EXPECT_EQ(err(json::object(), np), "");
  EXPECT_NE(err({{"x", 1}}, np).find("unknown parameter 'x'"), std::string::npos);
}

TEST(Schema, BadFilesAreRefused) {
  EXPECT_FALSE(parse_file("a", "{").ok());
  EXPECT_FALSE(parse_file("a", R"({"m": []})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "params": [{"name": "p", "type": "float"}]}]})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "params": [{"name": "p", "type": "uint", "default": -1}]}]})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "params": [{"name": "p"}, {"name": "p"}]}]})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "states": ["later"]}]})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "colour": 1}]})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [{"name": "x", "params": [{"name": "p", "short": "abc"}]}]})").ok());
}

TEST(Schema, ServiceOfAFile) {
  auto snap = parse_file("a", R"({"methods": [{"name": "x"}]})");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ((*snap)[0].service, kServiceSnap);
  auto vn = parse_file("a", R"({"service": "virtnet", "methods": [{"name": "x"}]})");
  ASSERT_TRUE(vn.ok());
  EXPECT_EQ((*vn)[0].service, kServiceVirtnet);
  EXPECT_FALSE(parse_file("a", R"({"service": "other", "methods": []})").ok());
  EXPECT_FALSE(parse_file("a", R"({"service": 1, "methods": []})").ok());
  EXPECT_FALSE(parse_file("a", R"({"methods": [], "colour": 1})").ok());
  // Names are unique across services: a generic virtnet name cannot shadow
  // (or be shadowed by) an SPDK/SNAP method.
  Registry r;
  ASSERT_TRUE(r.add_file("v.json", R"({"service": "virtnet", "methods": [{"name": "list"}]})").ok());
  EXPECT_FALSE(r.add_file("s.json", R"({"methods": [{"name": "list"}]})").ok());
  EXPECT_FALSE(r.add_file("s.json", R"({"methods": [{"name": "y", "aliases": ["list"]}]})").ok());
  EXPECT_NE(r.find("list"), nullptr);
  EXPECT_NE(r.find("list", kServiceVirtnet), nullptr);
  EXPECT_EQ(r.find("list", kServiceSnap), nullptr);
}

TEST(Schema, EmbeddedFilesLoadWithoutErrors) {
  auto& reg = Registry::get();
  for (auto& e : reg.errors()) ADD_FAILURE() << e;
  ASSERT_NE(reg.find("rpc_get_methods"), nullptr);
  ASSERT_NE(reg.find("snap_log_level_set"), nullptr);
  EXPECT_EQ(reg.find("rpc_get_methods")->states, 3u);
  EXPECT_EQ(reg.find("no_such_method"), nullptr);
}

TEST(Schema, DuplicateMethodAcrossFilesRefused) {
  Registry r;
  ASSERT_TRUE(r.add_file("a.json", R"({"methods": [{"name": "dup_x", "aliases": ["dup_y"]}]})").ok());
  EXPECT_FALSE(r.add_file("b.json", R"({"methods": [{"name": "dup_x"}]})").ok());
  EXPECT_FALSE(r.add_file("c.json", R"({"methods": [{"name": "dup_y"}]})").ok());
  ASSERT_NE(r.find("dup_y"), nullptr);
  EXPECT_EQ(r.find("dup_y")->name, "dup_x");
}

}  // namespace
}  // namespace vdpu::rpc::schema
