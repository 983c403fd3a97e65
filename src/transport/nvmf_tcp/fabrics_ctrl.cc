// The fabrics controller of an association (main reactor): properties
// (Base 2.0 §3.1.4 over Property Get/Set), admin commands and the discovery
// controller's log page. Identify and the NVM command tables are the NVMe
// target's shared builders (nvme/identify.h, nvme/controller.h).
#include <algorithm>
#include <bit>
#include <cstring>

#include "base/log.h"
#include "nvme/controller.h"
#include "nvme/identify.h"
#include "transport/nvmf_tcp/internal.h"

namespace vdpu::nvmf_tcp {

using nvme::kStatusDnr;
namespace sc = nvme::sc;

FabricsCtrl::FabricsCtrl(Target::Impl& t, nvme::Subsystem* s, const ConnectArgs& a, uint16_t id)
    : tgt(t),
      subsys(s),
      subnqn(a.subnqn),
      hostnqn(a.hostnqn),
      listen_key(a.listen_key),
      hostid(a.hostid),
      cntlid(id),
      kato_ms(a.kato),
      num_io_queues(t.o.max_io_qpairs_per_ctrlr) {
  io.resize(size_t(t.o.max_io_qpairs_per_ctrlr) + 1);
}

// CAP (Base 2.0 Figure 36): MQES, CQR, TO (500 ms units), CSS (NVM or, for
// discovery, admin only), MPSMIN = MPSMAX = 4 KiB.
uint64_t FabricsCtrl::cap() const {
  uint64_t mqes = uint64_t(tgt.o.max_queue_depth - 1);
  uint64_t css = discovery() ? nvme::kCapCssNoIo : nvme::kCapCssNvm;
  return mqes | nvme::kCapCqr | (uint64_t(30) << nvme::kCapToShift) | (css << nvme::kCapCssShift);
}

AdminReply FabricsCtrl::property(const nvme::SqEntry& c) {
  const auto& p = reinterpret_cast<const nvme::PropertyCmd&>(c);
  AdminReply r;
  const uint32_t size = (p.attrib & 7) == nvme::kPropSize8 ? 8 : 4;
  if ((p.attrib & 7) > nvme::kPropSize8) {
    r.status = sc::kInvalidField | kStatusDnr;
    return r;
  }
  const bool get = p.fctype == nvme::kFctypePropertyGet;
  uint64_t value = 0;
  switch (p.ofst) {
    case nvme::kPropCap:
      if (!get || size != 8) r.status = sc::kInvalidField | kStatusDnr;
      value = cap();
      break;
    case nvme::kPropVs:
      if (!get) r.status = sc::kInvalidField | kStatusDnr;
      value = nvme::kNvmeVersion14;
      break;
    case nvme::kPropCc:
      if (get) {
        value = cc;
        break;
      }
      {
        uint32_t v = uint32_t(p.value) & nvme::kCcWritableMask;
        const bool was_en = cc & nvme::kCcEn;
        cc = v;
        if ((v & nvme::kCcEn) && !was_en) {
          csts = nvme::kCstsRdy;  // nothing to set up: ready at once
        } else if (!(v & nvme::kCcEn) && was_en) {
          csts = 0;  // controller reset
        }
        if (nvme::cc_shn(v) != nvme::kCcShnNone)
          csts = (csts & ~nvme::kCstsShstMask) | (nvme::kShstComplete << nvme::kCstsShstShift);
      }
      break;
    case nvme::kPropCsts:
      if (!get) r.status = sc::kInvalidField | kStatusDnr;
      value = csts;
      break;
    default:
      r.status = sc::kInvalidField | kStatusDnr;
  }
  // Property Get response: the value in DW0 (and DW1 for 8 bytes), Base 2.0 Figure 547.
  if (get && r.status == 0) {
    r.cdw0 = uint32_t(value);
    if (size == 8) r.cdw1 = uint32_t(value >> 32);
  }
  return r;
}

uint16_t FabricsCtrl::oncs() const {
  uint16_t v = nvme::kOncsDsm;
  bool wz = subsys && !subsys->namespaces().empty();
  if (subsys)
    for (nvme::Namespace* ns : subsys->namespaces())
      wz &= ns->bdev().supports(bdev::IoType::kWriteZeroes);
  if (wz) v |= nvme::kOncsWriteZeroes;
  return v;
}

void FabricsCtrl::build_identify_ctrl(nvme::IdentifyController& id) const {
  id.vid = 0x15b3;
  id.ssvid = 0x15b3;
  if (subsys) {
    nvme::copy_padded(id.sn, sizeof(id.sn), subsys->serial_number());
    nvme::copy_padded(id.mn, sizeof(id.mn), subsys->model_number());
  } else {
    nvme::copy_padded(id.sn, sizeof(id.sn), "vdpu-discovery");
    nvme::copy_padded(id.mn, sizeof(id.mn), "vdpu Discovery Controller");
  }
  nvme::copy_padded(id.fr, sizeof(id.fr), "vdpu0.1");
  id.rab = 6;
  id.ieee[0] = 0xc9;
  id.ieee[1] = 0x02;
  id.cmic = discovery() ? 0 : (1u << 1);  // several controllers may share a namespace
  uint32_t pages = std::max<uint32_t>(tgt.o.max_io_size / 4096, 1);
  id.mdts = uint8_t(std::bit_width(pages) - 1);
  id.cntlid = cntlid;
  id.ver = nvme::kNvmeVersion14;
  id.cntrltype = discovery() ? nvme::kCntrltypeDiscovery : nvme::kCntrltypeIo;
  id.acl = 3;
  id.aerl = 3;
  id.frmw = 1 | (1u << 1);
  id.lpa = nvme::kLpaCommandEffects | nvme::kLpaExtendedData;
  id.elpe = 0;
  id.kas = 1;  // 100 ms granularity
  id.sqes = (nvme::kSqeSizeLog2 << 4) | nvme::kSqeSizeLog2;
  id.cqes = (nvme::kCqeSizeLog2 << 4) | nvme::kCqeSizeLog2;
  id.maxcmd = uint16_t(tgt.o.max_queue_depth);
  id.nn = subsys ? subsys->nn() : 0;
  id.oncs = discovery() ? 0 : oncs();
  id.vwc = discovery() ? 0 : (0x01 | (0x2 << 1));
  // SGLS: SGLs supported (bit 0), offsets in SGL data blocks for in-capsule
  // data (bit 20).
  id.sgls = 1u | (1u << 20);
  id.mnan = subsys ? subsys->mnan() : 0;
  std::strncpy(id.subnqn, subnqn.c_str(), sizeof(id.subnqn) - 1);
  auto* f = reinterpret_cast<nvme::IdentifyFabricsAttrs*>(id.nvmof);
  f->ioccsz = (64 + tgt.o.in_capsule_data_size) / 16;
  f->iorcsz = 1;
  f->icdoff = 0;
  f->fcatt = 0;  // dynamic controller model
  f->msdbd = 1;
  f->ofcs = 0;
  id.psd[0].mp = 2500;
}

AdminReply FabricsCtrl::identify(const nvme::SqEntry& c) {
  AdminReply r;
  r.data.assign(4096, 0);
  const uint8_t cns = uint8_t(c.cdw10 & 0xff);
  if (discovery()) {
    // A discovery controller answers Identify Controller only (§3.1.3.4).
    if (cns != nvme::kCnsController) {
      r.status = sc::kInvalidField | kStatusDnr;
      return r;
    }
    build_identify_ctrl(*reinterpret_cast<nvme::IdentifyController*>(r.data.data()));
    return r;
  }
  std::vector<nvme::Namespace*> active = subsys->namespaces();
  nvme::IdentifyContext ctx{*subsys, active,
                            [this](nvme::IdentifyController& id) { build_identify_ctrl(id); }};
  r.status = nvme::build_identify(c, ctx, r.data.data());
  return r;
}

std::vector<uint8_t> FabricsCtrl::discovery_log() const {
  std::vector<DiscoveryRecord> recs = tgt.target.discovery_records(hostnqn);
  std::vector<uint8_t> out(sizeof(nvme::DiscoveryLogHeader) +
                           recs.size() * sizeof(nvme::DiscoveryLogEntry));
  auto* h = reinterpret_cast<nvme::DiscoveryLogHeader*>(out.data());
  h->genctr = tgt.genctr;
  h->numrec = recs.size();
  h->recfmt = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto* e = reinterpret_cast<nvme::DiscoveryLogEntry*>(out.data() + sizeof(*h) +
                                                         i * sizeof(nvme::DiscoveryLogEntry));
    const DiscoveryRecord& d = recs[i];
    e->trtype = nvme::kTrtypeTcp;
    e->adrfam = d.ipv6 ? nvme::kAdrfamIpv6 : nvme::kAdrfamIpv4;
    e->subtype = nvme::kSubtypeNvm;
    e->treq = nvme::kTreqSecureChannelNotRequired;
    e->portid = d.portid;
    e->cntlid = nvme::kCntlidDynamic;
    e->asqsz = uint16_t(tgt.o.max_aq_depth);
    nvme::copy_padded(e->trsvcid, sizeof(e->trsvcid), d.trsvcid);
    std::strncpy(e->subnqn, d.subnqn.c_str(), sizeof(e->subnqn) - 1);
    nvme::copy_padded(e->traddr, sizeof(e->traddr), d.traddr);
    e->tsas[0] = nvme::kTcpSectypeNone;
  }
  return out;
}

