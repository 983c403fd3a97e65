// The two configuration files of the virtio-net controller:
//  - virtnet.conf (virtio-net spec §2): JSON, read at each start; every
//    parameter of the table with its default and range. Unknown keys, wrong
//    types and out-of-range values are errors naming the key
//    ("vf.max_queue_size: must be a power of 2 in [4, 32768]").
//  - the static emulation config (§1.1, the software counterpart of
//    mlxconfig): `KEY=VALUE` lines, `#` comments; unknown keys and bad values
//    are errors naming the line and the key.
//
// Thread: any (pure parsing; load_* read a file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "virtio/net/net_filter.h"

namespace vdpu::service::virtnet {

using virtio::net::MacAddr;

// §2 defaults.
inline constexpr const char* kDefaultConfPath = "/opt/mellanox/mlnx_virtnet/virtnet.conf";

struct PfDefaults {  // "static_pf" object
  std::optional<MacAddr> mac_base;   // pf_i = mac_base + i
  std::optional<uint64_t> features;  // feature bits offered by static PFs
};

struct VfDefaults {  // "vf" object
  std::optional<MacAddr> mac_base;   // vf_i = mac_base + i (modulo vfs_per_pf)
  std::optional<uint64_t> features;
  uint32_t vfs_per_pf = 0;           // mandatory with mac_base
  std::optional<uint16_t> max_queue_pairs;
  std::optional<uint16_t> max_queue_size;
};

struct VirtnetConf {
  std::string ib_dev_p0 = "mlx5_0";
  std::string ib_dev_p1 = "mlx5_1";
  std::string ib_dev_for_static_pf = "mlx5_0";
  std::optional<std::string> ib_dev_lag;  // effective "mlx5_bond_0" with is_lag
  PfDefaults static_pf;
  bool is_lag = false;
  bool single_port = false;
  bool recovery = true;              // "recovery": 0 disables
  uint32_t sf_pool_percent = 0;      // [0, 100]
  bool sf_pool_force_destroy = false;
  bool packed_vq = false;
  bool mrg_rxbuf = false;
  uint32_t dpa_core_start = 1;       // (0, 11)
  uint32_t dpa_core_end = 10;        // (dpa_core_start, 11)
  VfDefaults vf;
  std::optional<std::string> lm_prov;  // "kernel"

  // The emulation manager: ib_dev_lag (or mlx5_bond_0) with is_lag, else ib_dev_p0.
  std::string emulation_manager() const;
  // True when `dev` names one of the configured port devices.
  bool is_port_device(const std::string& dev) const;
};

// Parses virtnet.conf text. An empty/whitespace-only text is the defaults.
// Errors: kInvalidArgument "<key>: <reason>" (or "invalid JSON: ...").
Result<VirtnetConf> parse_virtnet_conf(std::string_view text);
// Reads and parses a file. A missing file at the default path is the
// defaults (`missing_ok`); otherwise kNotFound / kIo naming the path.
Result<VirtnetConf> load_virtnet_conf(const std::string& path, bool missing_ok);

// §1.1 static emulation config.
struct StaticConf {
  bool emulation_enable = true;   // VIRTIO_NET_EMULATION_ENABLE
  uint32_t num_pf = 0;            // VIRTIO_NET_EMULATION_NUM_PF [0, 31]
  uint32_t num_vf = 0;            // VIRTIO_NET_EMULATION_NUM_VF [0, 1008] (per PF)
  uint32_t num_msix = 64;         // VIRTIO_NET_EMULATION_NUM_MSIX [4, 2048]
  uint32_t num_vf_msix = 0;       // VIRTIO_NET_EMULATION_NUM_VF_MSIX [0, 2048]
  bool pci_switch_enable = true;  // PCI_SWITCH_EMULATION_ENABLE
  uint32_t pci_switch_num_port = 16;  // PCI_SWITCH_EMULATION_NUM_PORT [0, 31]
  bool per_pf_num_sf = false;     // PER_PF_NUM_SF
  uint32_t pf_total_sf = 64;      // PF_TOTAL_SF [0, 4096]
  uint32_t pf_sf_bar_size = 8;    // PF_SF_BAR_SIZE [0, 16]
  bool pf_bar2_enable = false;    // PF_BAR2_ENABLE (must be 0)
  bool sriov_en = false;          // SRIOV_EN
  bool exp_rom_pxe = false, exp_rom_uefi_arm = false, exp_rom_uefi_x86 = false;
  uint32_t legacy_num_vf_msix = 0;  // NUM_VF_MSIX (legacy)

  uint32_t max_hotplug() const { return emulation_enable && pci_switch_enable ? pci_switch_num_port : 0; }
  // MSI-X vectors of each VF (§1.1 / §15).
  uint32_t vf_msix() const;
};

// Defaults when no file is given: emulation on, no static PF, 16 hotplug
// ports, 64 MSI-X per PF.
// Errors: kInvalidArgument "line N: KEY: reason".
Result<StaticConf> parse_static_conf(std::string_view text);
Result<StaticConf> load_static_conf(const std::string& path);

// "0C:C4:7A:FF:22:93" (6 hex octets separated by ':'). kInvalidArgument.
Result<MacAddr> parse_mac(std::string_view s);
std::string format_mac(const MacAddr& m, bool upper = true);
// mac + n as a 48-bit number (wraps).
MacAddr mac_add(const MacAddr& m, uint64_t n);
// Hex ("0x1f", "1f") or decimal number string, or a JSON number.
Result<uint64_t> parse_hex_u64(std::string_view s);

}  // namespace vdpu::service::virtnet
