// Logging: spdlog underneath, SNAP's numeric levels on top
// (0 critical, 1 error, 2 warning, 3 info, 4 debug, 5 trace).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace vdpu::log {

void init(int snap_level = 3);
// Sets the level by SNAP number (0..5). Returns false when out of range.
bool set_snap_level(int level);
int snap_level();
// SPDK names: ERROR, WARNING, NOTICE, INFO, DEBUG.
bool set_spdk_level(const std::string& name);
std::string spdk_level();
// Debug log flags (SPDK's -L/--logflag, log_set_flag, log_clear_flag): a
// component's VDPU_DEBUGLOG messages are emitted only while its flag is on.
// "all" turns every flag on; clearing "all" turns every flag off; clearing
// one flag while "all" is on turns that flag off only. Any thread.
void enable_flag(const std::string& flag);
void disable_flag(const std::string& flag);
bool flag_enabled(const std::string& flag);

// A token bucket for messages caused by guests or peers: at most `burst`
// messages, refilled at `per_sec`. Lock-free; safe from any thread.
class RateLimit {
 public:
  RateLimit(uint32_t burst = 10, uint32_t per_sec = 1) : burst_(burst), per_sec_(per_sec) {}
  bool allow() noexcept;
  uint64_t suppressed() const noexcept { return suppressed_.load(std::memory_order_relaxed); }

 private:
  uint32_t burst_, per_sec_;
  std::atomic<int64_t> tokens_{-1};
  std::atomic<int64_t> last_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace vdpu::log

#define VDPU_CRIT(...) SPDLOG_CRITICAL(__VA_ARGS__)
#define VDPU_ERR(...) SPDLOG_ERROR(__VA_ARGS__)
#define VDPU_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define VDPU_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define VDPU_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
// A debug message of component `flag` (SPDK_DEBUGLOG): logged at debug level
// while the flag is enabled. Control plane only (the check takes a lock when
// any flag is set).
#define VDPU_DEBUGLOG(flag, ...)                                 \
  do {                                                           \
    if (::vdpu::log::flag_enabled(flag)) spdlog::debug(__VA_ARGS__); \
  } while (0)

// Log at most a few times per second per call site: for anything a guest or a
// network peer can trigger at will.
#define VDPU_WARN_RL(...)                                  \
  do {                                                     \
    static ::vdpu::log::RateLimit _vdpu_rl;                \
    if (_vdpu_rl.allow()) SPDLOG_WARN(__VA_ARGS__);        \
  } while (0)
