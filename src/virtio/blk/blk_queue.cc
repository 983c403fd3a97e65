#include "virtio/blk/blk_queue.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::blk {
namespace {

// Iovecs beyond seg_max + header + status that a request may use: a segment
// can be split where guest memory regions meet.
constexpr uint32_t kIovSlack = 6;

inline void bump(std::atomic<uint64_t>& a) {
  a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Copies n bytes from the front of iov[*idx..cnt) into dst and advances past
// them (partially consumed iovecs are trimmed in place). False if short.
bool take_front(iovec* iov, uint32_t cnt, uint32_t* idx, void* dst, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  uint32_t i = *idx;
  while (n) {
    if (i >= cnt) return false;
    size_t k = std::min(n, iov[i].iov_len);
    std::memcpy(out, iov[i].iov_base, k);
    out += k;
    n -= k;
    iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + k;
    iov[i].iov_len -= k;
    if (iov[i].iov_len == 0) ++i;
  }
  *idx = i;
  return true;
}

// Copies up to n bytes into the iovecs; returns the count copied.
size_t copy_to_iov(const iovec* iov, uint32_t cnt, const void* src, size_t n) {
  auto* in = static_cast<const uint8_t*>(src);
  size_t done = 0;
  for (uint32_t i = 0; i < cnt && done < n; ++i) {
    size_t k = std::min(n - done, iov[i].iov_len);
    std::memcpy(iov[i].iov_base, in + done, k);
    done += k;
  }
  return done;
}

}  // namespace

BlkQueue::BlkQueue(const BlkQueueParams& p) : p_(p) {}
BlkQueue::~BlkQueue() = default;

Status BlkQueue::start(const QueueConfig& cfg) {
  VDPU_TRY(vq_.start(cfg, VqOptions{p_.force_in_order}));
  uint32_t n = cfg.size;
  uint32_t cap = std::min<uint32_t>(p_.seg_max + 2 + kIovSlack, UINT16_MAX);
  // All per-request memory is allocated here, once: no allocation per I/O.
  reqs_ = std::vector<Req>(n);
  iovs_.assign(size_t(n) * cap, iovec{});
  free_.assign(n, nullptr);
  for (uint32_t i = 0; i < n; ++i) {
    Req& r = reqs_[i];
    r.q = this;
    r.io.cb = &BlkQueue::on_io_done;
    r.io.cb_arg = &r;
    r.chain.iov = &iovs_[size_t(i) * cap];
    r.chain.max_iov = uint16_t(cap);
    free_[i] = &reqs_[n - 1 - i];
  }
  nfree_ = n;
  inflight_ = 0;
  return {};
}

rt::Poll BlkQueue::poll() noexcept {
  if (vq_.notifications_enabled()) {
    // Woken up after prepare_sleep() armed kicks: back to polling.
    vq_.disable_notifications();
    vq_.drain_kick();
  }
  uint32_t n = 0;
  if (running_) {
    while (n < kBatch && nfree_) {
      Req* r = free_[nfree_ - 1];
      if (vq_.pop(r->chain) != PopStatus::kOk) break;
      --nfree_;
      ++n;
      handle(r);
    }
  }
  bool busy = n || finished_ != finished_seen_;
  finished_seen_ = finished_;
  if (busy) vq_.flush_and_notify();
  return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
}

bool BlkQueue::prepare_sleep() noexcept {
  if (inflight_) return false;
  vq_.drain_kick();
  if (!running_ || vq_.broken()) return true;
  if (vq_.enable_notifications()) {
    vq_.disable_notifications();
    return false;
  }
  return true;
}

void BlkQueue::on_io_done(bdev::Io& io, bdev::IoStatus st) {
  Req* r = static_cast<Req*>(io.cb_arg);
  uint8_t s = st == bdev::IoStatus::kSuccess       ? VIRTIO_BLK_S_OK
              : st == bdev::IoStatus::kUnsupported ? VIRTIO_BLK_S_UNSUPP
                                                   : VIRTIO_BLK_S_IOERR;
  r->q->finish(r, s);
}

void BlkQueue::submit(Req* r) noexcept {
  r->submitted = true;
  ++inflight_;
  be_.channel->submit(r->io);  // may complete inline (finish runs now)
}

void BlkQueue::finish(Req* r, uint8_t status) noexcept {
  if (r->status) *r->status = status;
  uint32_t used = r->status ? (status == VIRTIO_BLK_S_OK ? r->data_in : 0) + 1 : 0;
  vq_.push(r->chain, used);
  switch (r->kind) {
    case kRead: bump(counters_.read); break;
    case kWrite: bump(counters_.write); break;
    case kFlush: bump(counters_.flush); break;
    case kDiscard: bump(counters_.discard); break;
    case kWriteZeroes: bump(counters_.write_zeroes); break;
    case kGetId: bump(counters_.get_id); break;
    case kOther: break;
  }
  if (status == VIRTIO_BLK_S_UNSUPP) bump(counters_.unsupported);
  else if (status != VIRTIO_BLK_S_OK) bump(counters_.errors);
  if (r->submitted) {
    r->submitted = false;
    --inflight_;
  }
  ++finished_;
  free_[nfree_++] = r;
}

void BlkQueue::handle(Req* r) noexcept {
  Chain& c = r->chain;
  iovec* iov = c.iov;
  uint32_t nout = c.n_out, nin = c.n_in;
  r->data_in = 0;
  r->kind = kOther;
  r->status = nullptr;
  // §5.2.6: the status is the last, device-writable byte of the request.
  if (nin == 0) {
    VDPU_WARN_RL("virtio-blk q{}: request without a writable status byte", p_.qid);
    finish(r, VIRTIO_BLK_S_IOERR);
    return;
  }
  iovec& last = iov[nout + nin - 1];  // non-empty: the walker skips zero-length buffers
  r->status = static_cast<uint8_t*>(last.iov_base) + last.iov_len - 1;
  if (--last.iov_len == 0) --nin;
  uint64_t in_data = c.in_len - 1;

  // The header: the first 16 readable bytes, however they are framed (§2.6.4
  // "the device MUST NOT make assumptions about the particular arrangement
  // of descriptors"). Copied once: the guest cannot change it under us.
  VirtioBlkOutHdr h;
  uint32_t i = 0;
  if (c.out_len < sizeof(h) || !take_front(iov, nout, &i, &h, sizeof(h))) {
    VDPU_WARN_RL("virtio-blk q{}: request header shorter than 16 bytes", p_.qid);
    finish(r, VIRTIO_BLK_S_IOERR);
    return;
  }
  uint64_t out_data = c.out_len - sizeof(h);
  uint64_t sector = le64toh(h.sector);
  switch (le32toh(h.type)) {
    case VIRTIO_BLK_T_IN:
      r->kind = kRead;
      rw(r, false, sector, iov + nout, nin, in_data);
      return;
    case VIRTIO_BLK_T_OUT:
      r->kind = kWrite;
      rw(r, true, sector, iov + i, nout - i, out_data);
      return;
    case VIRTIO_BLK_T_FLUSH:
      r->kind = kFlush;
      if (!be_.channel) return finish(r, VIRTIO_BLK_S_IOERR);
      if (!be_.flush) return finish(r, VIRTIO_BLK_S_OK);  // nothing volatile to flush
      r->io.type = bdev::IoType::kFlush;
      r->io.iov = nullptr;
      r->io.iovcnt = 0;
      r->io.offset_blocks = 0;
      r->io.num_blocks = 0;
      submit(r);
      return;
    case VIRTIO_BLK_T_GET_ID: {
      // §5.2.6: a NUL-padded string of up to 20 bytes (no NUL when 20 long).
      r->kind = kGetId;
      size_t n = copy_to_iov(iov + nout, nin, p_.serial.data(), std::min<uint64_t>(in_data, kIdBytes));
      r->data_in = uint32_t(n);
      return finish(r, VIRTIO_BLK_S_OK);
    }
    case VIRTIO_BLK_T_DISCARD:
      r->kind = kDiscard;
      dwz(r, false, iov + i, nout - i, out_data);
      return;
    case VIRTIO_BLK_T_WRITE_ZEROES:
      r->kind = kWriteZeroes;
      dwz(r, true, iov + i, nout - i, out_data);
      return;
    default:
      // Unknown, GET_LIFETIME, SECURE_ERASE, zoned, legacy SCSI: not offered.
      return finish(r, VIRTIO_BLK_S_UNSUPP);
  }
}

void BlkQueue::rw(Req* r, bool write, uint64_t sector, iovec* iov, uint32_t iovcnt, uint64_t len) noexcept {
  // §5.2.6.2: "A device MUST set the status byte to VIRTIO_BLK_S_IOERR for a
  // write request if the VIRTIO_BLK_F_RO feature if offered, and MUST NOT
  // write any data."
  if (write && p_.read_only) return finish(r, VIRTIO_BLK_S_IOERR);
  if (!be_.channel) return finish(r, VIRTIO_BLK_S_IOERR);
  // §5.2.6.1: "The length of data MUST be a multiple of 512 bytes"; the bdev
  // also needs whole blocks at block-aligned offsets.
  uint32_t bs = be_.block_size;
  if (len % kSectorSize || len % bs || sector > (UINT64_MAX / kSectorSize) ||
      (sector * kSectorSize) % bs) {
    VDPU_WARN_RL("virtio-blk q{}: misaligned request (sector {}, {} bytes, block size {})", p_.qid,
                 sector, len, bs);
    return finish(r, VIRTIO_BLK_S_IOERR);
  }
  uint64_t ob = sector * kSectorSize / bs;
  uint64_t nb = len / bs;
  // §5.2.6.1: "A driver MUST NOT submit a request which would cause a read or
  // write beyond capacity".
  if (nb > be_.num_blocks || ob > be_.num_blocks - nb) {
    VDPU_WARN_RL("virtio-blk q{}: request beyond capacity (sector {}, {} bytes)", p_.qid, sector, len);
    return finish(r, VIRTIO_BLK_S_IOERR);
  }
  if (len == 0) return finish(r, VIRTIO_BLK_S_OK);
  r->data_in = write ? 0 : uint32_t(len);
  r->io.type = write ? bdev::IoType::kWrite : bdev::IoType::kRead;
  r->io.iov = iov;
  r->io.iovcnt = iovcnt;
  r->io.offset_blocks = ob;
  r->io.num_blocks = nb;
  submit(r);
}

void BlkQueue::dwz(Req* r, bool write_zeroes, iovec* iov, uint32_t iovcnt, uint64_t len) noexcept {
  // §5.2.6.1: data is a multiple of 16-byte segments, at most max_*_seg (1).
  if (len != sizeof(VirtioBlkDiscardWriteZeroes)) {
    VDPU_WARN_RL("virtio-blk q{}: discard/write-zeroes with {} data bytes", p_.qid, len);
    return finish(r, VIRTIO_BLK_S_IOERR);
  }
  VirtioBlkDiscardWriteZeroes seg;
  uint32_t i = 0;
  if (!take_front(iov, iovcnt, &i, &seg, sizeof(seg))) return finish(r, VIRTIO_BLK_S_IOERR);
  uint32_t flags = le32toh(seg.flags);
  // §5.2.6.2: "MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard
  // ... and write zeroes commands if any unknown flag is set", and for
  // discard commands if the unmap flag is set.
  if ((flags & ~kDwzFlagUnmap) || (!write_zeroes && (flags & kDwzFlagUnmap)))
    return finish(r, VIRTIO_BLK_S_UNSUPP);
  if (p_.read_only || !be_.channel) return finish(r, VIRTIO_BLK_S_IOERR);
  uint64_t sector = le64toh(seg.sector);
  uint32_t ns = le32toh(seg.num_sectors);
  uint32_t max = write_zeroes ? p_.max_write_zeroes_sectors : p_.max_discard_sectors;
  uint32_t bs = be_.block_size;
  uint64_t bytes = uint64_t(ns) * kSectorSize;
  if ((max && ns > max) || sector > (UINT64_MAX / kSectorSize) || (sector * kSectorSize) % bs ||
      bytes % bs) {
    VDPU_WARN_RL("virtio-blk q{}: bad discard/write-zeroes range (sector {}, {} sectors)", p_.qid, sector, ns);
    return finish(r, VIRTIO_BLK_S_IOERR);
  }
  uint64_t ob = sector * kSectorSize / bs, nb = bytes / bs;
  if (nb > be_.num_blocks || ob > be_.num_blocks - nb) return finish(r, VIRTIO_BLK_S_IOERR);
  if (nb == 0) return finish(r, VIRTIO_BLK_S_OK);
  if (!write_zeroes && !be_.unmap) return finish(r, VIRTIO_BLK_S_OK);  // "MAY deallocate": a no-op
  if (write_zeroes && !be_.write_zeroes) return finish(r, VIRTIO_BLK_S_UNSUPP);
  r->io.type = write_zeroes ? bdev::IoType::kWriteZeroes : bdev::IoType::kUnmap;
  r->io.iov = nullptr;
  r->io.iovcnt = 0;
  r->io.offset_blocks = ob;
  r->io.num_blocks = nb;
  submit(r);
}

}  // namespace vdpu::virtio::blk
