// BAR0 register file (Base 2.0 §3.1.4) and doorbells (PCIe Transport 1.0
// §3.1.2). Every writable register reads back what was written (reserved bits
// read 0); read-only and reserved registers ignore writes.
#include "base/log.h"
#include "nvme/controller.h"

namespace vdpu::nvme {

namespace {
constexpr uint32_t kMaxDoorbells = kDoorbellBytes / 4;
}

void Controller::reset_registers() {
  uint64_t css = kCapCssNvm | (o_.admin_only ? kCapCssNoIo : 0);
  cap_ = uint64_t(o_.max_queue_entries - 1)  // MQES, 0-based
         | kCapCqr                           // queues must be physically contiguous
         | (uint64_t(0xf0) << kCapToShift)   // TO: 120 s (500 ms units)
         | (css << kCapCssShift)             // DSTRD = 0: 4-byte doorbell stride
         | (uint64_t(0) << kCapMpsminShift)  // 4 KiB
         | (uint64_t(4) << kCapMpsmaxShift); // 64 KiB
  vs_ = kNvmeVersion14;
  intms_ = 0;
  cc_ = 0;
  csts_ = 0;
  aqa_ = 0;
  asq_ = 0;
  acq_ = 0;
}

static uint32_t read_dword(const Controller& c, uint64_t cap, uint32_t vs, uint32_t intms,
                           uint32_t cc, uint32_t csts, uint32_t aqa, uint64_t asq, uint64_t acq,
                           uint32_t off) {
  switch (off) {
    case kRegCap: return uint32_t(cap);
    case kRegCap + 4: return uint32_t(cap >> 32);
    case kRegVs: return vs;
    case kRegIntms:
    case kRegIntmc: return intms;  // both read the current mask (Base 2.0 §3.1.4.3-4)
    case kRegCc: return cc;
    case kRegCsts: return csts;
    case kRegNssr: return 0;  // NSSRS = 0: reserved
    case kRegAqa: return aqa;
    case kRegAsq: return uint32_t(asq);
    case kRegAsq + 4: return uint32_t(asq >> 32);
    case kRegAcq: return uint32_t(acq);
    case kRegAcq + 4: return uint32_t(acq >> 32);
    default: return 0;  // CMB/BP/PMR not supported; reserved reads 0
  }
}

uint64_t Controller::mmio_read(uint64_t offset, unsigned size) {
  if (size != 1 && size != 2 && size != 4 && size != 8) return 0;
  if (offset >= kRegDoorbellBase) return 0;  // doorbells are write-only: read 0
  auto dw = [&](uint64_t o) {
    return read_dword(*this, cap_, vs_, intms_, cc_, csts_, aqa_, asq_, acq_, uint32_t(o));
  };
  uint64_t base = offset & ~3ull;
  uint64_t v = dw(base);
  if (size == 8) {
    if (offset & 3) return 0;
    return v | (uint64_t(dw(base + 4)) << 32);
  }
  unsigned shift = unsigned(offset & 3) * 8;
  if ((offset & 3) + size > 4) return 0;  // crosses a dword: not a valid access
  v >>= shift;
  return size == 4 ? v : v & ((1ull << (size * 8)) - 1);
}

void Controller::mmio_write(uint64_t offset, unsigned size, uint64_t value) {
  if (size == 8) {
    if (offset & 3) return;
    mmio_write(offset, 4, uint32_t(value));
    mmio_write(offset + 4, 4, uint32_t(value >> 32));
    return;
  }
  if (size != 1 && size != 2 && size != 4) return;
  uint64_t base = offset & ~3ull;
  uint32_t v = uint32_t(value);
  if (size != 4) {
    // Sub-dword write (the spec asks for dword accesses): merge into the
    // current register value.
    unsigned shift = unsigned(offset & 3) * 8;
    if ((offset & 3) + size > 4) return;
    uint32_t m = uint32_t(((1ull << (size * 8)) - 1) << shift);
    uint32_t cur = base >= kRegDoorbellBase ? 0 : uint32_t(mmio_read(base, 4));
    v = (cur & ~m) | ((v << shift) & m);
  }

  if (base >= kRegDoorbellBase) {
    uint64_t idx = (base - kRegDoorbellBase) / 4;
    if (idx >= kMaxDoorbells) return;
    uint32_t qid = uint32_t(idx / 2);
    bool exists = (qid == 0 && state_ != CtrlState::kDisabled) ||
                  (qid > 0 && qid <= kMaxIoQueues && (idx % 2 ? cqs_[qid] != nullptr : sqs_[qid] != nullptr));
    if (!exists) {
      // PCIe 1.0 §3.1.2 / Base 2.0 §5.2 Figure 147: Write to Invalid Doorbell Register.
      VDPU_WARN_RL("nvme {}: write to doorbell of non-existent queue {}", name(), qid);
      if (state_ == CtrlState::kEnabled) report_error_event(kAerErrInvalidDoorbellRegister);
      return;
    }
    // Same array the reactors poll: release so the SQEs written before the
    // doorbell are visible to the poller that reads it with acquire.
    __atomic_store_n(&db_[idx], v, __ATOMIC_RELEASE);
    if (idx == 0) ring_admin_doorbell();
    return;
  }

  switch (base) {
    case kRegIntms: intms_ |= v; return;   // ignored for MSI-X (Base 2.0 §3.1.4.3)
    case kRegIntmc: intms_ &= ~v; return;
    case kRegCc: on_cc_write(v & kCcWritableMask); return;
    case kRegNssr:
      VDPU_WARN_RL("nvme {}: NVM Subsystem Reset not supported (CAP.NSSRS=0)", name());
      return;
    case kRegAqa:
    case kRegAsq:
    case kRegAsq + 4:
    case kRegAcq:
    case kRegAcq + 4:
      // Base 2.0 §3.1.4.8-10: only modified while CC.EN = 0; later writes are
      // stored (read back) but take effect at the next enable.
      if (base == kRegAqa) aqa_ = v & kAqaMask;
      else if (base == kRegAsq) asq_ = (asq_ & ~0xffffffffull) | (v & ~0xfffu);
      else if (base == kRegAsq + 4) asq_ = (asq_ & 0xffffffffull) | (uint64_t(v) << 32);
      else if (base == kRegAcq) acq_ = (acq_ & ~0xffffffffull) | (v & ~0xfffu);
      else acq_ = (acq_ & 0xffffffffull) | (uint64_t(v) << 32);
      return;
    default:
      VDPU_DEBUG("nvme {}: write {:#x} to read-only/reserved register {:#x} ignored", name(), v,
                 base);
      return;
  }
}

}  // namespace vdpu::nvme
