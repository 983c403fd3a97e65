#include "runtime/reactor.h"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/log.h"

namespace vdpu::rt {
namespace {
thread_local Reactor* t_reactor = nullptr;
// Iterations without work before an event-mode reactor tries to sleep.
constexpr uint32_t kIdleSpinsBeforeSleep = 2000;
// In busy mode, fds are polled (epoll_wait 0) once every this many iterations.
constexpr uint32_t kFdPollInterval = 256;
}  // namespace

Reactor* this_reactor() { return t_reactor; }

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

Reactor::Reactor(uint32_t index, int core, bool event_mode, size_t msg_capacity)
    : index_(index), core_(core), event_mode_(event_mode), idle_spins_(kIdleSpinsBeforeSleep),
      msgs_(msg_capacity) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  msg_efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the message eventfd
  epoll_ctl(epfd_, EPOLL_CTL_ADD, msg_efd_, &ev);
}

Reactor::~Reactor() {
  join();
  if (msg_efd_ >= 0) close(msg_efd_);
  if (epfd_ >= 0) close(epfd_);
}

bool Reactor::is_current() const { return t_reactor == this; }

bool Reactor::send(Msg&& fn) noexcept {
  if (!msgs_.try_push(std::move(fn))) return false;
  // Dekker with sleep_until_work(): either the reactor sees the message when
  // it re-checks the queue, or we see sleeping_ and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t r = write(msg_efd_, &one, sizeof(one));
  }
  return true;
}

void Reactor::send_blocking(Msg&& fn) {
  // MpmcRing moves from fn only on success, so fn stays valid across retries.
  while (!send(std::move(fn))) std::this_thread::yield();
}

void Reactor::request_stop() {
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(msg_efd_, &one, sizeof(one));
}

PollerId Reactor::add_poller(std::string name, PollFn fn, uint64_t period_us,
                             PrepareSleepFn prepare_sleep) {
  auto p = std::make_unique<Poller>();
  p->id = next_id_++;
  p->name = std::move(name);
  p->fn = std::move(fn);
  p->prepare_sleep = std::move(prepare_sleep);
  p->period_ns = period_us * 1000;
  p->next_ns = now_ns() + p->period_ns;
  PollerId id = p->id;
  (period_us ? timed_ : pollers_).push_back(std::move(p));
  return id;
}

PollerId Reactor::add_timer(uint64_t delay_us, Msg fn) {
  PollerId id = add_poller(
      "timer", [f = std::move(fn)]() mutable { f(); return Poll::kBusy; }, delay_us ? delay_us : 1);
  timed_.back()->oneshot = true;
  return id;
}

void Reactor::remove_poller(PollerId id) {
  for (auto* v : {&pollers_, &timed_})
    for (auto& p : *v)
      if (p->id == id) {
        p->removed = true;
        dirty_ = true;
      }
}

Status Reactor::add_fd(int fd, uint32_t events, FdFn fn) {
  auto e = std::make_unique<FdEntry>(FdEntry{fd, std::move(fn), false});
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = e.get();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return make_error(Errc::kIo, std::string("epoll_ctl: ") + strerror(errno));
  fds_.push_back(std::move(e));
  return {};
}

Status Reactor::add_wake_fd(int fd) {
  auto e = std::make_unique<FdEntry>(FdEntry{fd, nullptr, true});
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = e.get();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return make_error(Errc::kIo, std::string("epoll_ctl: ") + strerror(errno));
  fds_.push_back(std::move(e));
  return {};
}

void Reactor::remove_fd(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  for (auto& e : fds_)
    if (e && e->fd == fd) {
      e->fd = -1;  // freed in compact(): the entry may be running right now
      dirty_ = true;
    }
}

void Reactor::remove_wake_fd(int fd) { remove_fd(fd); }

bool Reactor::drain_messages() {
  Msg m;
  uint32_t n = 0;
  // Bounded so that a flood of messages cannot starve pollers.
  while (n < 64 && msgs_.try_pop(m)) {
    m();
    m = nullptr;
    ++n;
  }
  if (n) stats_.messages.fetch_add(n, std::memory_order_relaxed);
  return n != 0;
}

