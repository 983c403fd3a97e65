// The reactor: one thread, one core, a loop over pollers, messages, timers and
// file descriptors. Everything the data path owns belongs to exactly one
// reactor and is touched only from its thread; other threads reach it by
// message (send). Pollers report busy or idle; in event mode an idle reactor
// sleeps in epoll until a registered fd, a message or a timer wakes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/mpmc_ring.h"

namespace vdpu::rt {

enum class Poll : int { kIdle = 0, kBusy = 1 };

using Msg = std::function<void()>;
using PollFn = std::function<Poll()>;
// Called before the reactor sleeps (event mode): arm notifications (e.g.
// clear VRING_USED_F_NO_NOTIFY) and re-check; return false when work is
// already pending and the reactor must not sleep.
using PrepareSleepFn = std::function<bool()>;
using FdFn = std::function<void(uint32_t events)>;
using PollerId = uint64_t;

struct ReactorStats {
  std::atomic<uint64_t> busy_iterations{0};
  std::atomic<uint64_t> idle_iterations{0};
  std::atomic<uint64_t> sleeps{0};
  std::atomic<uint64_t> messages{0};
};

class Reactor {
 public:
  // index: position in the runtime; core: CPU to pin to (-1: no pinning).
  Reactor(uint32_t index, int core, bool event_mode, size_t msg_capacity = 4096);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  uint32_t index() const { return index_; }
  int core() const { return core_; }
  bool event_mode() const { return event_mode_; }
  // True on this reactor's own thread.
  bool is_current() const;

  // --- any thread ---
  // Queues fn to run on this reactor. Returns false if the queue is full:
  // the caller keeps ownership of the work and retries (push back).
  [[nodiscard]] bool send(Msg&& fn) noexcept;
  // Retries send until it succeeds (control plane only).
  void send_blocking(Msg&& fn);
  // Asks the loop to return after it drains its messages.
  void request_stop();
  // Switches busy-polling/event mode at run time.
  void set_event_mode(bool on) { event_mode_ = on; }
  // Event mode: idle loop iterations (each polls the fds) before sleeping.
  // Data reactors spin a while to keep wake-up latency off the data path;
  // the control-plane reactor sleeps at once (a periodic admin poller must
  // not turn into a busy loop of epoll_wait calls on a shared core).
  void set_idle_spins(uint32_t n) { idle_spins_ = n; }

  // --- owning thread only ---
  // period_us == 0: called every iteration; otherwise every period_us.
  PollerId add_poller(std::string name, PollFn fn, uint64_t period_us = 0,
                      PrepareSleepFn prepare_sleep = nullptr);
  void remove_poller(PollerId id);
  // One-shot timer.
  PollerId add_timer(uint64_t delay_us, Msg fn);
  // Watches fd (EPOLLIN etc). In busy mode fds are checked every few
  // iterations; in event mode they also wake the reactor.
  Status add_fd(int fd, uint32_t events, FdFn fn);
  void remove_fd(int fd);
  // Registers an fd whose readability means "a poller may have work" (a kick
  // eventfd). It only wakes a sleeping reactor; the poller drains it.
  Status add_wake_fd(int fd);
  void remove_wake_fd(int fd);

  // Runs the loop on the calling thread until request_stop().
  void run();
  // Spawns a thread (pinned to core()) running run().
  Status start_thread();
  void join();

  const ReactorStats& stats() const { return stats_; }
  size_t num_pollers() const { return pollers_.size(); }

 private:
  struct Poller {
    PollerId id;
    std::string name;
    PollFn fn;
    PrepareSleepFn prepare_sleep;
    uint64_t period_ns;
    uint64_t next_ns;
    bool removed = false;
    bool oneshot = false;
  };
  struct FdEntry {
    int fd;
    FdFn fn;
    bool wake_only;
  };

  bool drain_messages();
  bool run_timed(uint64_t now);
  bool poll_fds(int timeout_ms);
  void sleep_until_work();
  void compact();
  uint64_t next_deadline() const;

  const uint32_t index_;
  const int core_;
  std::atomic<bool> event_mode_;
  uint32_t idle_spins_;
  int epfd_ = -1;
  int msg_efd_ = -1;
  std::thread thread_;
  std::atomic<std::thread::id> owner_{};
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<bool> sleeping_{false};
  MpmcRing<Msg> msgs_;
  std::vector<std::unique_ptr<Poller>> pollers_;  // period 0
  std::vector<std::unique_ptr<Poller>> timed_;
  std::vector<std::unique_ptr<FdEntry>> fds_;
  PollerId next_id_ = 1;
  bool dirty_ = false;
  ReactorStats stats_;
};

// The reactor running on this thread, or nullptr.
Reactor* this_reactor();

uint64_t now_ns();

}  // namespace vdpu::rt
