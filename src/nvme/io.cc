// NVM command set I/O commands (NVM Command Set Specification 1.0 §3) on a
// data reactor: Read, Write, Flush, Write Zeroes, Dataset Management
// (deallocate), Compare. Zero copy: the bdev reads/writes guest memory through
// the request's iovecs. No allocation: everything lives in the SQ's pool.
#include <cstring>

#include "base/log.h"
#include "nvme/dataptr.h"
#include "nvme/nvm_cmd.h"
#include "nvme/queues.h"

namespace vdpu::nvme {

namespace {

using bdev::IoStatus;
using bdev::IoType;

QueueGroup& group_of(Request& r) { return *r.sq->group; }

uint16_t status_from_bdev(IoStatus st, IoType t) { return nvm_status_from_bdev(st, t); }

void account(Request& r, IoType t, uint64_t bytes) {
  QueueStats& s = r.sq->stats();
  switch (t) {
    case IoType::kRead: QueueStats::bump(s.read_ios); QueueStats::bump(s.read_bytes, bytes); break;
    case IoType::kWrite: QueueStats::bump(s.write_ios); QueueStats::bump(s.write_bytes, bytes); break;
    case IoType::kFlush: QueueStats::bump(s.flush_ios); break;
    default: QueueStats::bump(s.other_ios); break;
  }
}

void io_done(bdev::Io& io, IoStatus st) {
  Request& r = *static_cast<Request*>(io.cb_arg);
  QueueGroup& g = group_of(r);
  if (st == IoStatus::kNoMem) {
    g.retry_later(r);
    return;
  }
  if (st == IoStatus::kSuccess) account(r, io.type, io.num_blocks << r.ns->lba_shift);
  g.complete(r, status_from_bdev(st, io.type));
}

// Resolves the namespace (NVM 1.0 §3.2: an inactive or invalid NSID is
// Invalid Namespace or Format).
NsSlot* resolve_ns(QueueGroup& g, Request& r) {
  NsSlot* ns = g.find_ns(r.cmd.nsid);
  if (!ns) {
    VDPU_DEBUG("nvme io: nsid {} not active", r.cmd.nsid);
    g.complete(r, sc::kInvalidNamespaceOrFormat | kStatusDnr);
    return nullptr;
  }
  if (!ns->ready) {
    g.complete(r, sc::kNamespaceNotReady);
    return nullptr;
  }
  r.ns = ns;
  return ns;
}

bool lba_range_ok(const NsSlot& ns, uint64_t slba, uint64_t nlb) {
  return nlb <= ns.num_blocks && slba <= ns.num_blocks - nlb;
}

void submit(Request& r, IoType t, uint64_t slba, uint64_t nlb) {
  bdev::Io& io = r.io;
  io.type = t;
  io.offset_blocks = slba;
  io.num_blocks = nlb;
  io.iov = r.iov;
  io.iovcnt = r.iovcnt;
  io.cb = io_done;
  r.ns->ch->submit(io);
}

// Read / Write / Compare (NVM 1.0 §3.2.6, §3.2.4, §3.2.1).
void rw(QueueGroup& g, Request& r, IoType t) {
  NsSlot* ns = resolve_ns(g, r);
  if (!ns) return;
  const SqEntry& c = r.cmd;
  NvmIo d;
  if (uint16_t st = nvm_decode_range(c, t, {ns->lba_shift, ns->num_blocks}, g.cfg().max_xfer, &d)) {
    g.complete(r, st);
    return;
  }
  const uint64_t slba = d.slba, nlb = d.nlb;
  DataMapArgs a;
  a.len = d.len;
  a.page_size = g.cfg().page_size;
  a.allow_sgl = g.cfg().sgl;
  a.device_writes = t == IoType::kRead;
  if (uint16_t st = map_data(g.mem(), c, a, r.iov, r.iov_cap, &r.iovcnt)) {
    VDPU_WARN_RL("nvme io: cid {} data pointer rejected (status {:#x})", c.cid, st);
    g.complete(r, st | kStatusDnr);
    return;
  }
  submit(r, t, slba, nlb);
}

void flush(QueueGroup& g, Request& r) {
  // VWC bits 2:1 = 10b: NSID FFFFFFFFh is not supported for Flush (NVM 1.0
  // §3.2.3) and is Invalid Namespace or Format like any inactive NSID.
  NsSlot* ns = resolve_ns(g, r);
  if (!ns) return;
  if (!ns->supports_flush) {
    account(r, IoType::kFlush, 0);
    g.complete(r, sc::kSuccess);
    return;
  }
  r.iovcnt = 0;
  submit(r, IoType::kFlush, 0, 0);
}

void write_zeroes(QueueGroup& g, Request& r) {
  if (!g.cfg().write_zeroes) {
    g.complete(r, sc::kInvalidOpcode | kStatusDnr);
    return;
  }
  NsSlot* ns = resolve_ns(g, r);
  if (!ns) return;
  const SqEntry& c = r.cmd;
  uint64_t slba = uint64_t(c.cdw10) | (uint64_t(c.cdw11) << 32);
  uint64_t nlb = uint64_t(c.cdw12 & 0xffff) + 1;
  if (!lba_range_ok(*ns, slba, nlb)) {
    g.complete(r, sc::kLbaOutOfRange | kStatusDnr);
    return;
  }
  if (!ns->supports_write_zeroes) {
    g.complete(r, sc::kInvalidField | kStatusDnr);
    return;
  }
  r.iovcnt = 0;
  submit(r, IoType::kWriteZeroes, slba, nlb);
}

// ---- Dataset Management (NVM 1.0 §3.2.2): one range at a time, in place.
void dsm_run(Request& r);

void dsm_done(bdev::Io& io, IoStatus st) {
  Request& r = *static_cast<Request*>(io.cb_arg);
  if (st == IoStatus::kNoMem) {
    group_of(r).retry_later(r);
    return;
  }
  if (st == IoStatus::kSuccess)
    account(r, IoType::kUnmap, 0);
  else if (st != IoStatus::kUnsupported)  // deallocate is advisory
    r.status = status_from_bdev(st, IoType::kUnmap);
  if (r.in_submit) {
    r.step_done = true;  // completed inline: dsm_run's loop continues
    return;
  }
  dsm_run(r);
}

void dsm_run(Request& r) {
  QueueGroup& g = group_of(r);
  NsSlot& ns = *r.ns;
  while (r.status == sc::kSuccess && r.step < r.nsteps) {
    DsmRange rg;
    iov_copy_from(r.iov, r.iovcnt, &rg, sizeof(rg), size_t(r.step) * sizeof(rg));
    ++r.step;
    if (rg.nlb == 0) continue;
    if (!lba_range_ok(ns, rg.slba, rg.nlb)) {
      r.status = sc::kLbaOutOfRange | kStatusDnr;
      break;
    }
    if (!ns.supports_unmap) continue;
    bdev::Io& io = r.io;
    io.type = IoType::kUnmap;
    io.offset_blocks = rg.slba;
    io.num_blocks = rg.nlb;
    io.iov = nullptr;
    io.iovcnt = 0;
    io.cb = dsm_done;
    r.in_submit = true;
    r.step_done = false;
    ns.ch->submit(io);
    r.in_submit = false;
    if (!r.step_done) return;  // asynchronous: dsm_done resumes
  }
  g.complete(r, r.status);
}

void dataset_management(QueueGroup& g, Request& r) {
  NsSlot* ns = resolve_ns(g, r);
  if (!ns) return;
  const SqEntry& c = r.cmd;
  uint32_t nr = (c.cdw10 & 0xff) + 1;  // 0-based number of ranges
  bool ad = c.cdw11 & (1u << 2);       // Attribute - Deallocate
  DataMapArgs a;
  a.len = uint64_t(nr) * sizeof(DsmRange);
  a.page_size = g.cfg().page_size;
  a.allow_sgl = g.cfg().sgl;
  a.device_writes = false;
  if (uint16_t st = map_data(g.mem(), c, a, r.iov, r.iov_cap, &r.iovcnt)) {
    g.complete(r, st | kStatusDnr);
    return;
  }
  if (!ad) {  // integral read/write hints only: nothing to do
    g.complete(r, sc::kSuccess);
    return;
  }
  r.step = 0;
  r.nsteps = nr;
  r.status = sc::kSuccess;
  dsm_run(r);
}

}  // namespace

uint16_t nvm_status_from_bdev(IoStatus st, IoType t) noexcept {
  switch (st) {
    case IoStatus::kSuccess: return sc::kSuccess;
    case IoStatus::kMiscompare: return sc::kCompareFailure;
    case IoStatus::kOutOfRange: return sc::kLbaOutOfRange;
    case IoStatus::kAborted: return sc::kAbortRequested;
    case IoStatus::kUnsupported: return sc::kInvalidField;
    case IoStatus::kFailed:
      if (t == IoType::kRead) return sc::kUnrecoveredReadError;
      if (t == IoType::kWrite || t == IoType::kWriteZeroes) return sc::kWriteFault;
      return sc::kInternalError;
    default: return sc::kInternalError;
  }
}

uint16_t nvm_decode_range(const SqEntry& c, IoType t, const NvmNsGeometry& ns, uint64_t max_xfer,
                          NvmIo* out) noexcept {
  out->type = t;
  out->slba = uint64_t(c.cdw10) | (uint64_t(c.cdw11) << 32);
  out->nlb = uint64_t(c.cdw12 & 0xffff) + 1;  // 0-based
  if (out->nlb > ns.num_blocks || out->slba > ns.num_blocks - out->nlb)
    return sc::kLbaOutOfRange | kStatusDnr;
  const bool moves_data = t == IoType::kRead || t == IoType::kWrite || t == IoType::kCompare;
  out->len = moves_data ? out->nlb << ns.lba_shift : 0;
  if (moves_data && max_xfer && out->len > max_xfer) return sc::kInvalidField | kStatusDnr;
  return sc::kSuccess;
}

uint32_t io_effects(uint8_t opc, const GroupConfig& cfg) {
  constexpr uint32_t kRead = kCseCsupp, kWrite = kCseCsupp | kCseLbcc;
  switch (opc) {
    case kIoFlush: return kWrite;
    case kIoWrite: return kWrite;
    case kIoRead: return kRead;
    case kIoCompare: return cfg.compare ? kRead : 0;
    case kIoWriteZeroes: return cfg.write_zeroes ? kWrite : 0;
    case kIoDatasetManagement: return kWrite;
    default: return 0;
  }
}

void io_dispatch(QueueGroup& g, Request& r) noexcept {
  // Fused operations are not supported (FUSES = 0): Invalid Field.
  if (r.cmd.fuse()) {
    g.complete(r, sc::kInvalidField | kStatusDnr);
    return;
  }
  switch (r.cmd.opc) {
    case kIoRead: rw(g, r, IoType::kRead); return;
    case kIoWrite: rw(g, r, IoType::kWrite); return;
    case kIoFlush: flush(g, r); return;
    case kIoWriteZeroes: write_zeroes(g, r); return;
    case kIoDatasetManagement: dataset_management(g, r); return;
    case kIoCompare:
      if (g.cfg().compare) {
        rw(g, r, IoType::kCompare);
        return;
      }
      [[fallthrough]];
    default:
      VDPU_WARN_RL("nvme io: invalid opcode {:#x} on SQ {}", r.cmd.opc, r.sq->qid());
      g.complete(r, sc::kInvalidOpcode | kStatusDnr);
  }
}

}  // namespace vdpu::nvme
