// What the NVMe manager drives to serve one controller to a host: an emulated
// PCIe NVMe function (nvme::NvmePciFunction) and its transport endpoint (a
// vfio-user server on the function's socket). The real implementation is
// endpoint_vfio.cc; unit tests use a fake, so the manager's rules are tested
// without sockets or guest memory.
//
// Threads: control plane (main reactor) only; `done` callbacks run there,
// possibly before the method returns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "pci/config_space.h"

namespace vdpu::nvme {
class Controller;
}

namespace vdpu::service::nvme {

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // Makes `c` serve the function's BAR0 (nullptr-free; not owned). The
  // controller must be disabled. Errors: kBusy (one is bound), kState.
  virtual Status bind(::vdpu::nvme::Controller* c) = 0;
  // Forgets the controller (it must have no live queues: reset/destroyed).
  virtual void unbind() = 0;
  // Serves the function on `socket` (vfio-user: listen there). Errors: kIo.
  virtual Status plug(const std::string& socket) = 0;
  // Stops listening, drops the host (the bound controller is reset: queues
  // freed, in-flight commands finished), unlinks the socket; then done.
  virtual void unplug(std::function<void()> done) = 0;
  virtual bool plugged() const = 0;
  // A host (vfio-user client) is connected.
  virtual bool connected() const = 0;
};

// What a function looks like to the host.
struct EndpointSpec {
  std::string name;        // for logs: "<ctrl>@<vuid>"
  std::string vuid;        // exposed in the VUID capability
  pci::Identity id;        // NVMe defaults (15b3:6001, class 010802)
  uint16_t num_msix = 32;  // MSI-X table size, 1..256
};

using EndpointFactory = std::function<Result<std::unique_ptr<Endpoint>>(const EndpointSpec&)>;

// The vfio-user endpoint (endpoint_vfio.cc) on the process runtime's main
// reactor; nullptr when that code is not linked.
EndpointFactory vfio_endpoint_factory();

}  // namespace vdpu::service::nvme
