#include "apps/rpc_cli/cli_args.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <algorithm>
#include <cctype>
#include <map>

#include "apps/rpc_cli/transforms.h"
#include "base/parse.h"

namespace vdpu::rpc::cli {
namespace {

using schema::Param;
using schema::Type;

Error bad(std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); }

std::string dashed(std::string s) {
  for (char& c : s)
    if (c == '_') c = '-';
  return s;
}

std::string long_name(const Param& p) { return p.cli_name.empty() ? p.name : p.cli_name; }

// "--name,--na-me[,-x]" (+ the positional name first for positionals).
std::string option_names(const Param& p) {
  std::string ln = long_name(p);
  std::string names = p.positional ? p.name + ",--" + ln : "--" + ln;
  if (dashed(ln) != ln) names += ",--" + dashed(ln);
  if (p.short_opt.size() == 1) names += ",-" + p.short_opt;
  return names;
}

Result<json> convert(const Param& p, const std::vector<std::string>& vals) {
  std::string opt = p.positional ? p.name : "--" + long_name(p);
  const std::string& s = vals.empty() ? std::string() : vals.back();
  auto invalid = [&](const std::string& v) {
    return bad("invalid value '" + v + "' for " + opt + ": expected " + schema::type_name(p.type));
  };
  switch (p.type) {
    case Type::kString:
      return json(s);
    case Type::kInt: {
      auto v = parse_i64(s);
      if (!v) return invalid(s);
      return json(*v);
    }
    case Type::kUint: {
      auto v = parse_u64(s);
      if (!v) return invalid(s);
      return json(*v);
    }
    case Type::kNumber: {
      if (auto i = parse_i64(s)) return json(*i);
      char* end = nullptr;
      double d = strtod(s.c_str(), &end);
      if (s.empty() || *end || !std::isfinite(d)) return invalid(s);
      return json(d);
    }
    case Type::kBool: {
      if (s == "true" || s == "1" || s == "yes") return json(true);
      if (s == "false" || s == "0" || s == "no") return json(false);
      return invalid(s);
    }
    case Type::kArray: {
      if (vals.size() == 1 && !s.empty() && s[0] == '[') {
        json j = json::parse(s, nullptr, false);
        if (j.is_discarded() || !j.is_array()) return invalid(s);
        return j;
      }
      json arr = json::array();
      for (auto& v : vals) {
        json j = json::parse(v, nullptr, false);
        if (!j.is_discarded() && (j.is_number() || j.is_boolean() || j.is_object() || j.is_array()))
          arr.push_back(j);
        else
          arr.push_back(v);
      }
      return arr;
    }
    case Type::kObject: {
      json j = json::parse(s, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return invalid(s);
      return j;
    }
    case Type::kAny: {
      json j = json::parse(s, nullptr, false);
      return j.is_discarded() ? json(s) : j;
    }
  }
  return invalid(s);
}

struct Built {
  CLI::App app;
  struct Slot {
    const Param* p;
    bool extra;
    CLI::Option* opt = nullptr;
    std::vector<std::string> vals;  // arrays (and raw flag values)
    std::string val;                // everything else
    bool flag = false;
  };
  std::map<std::string, Slot> slots;  // stable addresses
  std::map<std::string, std::string> two_letter;  // "-sn" -> "--long"
};

void build(const schema::Method& m, Built& b) {
  b.app.description(m.help);
  b.app.name(m.name);
  b.app.set_help_flag();  // callers handle -h/--help themselves
  b.app.allow_extras(false);
  auto order = positional_order(m);
  auto add = [&](const Param& p, bool extra) {
    Built::Slot& s = b.slots[p.name];
    std::string tn = schema::type_name(p.type);
    std::transform(tn.begin(), tn.end(), tn.begin(), [](unsigned char c) { return std::toupper(c); });
    s.p = &p;
    s.extra = extra;
    if (p.type == Type::kBool && !p.positional) {
      s.flag = true;
      s.opt = b.app.add_flag(option_names(p), p.help);
      // --flag → true, --flag=false → false (CLI11 turns the value into a count).
      s.opt->each([&s](const std::string& v) { s.vals.push_back(v); });
      s.opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    } else if (p.type == Type::kArray) {
      s.opt = b.app.add_option(option_names(p), s.vals, p.help)->expected(1, -1)->type_name(tn);
    } else {
      s.opt = b.app.add_option(option_names(p), s.val, p.help)
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
                  ->type_name(tn);
    }
    if (p.short_opt.size() == 2) b.two_letter["-" + p.short_opt] = "--" + long_name(p);
  };
  // Positionals are added in CLI order (CLI11 fills them in creation order).
  auto find = [&](const std::string& n, bool* extra) -> const Param* {
    for (auto& p : m.params)
      if (p.name == n) return *extra = false, &p;
    for (auto& p : m.cli_extra)
      if (p.name == n) return *extra = true, &p;
    return nullptr;
  };
  for (auto& n : order) {
    bool extra = false;
    if (const Param* p = find(n, &extra)) add(*p, extra);
  }
  for (auto& p : m.params)
    if (!b.slots.count(p.name)) add(p, false);
  for (auto& p : m.cli_extra)
    if (!b.slots.count(p.name)) add(p, true);
}

}  // namespace

std::vector<std::string> positional_order(const schema::Method& m) {
  if (!m.cli_positionals.empty()) return m.cli_positionals;
  std::vector<std::string> out;
  if (!m.cli_transform.empty())
    if (const Transform* t = find_transform(m.cli_transform); t && !t->positionals.empty()) {
      for (auto& n : t->positionals) {
        const Param* p = m.find_param(n);
        if (!p)
          for (auto& e : m.cli_extra)
            if (e.name == n) p = &e;
        if (p && p->positional) out.push_back(n);
      }
    }
  for (auto* list : {&m.params, &m.cli_extra})
    for (auto& p : *list)
      if (p.positional && std::find(out.begin(), out.end(), p.name) == out.end()) out.push_back(p.name);
  return out;
}

const schema::Method* find_method(std::string_view name) {
  return schema::Registry::get().find(name, schema::kServiceSnap);
}

Result<json> parse_args(const schema::Method& m, const std::vector<std::string>& args_in,
                        const CliContext& ctx) {
  Built b;
  try {
    build(m, b);
  } catch (const CLI::Error& e) {
    return bad("schema of " + m.name + " cannot make a command line: " + e.what());
  }
  std::vector<std::string> args;
  for (auto& a : args_in) {
    auto it = b.two_letter.find(a);
    args.push_back(it != b.two_letter.end() ? it->second : a);
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them reversed
  try {
    b.app.parse(args);
  } catch (const CLI::ParseError& e) {
    return bad(m.name + ": " + e.what());
  }
  json params = json::object(), extras = json::object();
  for (auto& [name, s] : b.slots) {
    if (s.opt->count() == 0) continue;
    json v;
    if (s.flag) {
      // each() saw the raw values: "true" for a bare flag, else what was given.
      std::string last = s.vals.empty() ? "true" : s.vals.back();
      if (s.p->cli_store_false) v = false;  // rpc.py store_false (SPDK's --c2h-success)
      else if (last == "true" || last == "1" || last == "yes" || last == "on") v = true;
      else if (last == "false" || last == "0" || last == "no" || last == "off") v = false;
      else return bad("invalid value '" + last + "' for --" + long_name(*s.p) + ": expected bool");
    } else {
      auto r = convert(*s.p, s.p->type == Type::kArray ? s.vals : std::vector<std::string>{s.val});
      if (!r) return r.error();
      v = std::move(*r);
      auto chk = schema::check_value(*s.p, v);  // min/max/enum early, with a CLI message
      if (!chk) return bad(m.name + ": " + chk.error().message);
    }
    (s.extra ? extras : params)[name] = v;
  }
  if (!m.cli_transform.empty()) {
    const Transform* t = find_transform(m.cli_transform);
    if (!t) return bad(m.name + ": unknown CLI transform '" + m.cli_transform + "'");
    VDPU_TRY(t->fn(params, extras, ctx));
  }
  for (auto& p : m.params)
    if (p.required && !params.contains(p.name))
      return bad(m.name + ": missing required argument " +
                 (p.positional ? p.name : "--" + long_name(p)));
  return params;
}

std::string method_help(const schema::Method& m) {
  Built b;
  try {
    build(m, b);
  } catch (const CLI::Error& e) {
    return m.name + ": " + e.what() + "\n";
  }
  std::string h = b.app.help();
  for (auto& [two, lng] : b.two_letter) h += "  (" + two + " = " + lng + ")\n";
  return h;
}

Result<std::vector<std::string>> split_line(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) out.push_back(std::move(cur)), cur.clear(), in_word = false;
      ++i;
      continue;
    }
    if (c == '#' && !in_word) break;
    in_word = true;
    if (c == '\\' && i + 1 < line.size()) {
      cur += line[i + 1];
      i += 2;
    } else if (c == '\'') {
      size_t e = line.find('\'', i + 1);
      if (e == std::string_view::npos) return bad("unterminated ' quote");
      cur.append(line.substr(i + 1, e - i - 1));
      i = e + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          cur += line[i + 1];
          i += 2;
        } else if (line[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          cur += line[i++];
        }
      }
      if (!closed) return bad("unterminated \" quote");
    } else {
      cur += c;
      ++i;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

Result<LineCall> translate(const std::vector<std::string>& words, const CliContext& ctx) {
  if (words.empty()) return LineCall{};
  const std::string& name = words[0];
  if (name == "call") {
    if (words.size() < 2 || words.size() > 3) return bad("usage: call <method> ['{json params}']");
    LineCall c{words[1], json::object()};
    if (words.size() == 3) {
      c.params = json::parse(words[2], nullptr, false);
      if (c.params.is_discarded() || !c.params.is_object())
        return bad("call " + words[1] + ": params must be a JSON object, got: " + words[2]);
    }
    return c;
  }
  const schema::Method* m = find_method(name);
  if (!m) return bad("unknown command '" + name + "' (unknown method)");
  std::vector<std::string> args(words.begin() + 1, words.end());
  auto params = parse_args(*m, args, ctx);
  if (!params) return params.error();
  return LineCall{name, std::move(*params)};
}

Result<LineCall> parse_line(std::string_view line) {
  auto words = split_line(line);
  if (!words) return words.error();
  CliContext ctx;
  ctx.allow_stdin = false;
  return translate(*words, ctx);
}

}  // namespace vdpu::rpc::cli
