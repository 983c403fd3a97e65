#include "pci/config_space.h"

#include <algorithm>
#include <cstring>

#include "pci/pci_regs.h"

namespace vdpu::pci {
namespace {
bool pow2(uint64_t v) { return v && !(v & (v - 1)); }
bool overlaps(uint32_t a, size_t alen, uint32_t b, size_t blen) {
  return a < b + blen && b < a + alen;
}
}  // namespace

std::optional<std::string> ConfigSpace::validate(const ConfigOptions& o) {
  for (int i = 0; i < 6; ++i) {
    const BarDesc& b = o.bars[i];
    if (!b.size) continue;
    if (!pow2(b.size)) return "BAR" + std::to_string(i) + " size is not a power of two";
    if (b.io && (b.is64 || b.size < 4 || b.size > 256)) return "BAR" + std::to_string(i) + " bad I/O BAR";
    if (!b.io && b.size < 16) return "BAR" + std::to_string(i) + " smaller than 16 bytes";
    if (!b.is64 && b.size > (1ull << 31)) return "BAR" + std::to_string(i) + " too large for 32 bits";
    if (b.is64 && (i == 5 || o.bars[i + 1].size)) return "64-bit BAR" + std::to_string(i) + " needs the next slot free";
    if (i > 0 && o.bars[i - 1].is64 && o.bars[i - 1].size) return "BAR" + std::to_string(i) + " is the upper half of a 64-bit BAR";
  }
  const MsixLayout& m = o.msix;
  if (m.vectors) {
    if (m.vectors > 2048) return "more than 2048 MSI-X vectors";
    if (m.table_bar > 5 || m.pba_bar > 5) return "MSI-X BIR out of range";
    const BarDesc& tb = o.bars[m.table_bar];
    const BarDesc& pb = o.bars[m.pba_bar];
    if (!tb.size || tb.io || !pb.size || pb.io) return "MSI-X table/PBA BAR not an implemented memory BAR";
    uint64_t tbytes = uint64_t(m.vectors) * kMsixEntrySize, pbytes = ((m.vectors + 63) / 64) * 8ull;
    if ((m.table_offset & 7) || (m.pba_offset & 7)) return "MSI-X table/PBA offset not 8-byte aligned";
    if (m.table_offset + tbytes > tb.size) return "MSI-X table does not fit in its BAR";
    if (m.pba_offset + pbytes > pb.size) return "MSI-X PBA does not fit in its BAR";
    if (m.table_bar == m.pba_bar && overlaps(m.table_offset, tbytes, m.pba_offset, pbytes))
      return "MSI-X table and PBA overlap";
  }
  if (o.vuid.size() > 200) return "VUID longer than 200 characters";
  if (o.sriov && o.sriov->total_vfs == 0) return "SR-IOV with TotalVFs 0";
  return std::nullopt;
}

ConfigSpace::ConfigSpace(const ConfigOptions& o) : opts_(o) {
  init();
  reset_ = data_;
}

void ConfigSpace::set16(uint32_t off, uint16_t v, uint16_t wm, uint16_t w1c) {
  put_le16(&data_[off], v);
  put_le16(&wmask_[off], wm);
  put_le16(&w1cmask_[off], w1c);
}
void ConfigSpace::set32(uint32_t off, uint32_t v, uint32_t wm, uint32_t w1c) {
  put_le32(&data_[off], v);
  put_le32(&wmask_[off], wm);
  put_le32(&w1cmask_[off], w1c);
}
uint16_t ConfigSpace::get16(uint32_t off) const { return le16(&data_[off]); }
uint32_t ConfigSpace::get32(uint32_t off) const { return le32(&data_[off]); }

uint16_t ConfigSpace::add_cap(uint8_t id, uint16_t size) {
  uint16_t off = next_cap_;
  data_[off] = id;
  data_[off + 1] = 0;
  if (last_cap_)
    data_[last_cap_ + 1] = uint8_t(off);
  else
    data_[kCapabilityList] = uint8_t(off);
  last_cap_ = off;
  next_cap_ = uint16_t((off + size + 3) & ~3u);
  return off;
}

void ConfigSpace::init() {
  const Identity& id = opts_.id;
  bool has_io = false;
  for (const auto& b : opts_.bars) has_io |= b.size && b.io;
  set16(kVendorId, id.vendor_id);
  set16(kDeviceId, id.device_id);
  // PCI 3.0 §6.2.2: only implemented Command bits are writable.
  set16(kCommand, 0,
        uint16_t((has_io ? kCommandIo : 0) | kCommandMemory | kCommandMaster | kCommandParity |
                 kCommandSerr | kCommandIntxDisable));
  // §6.2.3: error bits are RW1C; Capabilities List is read-only 1.
  set16(kStatus, kStatusCapList, 0, kStatusRw1cMask);
  data_[kRevisionId] = id.revision;
  data_[kClassProg] = uint8_t(id.class_code);
  data_[kClassProg + 1] = uint8_t(id.class_code >> 8);
  data_[kClassProg + 2] = uint8_t(id.class_code >> 16);
  wmask_[kCacheLineSize] = 0xff;
  data_[kHeaderType] = 0;  // type 0, single function
  for (int i = 0; i < 6; ++i) {
    const BarDesc& b = opts_.bars[i];
    uint32_t off = kBaseAddress0 + 4 * i;
    if (!b.size) continue;
    // §6.2.5.1: low bits read-only type bits; address bits below the size are 0,
    // so writing all-ones reads back the size mask.
    uint64_t addr_mask = ~(b.size - 1);
    if (b.io) {
      set32(off, kBarSpaceIo, uint32_t(addr_mask) & ~0x3u);
    } else {
      set32(off, (b.is64 ? kBarMemType64 : 0) | (b.prefetchable ? kBarMemPrefetch : 0),
            uint32_t(addr_mask) & ~0xfu);
      if (b.is64) set32(off + 4, 0, uint32_t(addr_mask >> 32));
    }
  }
  set16(kSubsystemVendorId, id.subsystem_vendor_id);
  set16(kSubsystemId, id.subsystem_id);
  wmask_[kInterruptLine] = 0xff;
  data_[kInterruptPin] = 0;  // no INTx

  // Power management (PCI PM 1.2 §3.2): version 3, D0 only states D0/D3hot.
  pm_ = add_cap(kCapIdPm, kPmSizeof);
  set16(pm_ + kPmPmc, 0x0003);
  set16(pm_ + kPmCtrl, kPmCtrlNoSoftReset, kPmCtrlStateMask, 0x8000);

  // PCI Express endpoint (PCIe 4.0 §7.5.3).
  exp_ = add_cap(kCapIdExp, kExpSizeof);
  set16(exp_ + kExpFlags, kExpFlagsVersion2 | kExpTypeEndpoint);
  // DevCap: Max Payload 256B, Role-Based Error Reporting, FLR capable.
  set32(exp_ + kExpDevCap, 0x1 | (1u << 15) | (opts_.flr ? kExpDevCapFlr : 0));
  // DevCtl: bit 15 (Initiate FLR) is write-only and reads 0 (§7.5.3.4).
  set16(exp_ + kExpDevCtl, 0x2810, 0x7fff);
  set16(exp_ + kExpDevSta, 0, 0, kExpDevStaRw1cMask);
  set32(exp_ + kExpLnkCap, 0x1 | (1u << 4));  // 2.5 GT/s, x1
  set16(exp_ + kExpLnkCtl, 0, 0x0040);
  set16(exp_ + kExpLnkSta, 0x1 | (1u << 4));
  set32(exp_ + 0x2c, 0x2);  // LnkCap2: 2.5 GT/s supported

  if (opts_.msix.vectors) {
    const MsixLayout& m = opts_.msix;
    msix_ = add_cap(kCapIdMsix, kMsixSizeof);
    // §6.8.2.3: Table Size is N-1 (RO); Enable and Function Mask RW.
    set16(msix_ + kMsixFlags, uint16_t(m.vectors - 1), kMsixFlagsEnable | kMsixFlagsMaskAll);
    set32(msix_ + kMsixTable, m.table_offset | m.table_bar);
    set32(msix_ + kMsixPba, m.pba_offset | m.pba_bar);
  }

  if (!opts_.vuid.empty()) {
    build_vpd();
    vpd_ = add_cap(kCapIdVpd, kVpdSizeof);
    set16(vpd_ + kVpdAddr, 0, 0xffff);
    set32(vpd_ + kVpdData, 0);
    // Vendor-specific capability (PCI 3.0 §6.8.4): id, next, length, "VU=<vuid>".
    std::string body = "VU=" + opts_.vuid;
    uint16_t len = uint16_t(3 + body.size() + 1);
    vendor_ = add_cap(kCapIdVendor, len);
    data_[vendor_ + 2] = uint8_t(len);
    std::memcpy(&data_[vendor_ + 3], body.data(), body.size());
  }

  if (opts_.sriov) {
    const SriovLayout& s = *opts_.sriov;
    sriov_ = 0x100;
    set32(sriov_, kExtCapIdSriov | (1u << 16));  // version 1, next 0
    set32(sriov_ + kSriovCap, 0);
    set16(sriov_ + kSriovCtrl, 0, kSriovCtrlVfe | kSriovCtrlMse | 0x0010);
    set16(sriov_ + kSriovInitialVf, s.total_vfs);
    set16(sriov_ + kSriovTotalVf, s.total_vfs);
    set16(sriov_ + kSriovNumVf, 0, 0xffff);
    set16(sriov_ + kSriovVfOffset, s.vf_offset);
    set16(sriov_ + kSriovVfStride, s.vf_stride);
    set16(sriov_ + kSriovVfDid, s.vf_device_id ? s.vf_device_id : opts_.id.device_id);
    set32(sriov_ + kSriovSupPgsize, 0x1);
    set32(sriov_ + kSriovSysPgsize, 0x1, 0xffffffff);
  }
}

// VPD (PCI 3.0 Appendix I): Identifier String, VPD-R with PN, VU (the VUID,
// shown by `lspci -vvv` as "[VU] Vendor specific") and RV (checksum), End.
void ConfigSpace::build_vpd() {
  std::string& v = vpd_image_;
  const std::string ident = "vdpu emulated PCIe function";
  v.push_back(char(0x82));
  v.push_back(char(ident.size() & 0xff));
  v.push_back(char(ident.size() >> 8));
  v += ident;
  std::string ro;
  auto kw = [&ro](const char* k, const std::string& val) {
    ro += k;
    ro.push_back(char(val.size()));
    ro += val;
  };
  kw("PN", "vdpu");
  kw("VU", opts_.vuid);
  size_t ro_len = ro.size() + 4;  // + "RV" len checksum
  v.push_back(char(0x90));
  v.push_back(char(ro_len & 0xff));
  v.push_back(char(ro_len >> 8));
  v += ro;
  v += "RV";
  v.push_back(char(1));
  uint8_t sum = 0;
  for (char c : v) sum = uint8_t(sum + uint8_t(c));
  v.push_back(char(uint8_t(-sum)));  // all bytes up to here sum to 0
  v.push_back(char(0x78));
}

void ConfigSpace::vpd_address_written() {
  uint16_t a = get16(vpd_ + kVpdAddr);
  if (a & kVpdAddrF) {
    // VPD write request: VPD is read-only; complete it (F=0) without effect.
    set16(vpd_ + kVpdAddr, a & ~kVpdAddrF, 0xffff);
    return;
  }
  uint32_t addr = a & 0x7fff, val = 0;
  for (int i = 0; i < 4; ++i)
    if (addr + i < vpd_image_.size()) val |= uint32_t(uint8_t(vpd_image_[addr + i])) << (8 * i);
  put_le32(&data_[vpd_ + kVpdData], val);
  set16(vpd_ + kVpdAddr, uint16_t(addr | kVpdAddrF), 0xffff);  // data ready
}

void ConfigSpace::read(uint32_t offset, std::span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t o = uint64_t(offset) + i;
    out[i] = o < data_.size() ? data_[o] : 0;
  }
}