AdminReply FabricsCtrl::get_log_page(const nvme::SqEntry& c, uint32_t out_len) {
  AdminReply r;
  const uint8_t lid = uint8_t(c.cdw10 & 0xff);
  const uint64_t numd = ((uint64_t(c.cdw11 & 0xffff) << 16) | (c.cdw10 >> 16)) + 1;
  const uint64_t off = uint64_t(c.cdw12) | (uint64_t(c.cdw13) << 32);
  if (off & 3) {
    r.status = sc::kInvalidField | kStatusDnr;
    return r;
  }
  std::vector<uint8_t> log;
  if (discovery()) {
    if (lid != nvme::kLidDiscovery) {
      r.status = sc::kInvalidField | kStatusDnr;
      return r;
    }
    log = discovery_log();
  } else {
    switch (lid) {
      case nvme::kLidErrorInformation:
        log.assign(sizeof(nvme::ErrorInformationEntry), 0);  // ELPE 0: one entry, no errors
        break;
      case nvme::kLidSmartHealth: {
        nvme::SmartHealthLog s{};
        s.composite_temperature = 0x0143;
        s.available_spare = 100;
        s.available_spare_threshold = 10;
        s.power_cycles[0] = 1;
        log.resize(sizeof(s));
        std::memcpy(log.data(), &s, sizeof(s));
        break;
      }
      case nvme::kLidFirmwareSlot: {
        nvme::FirmwareSlotLog f{};
        f.afi = 1;
        nvme::copy_padded(f.frs[0], 8, "vdpu0.1");
        log.resize(sizeof(f));
        std::memcpy(log.data(), &f, sizeof(f));
        break;
      }
      case nvme::kLidChangedNsList:
        log.assign(4096, 0);
        break;
      case nvme::kLidCommandsSupported: {
        // The shared opcode tables: admin commands a fabrics controller runs,
        // and the NVM command set of its I/O queues.
        nvme::CommandsSupportedLog l{};
        for (uint8_t op :
             {nvme::kAdmGetLogPage, nvme::kAdmIdentify, nvme::kAdmAbort, nvme::kAdmSetFeatures,
              nvme::kAdmGetFeatures, nvme::kAdmAsyncEventRequest, nvme::kAdmKeepAlive})
          l.acs[op] = nvme::admin_effects(op);
        nvme::GroupConfig cfg;
        cfg.write_zeroes = oncs() & nvme::kOncsWriteZeroes;
        cfg.compare = false;
        for (unsigned op = 0; op < 256; ++op) l.iocs[op] = nvme::io_effects(uint8_t(op), cfg);
        log.resize(sizeof(l));
        std::memcpy(log.data(), &l, sizeof(l));
        break;
      }
      default:
        r.status = sc::kInvalidLogPage | kStatusDnr;
        return r;
    }
  }
  if (off > log.size()) {
    r.status = sc::kInvalidField | kStatusDnr;
    return r;
  }
  uint64_t n = std::min<uint64_t>({numd * 4, log.size() - off, out_len});
  r.data.assign(log.begin() + long(off), log.begin() + long(off + n));
  return r;
}

