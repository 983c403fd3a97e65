// The runtime: the reactors of the cpumask plus the main (control-plane)
// reactor, with round-robin placement for poll groups and helpers to run
// work on a reactor from the control plane.
#pragma once

#include <future>
#include <memory>
#include <type_traits>
#include <vector>

#include "runtime/reactor.h"

namespace vdpu::rt {

struct Options {
  std::vector<uint32_t> cores{0};  // one data reactor per core
  bool event_mode = false;         // data reactors sleep when idle
  bool pin = true;
};

class Runtime {
 public:
  explicit Runtime(Options opts);
  ~Runtime();

  // Starts the data reactors on their threads. The main reactor runs on the
  // caller of run_main().
  Status start();
  // Runs the control-plane loop until stop(). Returns after all reactors have
  // stopped and joined.
  void run_main();
  // Any thread: stops the main loop and every reactor.
  void stop();

  size_t size() const { return reactors_.size(); }
  Reactor& reactor(size_t i) { return *reactors_[i]; }
  Reactor& main() { return *main_; }
  const Options& options() const { return opts_; }

  // Round-robin placement: the next reactor index for a new queue/connection.
  uint32_t pick() { return rr_.fetch_add(1, std::memory_order_relaxed) % reactors_.size(); }

  // Runs fn on reactor i and waits for its result. Control plane only; runs
  // inline when already on reactor i. Never call from a data reactor onto
  // another one (that would stall its data path).
  template <class F>
  auto call(size_t i, F&& fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    Reactor& r = *reactors_[i];
    if (r.is_current()) return fn();
    std::promise<R> p;
    auto fut = p.get_future();
    r.send_blocking([&] {
      if constexpr (std::is_void_v<R>) {
        fn();
        p.set_value();
      } else {
        p.set_value(fn());
      }
    });
    return fut.get();
  }

  // The runtime of this process (set by the constructor; one per process).
  static Runtime* get();

 private:
  Options opts_;
  std::unique_ptr<Reactor> main_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::atomic<uint32_t> rr_{0};
  bool started_ = false;
};

}  // namespace vdpu::rt
