// Where an NVMe controller runs: the main (control-plane) reactor and the data
// reactors, seen through a small interface so that the device model runs on
// the real runtime (RuntimeEnv) or, in tests and fuzzers, on a deterministic
// single-threaded loop (tests/unit/nvme/test_host.h ManualEnv).
//
// Reactor ids: 0..num_data()-1 are data reactors, kMainReactor the main one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace vdpu::rt {
class Runtime;
}

namespace vdpu::nvme {

constexpr uint32_t kMainReactor = UINT32_MAX;

class Env {
 public:
  virtual ~Env() = default;
  // Any thread.
  virtual uint32_t num_data() const = 0;
  // Round-robin placement of a new queue group (Runtime::pick()).
  virtual uint32_t pick() = 0;
  // Queues fn to run on `reactor` (never inline). Never fails: the env pushes
  // back internally (control-plane volume only, never per I/O).
  virtual void post(uint32_t reactor, std::function<void()> fn) = 0;
  // On `reactor`'s own thread only: adds/removes a poller. The poller returns
  // true when it did work. period_us 0 = every loop iteration.
  virtual uint64_t add_poller(uint32_t reactor, std::string name, std::function<bool()> fn,
                              uint64_t period_us) = 0;
  virtual void remove_poller(uint32_t reactor, uint64_t id) = 0;
  // Monotonic clock.
  virtual uint64_t now_ns() const = 0;
};

// Env on the process runtime (rt::Runtime): data reactor i = runtime.reactor(i).
class RuntimeEnv final : public Env {
 public:
  explicit RuntimeEnv(rt::Runtime& rt) : rt_(rt) {}
  uint32_t num_data() const override;
  uint32_t pick() override;
  void post(uint32_t reactor, std::function<void()> fn) override;
  uint64_t add_poller(uint32_t reactor, std::string name, std::function<bool()> fn,
                      uint64_t period_us) override;
  void remove_poller(uint32_t reactor, uint64_t id) override;
  uint64_t now_ns() const override;

 private:
  rt::Runtime& rt_;
};

}  // namespace vdpu::nvme