bool Reactor::run_timed(uint64_t now) {
  bool busy = false;
  for (size_t i = 0; i < timed_.size(); ++i) {
    Poller* p = timed_[i].get();
    if (p->removed || now < p->next_ns) continue;
    p->next_ns = now + p->period_ns;
    if (p->oneshot) {
      p->removed = true;
      dirty_ = true;
    }
    busy |= p->fn() == Poll::kBusy;
  }
  return busy;
}

bool Reactor::poll_fds(int timeout_ms) {
  epoll_event evs[32];
  int n = epoll_wait(epfd_, evs, 32, timeout_ms);
  bool busy = false;
  for (int i = 0; i < n; ++i) {
    auto* e = static_cast<FdEntry*>(evs[i].data.ptr);
    if (!e) {  // message eventfd
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(msg_efd_, &v, sizeof(v));
      continue;
    }
    if (e->fd < 0 || e->wake_only) continue;
    e->fn(evs[i].events);
    busy = true;
  }
  return busy;
}

uint64_t Reactor::next_deadline() const {
  uint64_t d = UINT64_MAX;
  for (auto& p : timed_)
    if (!p->removed) d = std::min(d, p->next_ns);
  return d;
}

void Reactor::sleep_until_work() {
  for (auto& p : pollers_)
    if (!p->removed && (!p->prepare_sleep || !p->prepare_sleep())) return;
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!msgs_.empty() || stop_.load()) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  int timeout_ms = -1;
  uint64_t d = next_deadline();
  if (d != UINT64_MAX) {
    uint64_t now = now_ns();
    timeout_ms = d <= now ? 0 : int(std::min<uint64_t>((d - now + 999'999) / 1'000'000, 1000));
  }
  stats_.sleeps.fetch_add(1, std::memory_order_relaxed);
  poll_fds(timeout_ms);
  sleeping_.store(false, std::memory_order_relaxed);
}

void Reactor::compact() {
  auto dead = [](const std::unique_ptr<Poller>& p) { return p->removed; };
  pollers_.erase(std::remove_if(pollers_.begin(), pollers_.end(), dead), pollers_.end());
  timed_.erase(std::remove_if(timed_.begin(), timed_.end(), dead), timed_.end());
  fds_.erase(std::remove_if(fds_.begin(), fds_.end(), [](auto& e) { return e->fd < 0; }), fds_.end());
  dirty_ = false;
}

void Reactor::run() {
  t_reactor = this;
  owner_.store(std::this_thread::get_id());
  uint32_t idle = 0;
  uint32_t iter = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    bool busy = drain_messages();
    // Index loop: a poller may add pollers (vector may grow).
    for (size_t i = 0; i < pollers_.size(); ++i) {
      Poller* p = pollers_[i].get();
      if (!p->removed) busy |= p->fn() == Poll::kBusy;
    }
    if (!timed_.empty()) busy |= run_timed(now_ns());
    if (!fds_.empty() && (++iter % kFdPollInterval == 0 || event_mode_.load(std::memory_order_relaxed)))
      busy |= poll_fds(0);
    if (dirty_) compact();
    if (busy) {
      idle = 0;
      stats_.busy_iterations.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    stats_.idle_iterations.fetch_add(1, std::memory_order_relaxed);
    if (event_mode_.load(std::memory_order_relaxed) && ++idle >= idle_spins_) {
      sleep_until_work();
      idle = 0;
    }
  }
  // Drain what was queued before stop so that no reply is lost.
  while (drain_messages()) {
  }
  t_reactor = nullptr;
}

Status Reactor::start_thread() {
  thread_ = std::thread([this] {
    if (core_ >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(core_, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        VDPU_WARN("reactor {}: cannot pin to core {}", index_, core_);
    }
    char name[16];
    snprintf(name, sizeof(name), "reactor_%d", core_);
    pthread_setname_np(pthread_self(), name);
    run();
  });
  return {};
}

void Reactor::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace vdpu::rt
