// Identify (Base 2.0 §5.17) data structures built from a subsystem's
// namespaces, shared by every NVMe controller model: the PCIe controller
// (controller.h) and the NVMe-oF controllers of transport/nvmf_tcp.
//
// Threads: the caller's (control plane); reads namespaces and bdev geometry.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nvme/spec.h"
#include "nvme/subsystem.h"

namespace vdpu::nvme {

struct IdentifyContext {
  const Subsystem& subsys;
  const std::vector<Namespace*>& active;  // namespaces the controller exposes
  // Fills the Identify Controller structure (CNS 01h); buf is zeroed.
  std::function<void(IdentifyController&)> build_ctrl;
};

// Builds the 4096-byte Identify data for cmd (CNS in CDW10, CSI in CDW11,
// NSID). Returns sc::kSuccess or the spec's status (kInvalidField,
// kInvalidNamespaceOrFormat, with DNR).
uint16_t build_identify(const SqEntry& cmd, const IdentifyContext& ctx, uint8_t* buf);

// Identify Namespace (NVM 1.0 Figure 97) of an active namespace.
void fill_identify_ns(const Namespace& ns, IdentifyNamespace& id);

}  // namespace vdpu::nvme
