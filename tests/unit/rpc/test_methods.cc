#include "test_methods.h"

#include <stdexcept>

namespace vdpu::rpc::test {

void register_test_methods() {
  static bool done = false;
  if (done) return;
  done = true;
  register_framework_methods();
  Status s = schema::Registry::get().add_file("test.json", R"({"methods": [
    {"name": "t_echo", "states": ["runtime"], "params": [
      {"name": "value", "type": "any"},
      {"name": "n", "type": "uint", "min": 1, "max": 10, "default": 1},
      {"name": "flag", "type": "bool"},
      {"name": "ctrl", "type": "string", "aliases": ["ctrl_id"]}]},
    {"name": "t_startup", "states": ["startup"]},
    {"name": "t_any", "states": ["startup", "runtime"]},
    {"name": "t_later", "states": ["startup", "runtime"]},
    {"name": "t_drop", "states": ["startup", "runtime"]},
    {"name": "t_throw", "states": ["startup", "runtime"]},
    {"name": "t_twice", "states": ["startup", "runtime"]},
    {"name": "t_fail", "states": ["startup", "runtime"], "params": [{"name": "code", "type": "int"}]}
  ]})");
  if (!s) throw std::runtime_error(s.error().message);
  register_method("t_echo", [](const json& p, Responder r) { r.result(p); }, kRuntime);
  register_method("t_startup", [](const json&, Responder r) { r.result("startup"); }, kStartup);
  register_method("t_any", [](const json&, Responder r) { r.result("any"); }, kAny);
  register_method("t_later", [](const json&, Responder r) { later() = r; }, kAny);
  register_method("t_drop", [](const json&, Responder) {}, kAny);
  register_method("t_throw", [](const json&, Responder) { throw std::runtime_error("boom"); }, kAny);
  register_method("t_twice", [](const json&, Responder r) {
    r.result(1);
    r.result(2);
  }, kAny);
  register_method("t_fail", [](const json& p, Responder r) {
    r.error(make_error(Errc::kExists, "already there " + std::to_string(p.value("code", 0))));
  }, kAny);
  register_method("t_noschema", [](const json&, Responder r) { r.result(true); }, kAny);
  register_method_alias("t_echo_alias", "t_echo");
}

json dispatch(const json& req) {
  json out;
  Dispatcher::get().handle(req, [&](json r) { out = std::move(r); });
  return out;
}

}  // namespace vdpu::rpc::test