AdminReply FabricsCtrl::set_features(const nvme::SqEntry& c) {
  AdminReply r;
  const uint8_t fid = uint8_t(c.cdw10 & 0xff);
  const uint32_t v = c.cdw11;
  switch (fid) {
    case nvme::kFidNumberOfQueues: {
      // 0-based NSQR/NCQR; 0xffff is invalid (Base 2.0 §5.27.1.7).
      uint32_t nsqr = v & 0xffff, ncqr = v >> 16;
      if (nsqr == 0xffff || ncqr == 0xffff) {
        r.status = sc::kInvalidField | kStatusDnr;
        break;
      }
      uint32_t maxq = tgt.o.max_io_qpairs_per_ctrlr;
      num_io_queues = std::min({nsqr + 1, ncqr + 1, maxq});
      uint32_t granted = maxq - 1;
      r.cdw0 = granted | (granted << 16);
      break;
    }
    case nvme::kFidKeepAliveTimer:
      kato_ms = v;
      break;
    case nvme::kFidAsyncEventConfig:
      aec = v;
      break;
    case nvme::kFidVolatileWriteCache:
      wce = v & 1;
      break;
    case nvme::kFidArbitration:
      arbitration = v;
      break;
    case nvme::kFidPowerManagement:
      if ((v & 0x1f) != 0)
        r.status = sc::kInvalidField | kStatusDnr;  // one power state
      else
        power_mgmt = v;
      break;
    case nvme::kFidTemperatureThreshold:
      if (((v >> 20) & 3) == 0)
        temp_over = uint16_t(v);
      else
        temp_under = uint16_t(v);
      break;
    case nvme::kFidErrorRecovery:
      error_recovery = v;
      break;
    case nvme::kFidWriteAtomicity:
      write_atomicity = v & 1;
      break;
    default:
      r.status = sc::kInvalidField | kStatusDnr;
  }
  return r;
}

