#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <set>

namespace vdpu::log {
namespace {
std::atomic<int> g_level{3};
std::mutex g_flags_mu;
std::set<std::string> g_flags;     // enabled one by one
std::set<std::string> g_cleared;   // cleared while "all" is on
bool g_all = false;
// Fast path of flag_enabled(): false while no flag and not "all" is set.
std::atomic<bool> g_any{false};

spdlog::level::level_enum to_spd(int l) {
  switch (l) {
    case 0: return spdlog::level::critical;
    case 1: return spdlog::level::err;
    case 2: return spdlog::level::warn;
    case 3: return spdlog::level::info;
    case 4: return spdlog::level::debug;
    default: return spdlog::level::trace;
  }
}
}  // namespace

void init(int snap_level) {
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = spdlog::stderr_color_mt("vdpu");
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%f] %^%l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::flush_on(spdlog::level::info);
  });
  set_snap_level(snap_level);
}

bool set_snap_level(int level) {
  if (level < 0 || level > 5) return false;
  g_level = level;
  spdlog::set_level(to_spd(level));
  return true;
}

int snap_level() { return g_level.load(); }

bool set_spdk_level(const std::string& name) {
  static const std::pair<const char*, int> kMap[] = {
      {"ERROR", 1}, {"WARNING", 2}, {"NOTICE", 3}, {"INFO", 3}, {"DEBUG", 4}};
  for (auto& [n, l] : kMap)
    if (name == n) return set_snap_level(l);
  return false;
}

std::string spdk_level() {
  switch (g_level.load()) {
    case 0:
    case 1: return "ERROR";
    case 2: return "WARNING";
    case 3: return "NOTICE";
    case 4: return "INFO";
    default: return "DEBUG";
  }
}

void enable_flag(const std::string& flag) {
  std::lock_guard lk(g_flags_mu);
  if (flag == "all") {
    g_all = true;
    g_cleared.clear();
  } else {
    g_flags.insert(flag);
    g_cleared.erase(flag);
  }
  g_any.store(true, std::memory_order_relaxed);
}

void disable_flag(const std::string& flag) {
  std::lock_guard lk(g_flags_mu);
  if (flag == "all") {
    g_all = false;
    g_flags.clear();
    g_cleared.clear();
  } else {
    g_flags.erase(flag);
    if (g_all) g_cleared.insert(flag);
  }
  g_any.store(g_all || !g_flags.empty(), std::memory_order_relaxed);
}

bool flag_enabled(const std::string& flag) {
  if (!g_any.load(std::memory_order_relaxed)) return false;
  std::lock_guard lk(g_flags_mu);
  return g_flags.count(flag) || (g_all && !g_cleared.count(flag));
}

bool RateLimit::allow() noexcept {
  using namespace std::chrono;
  int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  int64_t last = last_ns_.load(std::memory_order_relaxed);
  int64_t tokens = tokens_.load(std::memory_order_relaxed);
  if (tokens < 0) tokens = burst_;
  int64_t refill = (now - last) / 1'000'000'000 * per_sec_;
  if (refill > 0) {
    tokens = std::min<int64_t>(burst_, tokens + refill);
    last_ns_.store(now, std::memory_order_relaxed);
  }
  if (tokens > 0) {
    tokens_.store(tokens - 1, std::memory_order_relaxed);
    return true;
  }
  tokens_.store(tokens, std::memory_order_relaxed);
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace vdpu::log
