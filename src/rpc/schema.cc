#include "rpc/schema.h"

#include <cmath>
#include <set>

#include "fmt/format.h"
#include "rpc/schema_embedded.h"

namespace vdpu::rpc::schema {
namespace {

Error bad(std::string msg) { return make_error(Errc::kInvalidArgument, std::move(msg)); }

bool parse_type(const std::string& s, Type* t) {
  static const std::pair<const char*, Type> kTypes[] = {
      {"string", Type::kString}, {"int", Type::kInt},     {"uint", Type::kUint},
      {"number", Type::kNumber}, {"bool", Type::kBool},   {"array", Type::kArray},
      {"object", Type::kObject}, {"any", Type::kAny}};
  for (auto& [n, v] : kTypes)
    if (s == n) {
      *t = v;
      return true;
    }
  return false;
}

Result<Param> parse_param(const std::string& where, const json& j) {
  if (!j.is_object()) return bad(where + ": parameter must be an object");
  Param p;
  static const std::set<std::string> kKeys = {"name", "help", "type", "required", "default",
                                              "min", "max", "enum", "aliases", "short",
                                              "positional", "cli_name", "cli_store_false"};
  for (auto& [k, v] : j.items())
    if (!kKeys.count(k)) return bad(fmt::format("{}: unknown field '{}'", where, k));
  if (!j.contains("name") || !j["name"].is_string()) return bad(where + ": parameter without name");
  p.name = j["name"];
  std::string w = where + " param '" + p.name + "'";
  try {
    p.help = j.value("help", "");
    std::string t = j.value("type", "string");
    if (!parse_type(t, &p.type)) return bad(fmt::format("{}: unknown type '{}'", w, t));
    p.required = j.value("required", false);
    p.positional = j.value("positional", false);
    p.short_opt = j.value("short", "");
    p.cli_name = j.value("cli_name", "");
    p.cli_store_false = j.value("cli_store_false", false);
    if (p.cli_store_false && p.type != Type::kBool) return bad(w + ": cli_store_false needs type bool");
    if (j.contains("min")) p.min = j["min"];
    if (j.contains("max")) p.max = j["max"];
    if (!p.min.is_null() && !p.min.is_number()) return bad(w + ": min must be a number");
    if (!p.max.is_null() && !p.max.is_number()) return bad(w + ": max must be a number");
    if (j.contains("enum")) {
      if (!j["enum"].is_array()) return bad(w + ": enum must be an array");
      for (auto& e : j["enum"]) p.enum_values.push_back(e);
    }
    if (j.contains("aliases")) p.aliases = j["aliases"].get<std::vector<std::string>>();
    if (p.short_opt.size() > 2 || (!p.short_opt.empty() && p.short_opt[0] == '-'))
      return bad(w + ": short must be one or two letters without the dash");
  } catch (const json::exception& e) {
    return bad(fmt::format("{}: {}", w, e.what()));
  }
  if (j.contains("default")) {
    auto d = check_value(p, j["default"]);
    if (!d) return bad(fmt::format("{}: bad default: {}", w, d.error().message));
    p.default_value = *d;
  }
  return p;
}

Result<Method> parse_method(std::string_view file, const json& j) {
  std::string where(file);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
    return bad(where + ": method without name");
  Method m;
  m.file = std::string(file);
  m.name = j["name"];
  where += " method '" + m.name + "'";
  static const std::set<std::string> kKeys = {"name", "help", "states", "params", "cli", "aliases"};
  for (auto& [k, v] : j.items())
    if (!kKeys.count(k)) return bad(fmt::format("{}: unknown field '{}'", where, k));
  try {
    m.help = j.value("help", "");
    if (j.contains("states")) {
      m.states = 0;
      for (auto& s : j["states"]) {
        if (s == "startup") m.states |= 1;
        else if (s == "runtime") m.states |= 2;
        else return bad(where + ": states must be \"startup\" and/or \"runtime\"");
      }
      if (!m.states) return bad(where + ": empty states");
    }
    if (j.contains("aliases")) m.aliases = j["aliases"].get<std::vector<std::string>>();
    std::set<std::string> names, shorts;
    auto add = [&](std::vector<Param>& into, const json& list) -> Status {
      if (!list.is_array()) return bad(where + ": params must be an array");
      for (auto& pj : list) {
        auto p = parse_param(where, pj);
        if (!p) return p.error();
        if (!names.insert(p->name).second)
          return bad(fmt::format("{}: duplicate param '{}'", where, p->name));
        if (!p->short_opt.empty() && !shorts.insert(p->short_opt).second)
          return bad(fmt::format("{}: duplicate short option '-{}'", where, p->short_opt));
        into.push_back(std::move(*p));
      }
      return {};
    };
    if (j.contains("params")) VDPU_TRY(add(m.params, j["params"]));
    if (j.contains("cli")) {
      const json& c = j["cli"];
      if (!c.is_object()) return bad(where + ": cli must be an object");
      if (c.contains("extra")) VDPU_TRY(add(m.cli_extra, c["extra"]));
      m.cli_transform = c.value("transform", "");
      if (c.contains("positionals"))
        m.cli_positionals = c["positionals"].get<std::vector<std::string>>();
      for (auto& n : m.cli_positionals)
        if (!names.count(n)) return bad(fmt::format("{}: cli.positionals names unknown '{}'", where, n));
    }
  } catch (const json::exception& e) {
    return bad(fmt::format("{}: {}", where, e.what()));
  }
  return m;
}

// Compares a JSON number with a bound without losing 64-bit integer precision.
// Returns <0, 0, >0.
int compare_num(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    bool an = a.is_number_unsigned(), bn = b.is_number_unsigned();
    if (an && bn) {
      uint64_t x = a.get<uint64_t>(), y = b.get<uint64_t>();
      return x < y ? -1 : x > y;
    }
    if (!an && !bn) {
      int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
      return x < y ? -1 : x > y;
    }
    // One unsigned (>= 0), one signed.
    if (an) {
      int64_t y = b.get<int64_t>();
      if (y < 0) return 1;
      uint64_t x = a.get<uint64_t>();
      return x < uint64_t(y) ? -1 : x > uint64_t(y);
    }
    int64_t x = a.get<int64_t>();
    if (x < 0) return -1;
    uint64_t y = b.get<uint64_t>();
    return uint64_t(x) < y ? -1 : uint64_t(x) > y;
  }
  double x = a.get<double>(), y = b.get<double>();
  return x < y ? -1 : x > y;
}

}  // namespace

