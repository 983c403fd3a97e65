// The real Endpoint: an nvme::NvmePciFunction served by a vfio-user server on
// the process runtime's main reactor (spec snap-storage §1.4 software
// mapping: a function's endpoint is the socket <emu_dir>/<vuid>).
#include "base/log.h"
#include "nvme/pci_nvme.h"
#include "runtime/runtime.h"
#include "service/nvme/endpoint.h"
#include "transport/vfio_user/server.h"

namespace vdpu::service::nvme {
namespace {

class VfioEndpoint final : public Endpoint {
 public:
  VfioEndpoint(std::unique_ptr<::vdpu::nvme::NvmePciFunction> fn, rt::Reactor& r)
      : fn_(std::move(fn)), reactor_(r) {}
  ~VfioEndpoint() override {
    if (server_) server_->stop();
    server_.reset();
    fn_->unbind();
  }

  Status bind(::vdpu::nvme::Controller* c) override { return fn_->bind(c); }
  void unbind() override { fn_->unbind(); }

  Status plug(const std::string& socket) override {
    if (server_) return make_error(Errc::kState, "function " + fn_->name() + " is already plugged");
    auto s = std::make_unique<vfio_user::Server>(socket, *fn_, reactor_);
    VDPU_TRY(s->start());
    server_ = std::move(s);
    return {};
  }

  void unplug(std::function<void()> done) override {
    if (!server_) return done();
    // Drops the client: the function detaches (controller reset flow).
    server_->stop();
    // Then a function reset (queued behind that flow): config space, MSI-X
    // and registers back to power-on for the next host. Only then may the
    // server (the MSI-X sink until the detach finished) go.
    fn_->reset([this, done = std::move(done)] {
      server_.reset();
      done();
    });
  }

  bool plugged() const override { return server_ != nullptr; }
  bool connected() const override { return server_ && server_->connected(); }

 private:
  std::unique_ptr<::vdpu::nvme::NvmePciFunction> fn_;
  rt::Reactor& reactor_;
  std::unique_ptr<vfio_user::Server> server_;
};

}  // namespace

EndpointFactory vfio_endpoint_factory() {
  return [](const EndpointSpec& spec) -> Result<std::unique_ptr<Endpoint>> {
    rt::Runtime* rt = rt::Runtime::get();
    if (!rt) return make_error(Errc::kState, "no runtime");
    pci::FunctionOptions fo;
    fo.name = spec.name;
    fo.config = pci::nvme_config_options(spec.id, spec.num_msix, spec.vuid);
    auto f = ::vdpu::nvme::NvmePciFunction::create(std::move(fo));
    if (!f) return f.error();
    return std::unique_ptr<Endpoint>(new VfioEndpoint(std::move(*f), rt->main()));
  };
}

}  // namespace vdpu::service::nvme