AdminReply FabricsCtrl::get_features(const nvme::SqEntry& c) {
  AdminReply r;
  const uint8_t fid = uint8_t(c.cdw10 & 0xff);
  const uint8_t sel = uint8_t((c.cdw10 >> 8) & 7);
  if (sel == nvme::kSelSupported) {
    r.cdw0 = nvme::kFeatCapChangeable;
    return r;
  }
  switch (fid) {
    case nvme::kFidNumberOfQueues: {
      uint32_t g = tgt.o.max_io_qpairs_per_ctrlr - 1;
      r.cdw0 = g | (g << 16);
      break;
    }
    case nvme::kFidKeepAliveTimer:
      r.cdw0 = kato_ms;
      break;
    case nvme::kFidAsyncEventConfig:
      r.cdw0 = aec;
      break;
    case nvme::kFidVolatileWriteCache:
      r.cdw0 = wce ? 1 : 0;
      break;
    case nvme::kFidArbitration:
      r.cdw0 = arbitration;
      break;
    case nvme::kFidPowerManagement:
      r.cdw0 = power_mgmt;
      break;
    case nvme::kFidTemperatureThreshold:
      r.cdw0 = ((c.cdw11 >> 20) & 3) == 0 ? temp_over : temp_under;
      break;
    case nvme::kFidErrorRecovery:
      r.cdw0 = error_recovery;
      break;
    case nvme::kFidWriteAtomicity:
      r.cdw0 = write_atomicity;
      break;
    default:
      r.status = sc::kInvalidField | kStatusDnr;
  }
  return r;
}

AdminReply FabricsCtrl::exec_admin(const nvme::SqEntry& c, const std::vector<uint8_t>& in,
                                   uint32_t out_len) {
  (void)in;
  last_ka_ns = tgt.env.now_ns();  // any admin command restarts the keep-alive timer
  AdminReply r;
  switch (c.opc) {
    case nvme::kAdmIdentify:
      return identify(c);
    case nvme::kAdmGetLogPage:
      return get_log_page(c, out_len);
    case nvme::kAdmKeepAlive:
      return r;
    case nvme::kAdmAsyncEventRequest:
      // Parked until the association ends (no events are generated).
      if (aers >= 4) {
        r.status = sc::kAsyncEventRequestLimitExceeded;
        return r;
      }
      ++aers;
      r.park = true;
      return r;
    case nvme::kAdmAbort:
      r.cdw0 = 1;  // command not aborted
      return r;
    default:
      break;
  }
  if (!discovery()) {
    if (c.opc == nvme::kAdmSetFeatures) return set_features(c);
    if (c.opc == nvme::kAdmGetFeatures) return get_features(c);
  } else if (c.opc == nvme::kAdmSetFeatures || c.opc == nvme::kAdmGetFeatures) {
    // Discovery controllers support KATO and Async Event Config only.
    uint8_t fid = uint8_t(c.cdw10 & 0xff);
    if (fid == nvme::kFidKeepAliveTimer || fid == nvme::kFidAsyncEventConfig)
      return c.opc == nvme::kAdmSetFeatures ? set_features(c) : get_features(c);
    r.status = sc::kInvalidField | kStatusDnr;
    return r;
  }
  VDPU_WARN_RL("nvmf_tcp: cntlid {}: invalid admin opcode {:#x}", cntlid, c.opc);
  r.status = sc::kInvalidOpcode | kStatusDnr;
  return r;
}

}  // namespace vdpu::nvmf_tcp