const char* type_name(Type t) {
  switch (t) {
    case Type::kString: return "string";
    case Type::kInt: return "int";
    case Type::kUint: return "uint";
    case Type::kNumber: return "number";
    case Type::kBool: return "bool";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
    case Type::kAny: return "any";
  }
  return "?";
}

const Param* Method::find_param(std::string_view n) const {
  for (auto& p : params)
    if (p.name == n) return &p;
  return nullptr;
}

Result<std::vector<Method>> parse_file(std::string_view file, std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/false);
  if (j.is_discarded()) return bad(std::string(file) + ": not valid JSON");
  if (!j.is_object() || !j.contains("methods") || !j["methods"].is_array())
    return bad(std::string(file) + ": expected {\"methods\": [...]}");
  for (auto& [k, v] : j.items())
    if (k != "methods" && k != "service")
      return bad(fmt::format("{}: unknown top-level field '{}'", file, k));
  std::string service = kServiceSnap;
  if (j.contains("service")) {
    if (!j["service"].is_string() ||
        (j["service"] != kServiceSnap && j["service"] != kServiceVirtnet))
      return bad(fmt::format("{}: service must be \"{}\" or \"{}\"", file, kServiceSnap,
                             kServiceVirtnet));
    service = j["service"];
  }
  std::vector<Method> out;
  for (auto& mj : j["methods"]) {
    auto m = parse_method(file, mj);
    if (!m) return m.error();
    m->service = service;
    out.push_back(std::move(*m));
  }
  return out;
}