void ConfigSpace::write(uint32_t offset, std::span<const uint8_t> in) {
  uint16_t old_cmd = get16(kCommand);
  uint16_t old_msix = msix_ ? get16(msix_ + kMsixFlags) : 0;
  uint16_t old_sriov_ctrl = sriov_ ? get16(sriov_ + kSriovCtrl) : 0;
  uint16_t old_numvf = sriov_ ? get16(sriov_ + kSriovNumVf) : 0;
  bool flr = false;
  for (size_t i = 0; i < in.size(); ++i) {
    uint64_t o = uint64_t(offset) + i;
    if (o >= data_.size()) break;
    uint8_t v = in[i];
    data_[o] = uint8_t((data_[o] & ~wmask_[o]) | (v & wmask_[o]));
    data_[o] &= uint8_t(~(v & w1cmask_[o]));
    // PCIe 4.0 §7.5.3.4: writing 1 to Initiate FLR starts an FLR; reads 0.
    if (exp_ && opts_.flr && o == uint64_t(exp_ + kExpDevCtl + 1) && (v & 0x80)) flr = true;
  }
  auto touched = [&](uint32_t reg, size_t len) { return overlaps(offset, in.size(), reg, len); };
  if (vpd_ && touched(vpd_ + kVpdAddr, 2)) vpd_address_written();
  if (sriov_ && (touched(sriov_ + kSriovCtrl, 2) || touched(sriov_ + kSriovNumVf, 2))) {
    uint16_t ctrl = get16(sriov_ + kSriovCtrl), numvf = get16(sriov_ + kSriovNumVf);
    // PCIe 4.0 §9.3.3.7: NumVFs may change only while VF Enable is clear, and
    // a value above TotalVFs is not accepted.
    if ((old_sriov_ctrl & kSriovCtrlVfe) || numvf > opts_.sriov->total_vfs) {
      put_le16(&data_[sriov_ + kSriovNumVf], old_numvf);
      numvf = old_numvf;
    }
    if ((ctrl ^ old_sriov_ctrl) & kSriovCtrlVfe) {
      if (on_sriov) on_sriov(ctrl & kSriovCtrlVfe, numvf);
    }
  }
  if (get16(kCommand) != old_cmd && on_command) on_command(get16(kCommand));
  if (msix_) {
    uint16_t f = get16(msix_ + kMsixFlags);
    if (f != old_msix && on_msix_control)
      on_msix_control(f & kMsixFlagsEnable, f & kMsixFlagsMaskAll);
  }
  if (flr && on_flr) on_flr();
}

