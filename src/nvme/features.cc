// Get Features / Set Features (Base 2.0 §5.15, §5.27; feature list Figure
// 317). No feature is saveable: SV=1 is Feature Identifier Not Saveable and
// SEL=saved returns the default. Runs on the main reactor.
#include "base/log.h"
#include "nvme/controller.h"

namespace vdpu::nvme {

namespace {
bool supported_fid(uint8_t fid) {
  switch (fid) {
    case kFidArbitration:
    case kFidPowerManagement:
    case kFidTemperatureThreshold:
    case kFidErrorRecovery:
    case kFidVolatileWriteCache:
    case kFidNumberOfQueues:
    case kFidInterruptCoalescing:
    case kFidInterruptVectorConfig:
    case kFidWriteAtomicity:
    case kFidAsyncEventConfig:
    case kFidKeepAliveTimer:
      return true;
    default:
      return false;
  }
}
// Async Event Configuration bits we can generate: SMART critical warnings
// 7:0 and Namespace Attribute Notices (bit 8, OAES bit 8).
constexpr uint32_t kAecSupported = 0x1ff;
}  // namespace

void Controller::reset_features() {
  Features f;
  f.vector_cd.assign(num_msix_, 0);
  feat_ = std::move(f);
}

// Value of a feature: current (dflt=false) or default (dflt=true).
uint32_t Controller::feature_value(uint8_t fid, uint32_t cdw11, bool dflt) const {
  Features d;
  const Features& f = dflt ? d : feat_;
  uint32_t nq = o_.num_queues ? o_.num_queues - 1 : 0;
  switch (fid) {
    case kFidArbitration: return f.arbitration;
    case kFidPowerManagement: return f.power_mgmt;
    case kFidTemperatureThreshold: {
      uint32_t thsel = (cdw11 >> 20) & 3;
      return (thsel == 1 ? f.temp_under : f.temp_over) | (cdw11 & 0x003f0000);
    }
    case kFidErrorRecovery: return f.error_recovery;
    case kFidVolatileWriteCache: return f.wce ? 1 : 0;
    case kFidNumberOfQueues: return nq | (nq << 16);  // NSQA / NCQA, 0-based
    case kFidInterruptCoalescing: return f.coalescing;
    case kFidInterruptVectorConfig: {
      uint16_t iv = uint16_t(cdw11 & 0xffff);
      bool cd = !dflt && iv < feat_.vector_cd.size() && feat_.vector_cd[iv];
      return iv | (cd ? 1u << 16 : 0);
    }
    case kFidWriteAtomicity: return f.write_atomicity;
    case kFidAsyncEventConfig: return f.aec;
    case kFidKeepAliveTimer: return f.kato;
    default: return 0;
  }
}

void Controller::adm_get_features(Request& r) {
  uint8_t fid = uint8_t(r.cmd.cdw10 & 0xff);
  uint8_t sel = uint8_t((r.cmd.cdw10 >> 8) & 7);
  if (!supported_fid(fid)) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  uint32_t cdw11 = r.cmd.cdw11;
  if (fid == kFidInterruptVectorConfig && (cdw11 & 0xffff) >= num_msix_)
    return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (fid == kFidTemperatureThreshold) {
    uint32_t tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;
    if (tmpsel != 0 || thsel > 1) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  }
  switch (sel) {
    case kSelCurrent: return admin_complete(r, sc::kSuccess, feature_value(fid, cdw11, false));
    case kSelDefault:
    case kSelSaved:  // nothing is saveable: the saved value is the default
      return admin_complete(r, sc::kSuccess, feature_value(fid, cdw11, true));
    case kSelSupported: {
      // Figure 193: bit 2 changeable, bit 1 namespace specific, bit 0 saveable.
      uint32_t caps = fid == kFidNumberOfQueues ? 0 : kFeatCapChangeable;
      if (fid == kFidVolatileWriteCache || fid == kFidNumberOfQueues) caps = kFeatCapChangeable;
      return admin_complete(r, sc::kSuccess, caps);
    }
    default:
      return admin_complete(r, sc::kInvalidField | kStatusDnr);
  }
}

void Controller::adm_set_features(Request& r) {
  uint8_t fid = uint8_t(r.cmd.cdw10 & 0xff);
  bool sv = r.cmd.cdw10 & (1u << 31);
  uint32_t v = r.cmd.cdw11;
  if (!supported_fid(fid)) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  // Figure 321: SV set for a feature that is not saveable.
  if (sv) return admin_complete(r, sc::kFeatureIdNotSaveable | kStatusDnr);
  switch (fid) {
    case kFidArbitration:
      feat_.arbitration = v;
      break;
    case kFidPowerManagement:
      if ((v & 0x1f) != 0) return admin_complete(r, sc::kInvalidField | kStatusDnr);  // NPSS = 0
      feat_.power_mgmt = v & 0xff;
      break;
    case kFidTemperatureThreshold: {
      uint32_t tmpsel = (v >> 16) & 0xf, thsel = (v >> 20) & 3;
      if ((tmpsel != 0 && tmpsel != 0xf) || thsel > 1)
        return admin_complete(r, sc::kInvalidField | kStatusDnr);
      (thsel ? feat_.temp_under : feat_.temp_over) = uint16_t(v & 0xffff);
      break;
    }
    case kFidErrorRecovery:
      // DULBE needs deallocated-block error support (NSFEAT bit 2 = 0 here).
      if (v & (1u << 16)) return admin_complete(r, sc::kInvalidField | kStatusDnr);
      feat_.error_recovery = v & 0xffff;
      break;
    case kFidVolatileWriteCache:
      feat_.wce = v & 1;
      break;
    case kFidNumberOfQueues: {
      // Base 2.0 §5.27.1.7: 65535 requested is invalid; setting it after an
      // I/O queue was created is a Command Sequence Error.
      if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff)
        return admin_complete(r, sc::kInvalidField | kStatusDnr);
      if (io_queues_created_) return admin_complete(r, sc::kCommandSequenceError | kStatusDnr);
      if (o_.num_queues == 0) return admin_complete(r, sc::kInvalidField | kStatusDnr);
      uint32_t nq = o_.num_queues - 1;
      return admin_complete(r, sc::kSuccess, nq | (nq << 16));
    }
    case kFidInterruptCoalescing:
      feat_.coalescing = v & 0xffff;
      apply_coalescing();
      break;
    case kFidInterruptVectorConfig: {
      uint16_t iv = uint16_t(v & 0xffff);
      if (iv >= num_msix_) return admin_complete(r, sc::kInvalidField | kStatusDnr);
      bool cd = v & (1u << 16);
      // The admin vector is never coalesced (Base 2.0 §5.27.1.9); CD may not be cleared for it.
      if (iv == 0 && !cd) return admin_complete(r, sc::kInvalidField | kStatusDnr);
      feat_.vector_cd[iv] = cd;
      for (auto& g : groups_)
        if (g) env_.post(g->reactor(), [g = g.get(), iv, cd] { g->set_vector_coalescing(iv, cd); });
      break;
    }
    case kFidWriteAtomicity:
      feat_.write_atomicity = v & 1;
      break;
    case kFidAsyncEventConfig:
      feat_.aec = v & kAecSupported;
      break;
    case kFidKeepAliveTimer:
      feat_.kato = v;
      last_keep_alive_ns_ = env_.now_ns();
      if (ka_poller_) {
        env_.remove_poller(kMainReactor, ka_poller_);
        ka_poller_ = 0;
      }
      if (v) {
        uint64_t period = std::min<uint64_t>(uint64_t(v) * 1000 / 2, 100000);
        ka_poller_ = env_.add_poller(kMainReactor, "nvme_ka_" + name(), [this] {
          check_keep_alive();
          return false;
        }, period ? period : 1);
      }
      break;
  }
  admin_complete(r, sc::kSuccess, feature_value(fid, v, false));
}

void Controller::apply_coalescing() {
  uint32_t thr = feat_.coalescing & 0xff;
  uint64_t time_ns = uint64_t((feat_.coalescing >> 8) & 0xff) * 100000;  // 100 us units
  io_cfg_.coalesce_thr = thr;
  io_cfg_.coalesce_time_ns = time_ns;
  for (auto& g : groups_)
    if (g) env_.post(g->reactor(), [g = g.get(), thr, time_ns] { g->set_coalescing(thr, time_ns); });
}

}  // namespace vdpu::nvme