Result<json> check_value(const Param& p, const json& v) {
  auto mistyped = [&] {
    return bad(fmt::format("invalid type for parameter '{}': expected {}", p.name, type_name(p.type)));
  };
  json out = v;
  switch (p.type) {
    case Type::kString:
      if (!v.is_string()) return mistyped();
      break;
    case Type::kBool:
      // snap-storage §2: flags are JSON booleans; a 0/1 integer MUST also be accepted.
      if (v.is_boolean()) break;
      if (v.is_number_integer() && (v == 0 || v == 1)) {
        out = v == 1;
        break;
      }
      return mistyped();
    case Type::kInt:
    case Type::kUint:
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.007199254740992e15)
          return mistyped();
        out = p.type == Type::kUint && d >= 0 ? json(uint64_t(d)) : json(int64_t(d));
      } else if (!v.is_number_integer()) {
        return mistyped();
      }
      if (p.type == Type::kUint && !out.is_number_unsigned() && out.get<int64_t>() < 0)
        return bad(fmt::format("parameter '{}' out of range: must be >= 0", p.name));
      if (p.type == Type::kInt && out.is_number_unsigned() &&
          out.get<uint64_t>() > uint64_t(INT64_MAX))
        return bad(fmt::format("parameter '{}' out of range for a signed 64-bit integer", p.name));
      if (p.type == Type::kUint && !out.is_number_unsigned()) out = uint64_t(out.get<int64_t>());
      break;
    case Type::kNumber:
      if (!v.is_number()) return mistyped();
      break;
    case Type::kArray:
      if (!v.is_array()) return mistyped();
      break;
    case Type::kObject:
      if (!v.is_object()) return mistyped();
      break;
    case Type::kAny:
      break;
  }
  if (out.is_number()) {
    if (!p.min.is_null() && compare_num(out, p.min) < 0)
      return bad(fmt::format("parameter '{}' out of range: must be >= {}", p.name, p.min.dump()));
    if (!p.max.is_null() && compare_num(out, p.max) > 0)
      return bad(fmt::format("parameter '{}' out of range: must be <= {}", p.name, p.max.dump()));
  }
  if (!p.enum_values.empty()) {
    bool found = false;
    for (auto& e : p.enum_values) found |= e == out;
    if (!found) {
      std::string allowed;
      for (auto& e : p.enum_values) allowed += (allowed.empty() ? "" : ", ") + e.dump();
      return bad(fmt::format("invalid value {} for parameter '{}': allowed {}", v.dump(), p.name,
                             allowed));
    }
  }
  return out;
}

Result<json> validate(const Method& m, const json& params) {
  json out = json::object();
  if (params.is_null()) {
    // no params
  } else if (!params.is_object()) {
    return bad("params must be an object");
  } else {
    for (auto& [key, val] : params.items()) {
      const Param* p = m.find_param(key);
      if (!p)
        for (auto& c : m.params)
          for (auto& a : c.aliases)
            if (a == key) p = &c;
      if (!p) {
        if (m.params.empty())
          return bad(fmt::format("unknown parameter '{}': {} takes no parameters", key, m.name));
        return bad(fmt::format("unknown parameter '{}'", key));
      }
      if (out.contains(p->name))
        return bad(fmt::format("parameter '{}' given twice (as '{}')", p->name, key));
      auto v = check_value(*p, val);
      if (!v) return v.error();
      out[p->name] = std::move(*v);
    }
  }
  for (auto& p : m.params) {
    if (out.contains(p.name)) continue;
    if (p.required) return bad(fmt::format("missing required parameter '{}'", p.name));
    if (!p.default_value.is_null()) out[p.name] = p.default_value;
  }
  return out;
}

Registry& Registry::get() {
  static Registry* r = [] {
    auto* reg = new Registry();
    for (const EmbeddedFile* f = kEmbeddedFiles; f->name; ++f) {
      Status s = reg->add_file(f->name, f->text);
      if (!s) reg->errors_.push_back(s.error().message);
    }
    return reg;
  }();
  return *r;
}

Status Registry::add_file(std::string_view file, std::string_view text) {
  auto ms = parse_file(file, text);
  if (!ms) return ms.error();
  for (auto& m : *ms) {
    if (find(m.name))
      return bad(fmt::format("{}: method '{}' already defined", file, m.name));
    for (auto& a : m.aliases)
      if (find(a)) return bad(fmt::format("{}: method alias '{}' already defined", file, a));
  }
  for (auto& m : *ms) methods_.push_back(std::move(m));
  return {};
}

const Method* Registry::find(std::string_view name) const {
  for (auto& m : methods_)
    if (m.name == name) return &m;
  for (auto& m : methods_)
    for (auto& a : m.aliases)
      if (a == name) return &m;
  return nullptr;
}

const Method* Registry::find(std::string_view name, std::string_view service) const {
  const Method* m = find(name);
  return m && m->service == service ? m : nullptr;
}

}  // namespace vdpu::rpc::schema
