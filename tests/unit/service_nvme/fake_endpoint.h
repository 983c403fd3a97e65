// A fake NVMe Endpoint for the manager's unit tests: records the bound
// controller, the socket it was plugged on and lets the test pretend a host
// is connected. Unplug resets the controller as the real one does.
#pragma once

#include <map>
#include <string>

#include "nvme/controller.h"
#include "service/nvme/endpoint.h"

namespace vdpu::service::nvme::test {

struct FakeState {
  ::vdpu::nvme::Controller* bound = nullptr;
  std::string socket;  // "" = unplugged
  bool connected = false;
  uint16_t num_msix = 0;
  int plugs = 0, unplugs = 0, creates = 0;
  bool alive = false;
};

class FakeEndpoint final : public Endpoint {
 public:
  FakeEndpoint(FakeState* s, uint16_t msix) : s_(s) {
    s_->num_msix = msix;
    s_->alive = true;
    ++s_->creates;
  }
  ~FakeEndpoint() override {
    s_->alive = false;
    s_->socket.clear();
  }
  Status bind(::vdpu::nvme::Controller* c) override {
    if (s_->bound) return make_error(Errc::kBusy, "bound");
    s_->bound = c;
    return {};
  }
  void unbind() override { s_->bound = nullptr; }
  Status plug(const std::string& socket) override {
    if (fail_plug) return make_error(Errc::kIo, "plug failed");
    s_->socket = socket;
    ++s_->plugs;
    return {};
  }
  void unplug(std::function<void()> done) override {
    s_->socket.clear();
    s_->connected = false;
    ++s_->unplugs;
    if (s_->bound) return s_->bound->function_reset(std::move(done));
    done();
  }
  bool plugged() const override { return !s_->socket.empty(); }
  bool connected() const override { return s_->connected; }
  static inline bool fail_plug = false;

 private:
  FakeState* s_;
};

}  // namespace vdpu::service::nvme::test