void ConfigSpace::reset() { data_ = reset_; }

uint16_t ConfigSpace::command() const { return get16(kCommand); }
bool ConfigSpace::msix_enabled() const { return msix_ && (get16(msix_ + kMsixFlags) & kMsixFlagsEnable); }
bool ConfigSpace::msix_masked() const { return msix_ && (get16(msix_ + kMsixFlags) & kMsixFlagsMaskAll); }

uint64_t ConfigSpace::bar_address(int bar) const {
  if (bar < 0 || bar > 5 || !opts_.bars[bar].size) return 0;
  const BarDesc& b = opts_.bars[bar];
  uint32_t lo = get32(kBaseAddress0 + 4 * bar);
  if (b.io) return lo & ~0x3u;
  uint64_t a = lo & ~0xfu;
  if (b.is64) a |= uint64_t(get32(kBaseAddress0 + 4 * bar + 4)) << 32;
  return a;
}

uint16_t ConfigSpace::find_cap(uint8_t id) const {
  uint8_t off = data_[kCapabilityList] & ~3;
  for (int guard = 0; off && guard < 48; ++guard) {
    if (data_[off] == id) return off;
    off = data_[off + 1] & ~3;
  }
  return 0;
}

uint16_t ConfigSpace::find_ext_cap(uint16_t id) const {
  uint16_t off = 0x100;
  for (int guard = 0; off >= 0x100 && guard < 960; ++guard) {
    uint32_t h = get32(off);
    if (!h) return 0;
    if ((h & 0xffff) == id) return off;
    off = uint16_t((h >> 20) & 0xffc);
  }
  return 0;
}

}  // namespace vdpu::pci
