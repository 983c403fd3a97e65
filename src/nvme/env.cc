#include "nvme/env.h"

#include "runtime/runtime.h"

namespace vdpu::nvme {

namespace {
rt::Reactor& reactor_of(rt::Runtime& rt, uint32_t r) {
  return r == kMainReactor ? rt.main() : rt.reactor(r);
}
}  // namespace

uint32_t RuntimeEnv::num_data() const { return uint32_t(rt_.size()); }
uint32_t RuntimeEnv::pick() { return rt_.pick(); }

void RuntimeEnv::post(uint32_t reactor, std::function<void()> fn) {
  reactor_of(rt_, reactor).send_blocking(std::move(fn));
}

uint64_t RuntimeEnv::add_poller(uint32_t reactor, std::string name, std::function<bool()> fn,
                                uint64_t period_us) {
  return reactor_of(rt_, reactor)
      .add_poller(std::move(name),
                  [f = std::move(fn)] { return f() ? rt::Poll::kBusy : rt::Poll::kIdle; },
                  period_us);
}

void RuntimeEnv::remove_poller(uint32_t reactor, uint64_t id) {
  reactor_of(rt_, reactor).remove_poller(id);
}

uint64_t RuntimeEnv::now_ns() const { return rt::now_ns(); }

}  // namespace vdpu::nvme
