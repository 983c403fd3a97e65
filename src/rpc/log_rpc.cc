// Log methods: SPDK's log_set_level/log_get_level (+ print level),
// log_set_flag/log_clear_flag/log_get_flags, and SNAP's snap_log_level_set
// (snap-storage §3).
#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "base/log.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"

namespace vdpu::rpc {
namespace {

std::mutex g_mu;
// The SPDK name last set and the SNAP level it mapped to: log_get_level gives
// that name back while the level is unchanged (NOTICE and INFO share one).
std::string g_spdk_name;
int g_spdk_name_level = -1;
std::map<std::string, bool>& flags() {
  static std::map<std::string, bool> m;
  return m;
}

void log_set_level(const json& p, Responder r) {
  std::string lvl = p.value("level", "");
  std::transform(lvl.begin(), lvl.end(), lvl.begin(), [](unsigned char c) { return std::toupper(c); });
  if (!log::set_spdk_level(lvl))
    return r.error(kInvalidParams, "Invalid parameters: level must be one of ERROR, WARNING, "
                                   "NOTICE, INFO, DEBUG");
  std::lock_guard lk(g_mu);
  g_spdk_name = lvl;
  g_spdk_name_level = log::snap_level();
  r.result(true);
}

void log_get_level(const json&, Responder r) {
  std::lock_guard lk(g_mu);
  r.result(g_spdk_name_level == log::snap_level() ? g_spdk_name : log::spdk_level());
}

void log_set_flag(const json& p, Responder r) {
  set_log_flag(p.value("flag", ""), true);
  r.result(true);
}

void log_clear_flag(const json& p, Responder r) {
  set_log_flag(p.value("flag", ""), false);
  r.result(true);
}

// Every flag named so far (-L, log_set_flag, log_clear_flag) with whether it
// is enabled now (SPDK lists its registered flags the same way).
void log_get_flags(const json&, Responder r) {
  std::lock_guard lk(g_mu);
  json out = json::object();
  for (auto& [f, on] : flags()) out[f] = f == "all" ? on : log::flag_enabled(f);
  r.result(out);
}

// snap-storage §3: level 0 Critical .. 5 Trace (range checked by the schema).
void snap_log_level_set(const json& p, Responder r) {
  if (!log::set_snap_level(int(p.value("level", -1))))
    return r.error(kInvalidParams, "Invalid parameters: level must be 0..5");
  r.result(true);
}

}  // namespace

void set_log_flag(const std::string& flag, bool on) {
  std::lock_guard lk(g_mu);
  flags()[flag] = on;
  if (on) log::enable_flag(flag);
  else log::disable_flag(flag);
}

void register_log_methods() {
  register_method("log_set_level", log_set_level, kAny);
  register_method("log_get_level", log_get_level, kAny);
  register_method("log_set_print_level", log_set_level, kAny);
  register_method("log_get_print_level", log_get_level, kAny);
  register_method("log_set_flag", log_set_flag, kAny);
  register_method("log_clear_flag", log_clear_flag, kAny);
  register_method("log_get_flags", log_get_flags, kAny);
  register_method("snap_log_level_set", snap_log_level_set, kAny);
}

}  // namespace vdpu::rpc
