#include "runtime/runtime.h"

#include "base/log.h"

namespace vdpu::rt {
namespace {
Runtime* g_runtime = nullptr;
}

Runtime* Runtime::get() { return g_runtime; }

Runtime::Runtime(Options opts) : opts_(std::move(opts)) {
  if (opts_.cores.empty()) opts_.cores = {0};
  main_ = std::make_unique<Reactor>(UINT32_MAX, -1, /*event_mode=*/true);
  main_->set_idle_spins(1);  // the control plane sleeps as soon as it is idle
  for (size_t i = 0; i < opts_.cores.size(); ++i)
    reactors_.push_back(
        std::make_unique<Reactor>(uint32_t(i), opts_.pin ? int(opts_.cores[i]) : -1, opts_.event_mode));
  g_runtime = this;
}

Runtime::~Runtime() {
  stop();
  for (auto& r : reactors_) r->join();
  if (g_runtime == this) g_runtime = nullptr;
}

Status Runtime::start() {
  VDPU_INFO("Total cores available: {}", reactors_.size());
  for (auto& r : reactors_) {
    VDPU_TRY(r->start_thread());
    VDPU_INFO("Reactor started on core {}", r->core());
  }
  started_ = true;
  return {};
}

void Runtime::run_main() {
  main_->run();
  for (auto& r : reactors_) {
    r->request_stop();
    r->join();
  }
}

void Runtime::stop() {
  for (auto& r : reactors_) r->request_stop();
  main_->request_stop();
}

}  // namespace vdpu::rt
