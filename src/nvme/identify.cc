// Identify (Base 2.0 §5.17; NVM Command Set 1.0 §4.1.5): controller,
// namespace, active namespace lists, namespace identification descriptors,
// I/O command set specific structures and the I/O command set list, as the
// Linux nvme driver requests them. Runs on the main reactor.
#include <algorithm>
#include <cstring>

#include "nvme/controller.h"
#include "nvme/identify.h"

namespace vdpu::nvme {

uint16_t Controller::effective_oncs() const {
  // SNAP §6.1: an optional command is supported when forced on, or (unset)
  // when every attached namespace's bdev supports it.
  auto all = [&](bdev::IoType t) {
    for (Namespace* ns : ns_)
      if (!ns->bdev().supports(t)) return false;
    return true;
  };
  uint16_t oncs = kOncsDsm | kOncsSaveSelect;
  if (o_.compare.value_or(all(bdev::IoType::kCompare) && !ns_.empty())) oncs |= kOncsCompare;
  if (o_.write_zeroes.value_or(all(bdev::IoType::kWriteZeroes) && !ns_.empty()))
    oncs |= kOncsWriteZeroes;
  return oncs;
}

void Controller::build_identify_ctrl(IdentifyController& id) const {
  std::memset(&id, 0, sizeof(id));
  id.vid = o_.vid;
  id.ssvid = o_.ssvid;
  copy_padded(id.sn, sizeof(id.sn), subsys_.serial_number());
  copy_padded(id.mn, sizeof(id.mn), subsys_.model_number());
  copy_padded(id.fr, sizeof(id.fr), o_.firmware_revision);
  id.rab = 6;
  id.ieee[0] = 0xc9;  // OUI 00-02-C9 (Mellanox), LSB first
  id.ieee[1] = 0x02;
  id.ieee[2] = 0x00;
  id.cmic = 0;  // single port, single controller per namespace (no shared namespaces)
  id.mdts = o_.mdts;
  id.cntlid = cntlid_;
  id.ver = kNvmeVersion14;
  id.oaes = kOaesNsAttrNotices;
  id.cntrltype = kCntrltypeIo;
  id.oacs = 0;   // no security, format, firmware, NS management, directives
  id.acl = 3;    // 4 concurrent aborts (0-based)
  id.aerl = 3;   // 4 outstanding AERs (0-based)
  id.frmw = uint8_t(1 | (o_.fw_slots << 1));  // slot 1 read-only, fw_slots slots
  id.lpa = kLpaCommandEffects | kLpaExtendedData;
  id.elpe = 3;   // 4 error log entries (0-based)
  id.npss = 0;   // one power state
  id.wctemp = 0x0157;  // 343 K
  id.cctemp = 0x0175;  // 373 K
  id.kas = 1;    // keep alive granularity 100 ms
  id.sqes = (kSqeSizeLog2 << 4) | kSqeSizeLog2;
  id.cqes = (kCqeSizeLog2 << 4) | kCqeSizeLog2;
  id.maxcmd = 0;
  id.nn = subsys_.nn();
  id.oncs = effective_oncs();
  id.fuses = 0;
  id.fna = 0;
  // VWC present; bits 2:1 = 10b: Flush with NSID FFFFFFFFh not supported.
  id.vwc = 0x01 | (0x2 << 1);
  id.sgls = o_.sgl ? kSglsSupportedNoAlign : 0;
  id.mnan = subsys_.mnan();
  std::strncpy(id.subnqn, subsys_.nqn().c_str(), sizeof(id.subnqn) - 1);
  id.psd[0].mp = 2500;  // 25 W
}

void Controller::build_identify_ns(const Namespace& ns, IdentifyNamespace& id) const {
  fill_identify_ns(ns, id);
}

void fill_identify_ns(const Namespace& ns, IdentifyNamespace& id) {
  std::memset(&id, 0, sizeof(id));
  const bdev::Bdev& b = ns.bdev();
  id.nsze = id.ncap = id.nuse = b.num_blocks();
  id.nsfeat = 0;
  id.nlbaf = 0;  // one LBA format (0-based)
  id.flbas = 0;
  id.nmic = 0;
  id.lbaf[0].lbads = uint8_t(std::countr_zero(b.block_size()));
  std::memcpy(id.nguid, ns.nguid().data(), 16);
  std::memcpy(id.eui64, ns.eui64().data(), 8);
}

void Controller::adm_identify(Request& r) {
  alignas(8) uint8_t buf[4096];
  IdentifyContext ctx{subsys_, ns_, [this](IdentifyController& id) { build_identify_ctrl(id); }};
  if (uint16_t st = build_identify(r.cmd, ctx, buf)) return admin_complete(r, st);
  admin_complete(r, copy_to_host(r, buf, sizeof(buf)) | 0);
}

uint16_t build_identify(const SqEntry& c, const IdentifyContext& ctx, uint8_t* buf) {
  uint8_t cns = uint8_t(c.cdw10 & 0xff);
  uint8_t csi = uint8_t(c.cdw11 >> 24);
  uint32_t nsid = c.nsid;
  std::memset(buf, 0, 4096);
  auto find_active = [&](uint32_t id) -> Namespace* {
    for (Namespace* ns : ctx.active)
      if (ns->nsid() == id) return ns;
    return nullptr;
  };
  // NSID validity for namespace-scoped CNS values (Base 2.0 §5.17.1): 0,
  // FFFFFFFFh (no NS management) and NSIDs above NN are invalid; a valid but
  // inactive NSID returns a zero-filled structure.
  auto nsid_valid = [&](uint32_t id) { return id != 0 && id <= ctx.subsys.nn(); };
  auto active_list = [&](uint32_t after) {
    if (after >= 0xfffffffe) return false;
    uint32_t n = 0;
    for (Namespace* ns : ctx.active)
      if (ns->nsid() > after && n < 1024) put_le32(buf + 4 * n++, ns->nsid());
    return true;
  };
  switch (cns) {
    case kCnsController:
      ctx.build_ctrl(*reinterpret_cast<IdentifyController*>(buf));
      break;
    case kCnsNamespace:
      if (!nsid_valid(nsid)) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      if (Namespace* ns = find_active(nsid))
        fill_identify_ns(*ns, *reinterpret_cast<IdentifyNamespace*>(buf));
      break;
    case kCnsActiveNsList:
      if (!active_list(nsid)) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      break;
    case kCnsCsiActiveNsList:
      if (csi != kCsiNvm) return (sc::kInvalidField | kStatusDnr);
      if (!active_list(nsid)) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      break;
    case kCnsNsIdDescriptors: {
      Namespace* ns = nsid_valid(nsid) ? find_active(nsid) : nullptr;
      if (!ns) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      // Figure 279/280: NIDT, NIDL, 2 reserved bytes, NID.
      size_t o = 0;
      auto add = [&](uint8_t t, const void* p, uint8_t l) {
        buf[o] = t;
        buf[o + 1] = l;
        std::memcpy(buf + o + 4, p, l);
        o += 4 + l;
      };
      add(kNidtEui64, ns->eui64().data(), 8);
      add(kNidtNguid, ns->nguid().data(), 16);
      add(kNidtUuid, ns->uuid().data(), 16);
      uint8_t nvm = kCsiNvm;
      add(kNidtCsi, &nvm, 1);
      break;
    }
    case kCnsCsiNamespace:
      // NVM 1.0 Figure 99 (I/O command set specific Identify Namespace): no
      // protection information, no extended LBA formats: all zero.
      if (csi != kCsiNvm) return (sc::kInvalidField | kStatusDnr);
      if (!nsid_valid(nsid)) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      break;
    case kCnsCsiController: {
      if (csi != kCsiNvm) return (sc::kInvalidField | kStatusDnr);
      auto* id = reinterpret_cast<IdentifyControllerNvm*>(buf);
      id->vsl = 0;    // Verify not supported
      id->wzsl = 0;   // Write Zeroes: no size limit beyond the LBA range
      id->wusl = 0;
      id->dmrl = 0;   // DSM: up to 256 ranges (no extra limit)
      id->dmrsl = 0;
      id->dmsl = 0;
      break;
    }
    case kCnsCsIndependentNamespace: {
      if (!nsid_valid(nsid)) return (sc::kInvalidNamespaceOrFormat | kStatusDnr);
      // Base 2.0 Figure 281: NSFEAT, NMIC, RESCAP, FPI, ANAGRPID, NSATTR,
      // NVMSETID, ENDGID, NSTAT (bit 0: namespace ready).
      if (Namespace* ns = find_active(nsid)) buf[14] = ns->ready() ? 1 : 0;
      break;
    }
    case kCnsIoCommandSetList:
      // Figure 282: one I/O Command Set Combination: NVM only.
      put_le64(buf, 1);
      break;
    default:
      return (sc::kInvalidField | kStatusDnr);
  }
  return sc::kSuccess;
}

}  // namespace vdpu::nvme
