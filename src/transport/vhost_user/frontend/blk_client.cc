#include "transport/vhost_user/frontend/blk_client.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "virtio/device.h"

namespace vdpu::vhost_user::fe {

namespace vb = virtio::blk;

// ---------------------------------------------------------------------------
// BlkQueue

namespace {
// Per slot: [pad][header: 16 bytes ending at a page boundary][data: max_io][status]
// so that header+data and data+status are contiguous (2-descriptor layout)
// and the data buffer is page aligned (O_DIRECT back-ends).
uint64_t slot_stride(uint32_t max_io) { return 4096 + ((uint64_t(max_io) + 1 + 4095) & ~4095ull); }
}  // namespace

uint64_t BlkQueue::mem_bytes(uint16_t queue_size, uint32_t depth, uint32_t max_io) {
  return virtio::split_desc_bytes(queue_size) + virtio::split_avail_bytes(queue_size) +
         virtio::split_used_bytes(queue_size) + uint64_t(depth) * slot_stride(max_io) + 3 * 4096;
}

Result<std::unique_ptr<BlkQueue>> BlkQueue::create(GuestMemory& mem, uint16_t queue_size, uint32_t depth,
                                                   uint32_t max_io, uint32_t descs) {
  if (descs != 2 && descs != 3) return make_error(Errc::kInvalidArgument, "descs must be 2 or 3");
  if (depth == 0 || uint64_t(depth) * descs > queue_size)
    return make_error(Errc::kInvalidArgument, fmt::format("queue size {} < {} descriptors x depth {}", queue_size,
                                                          descs, depth));
  if (max_io == 0 || max_io % 512) return make_error(Errc::kInvalidArgument, "max_io must be a multiple of 512");
  auto q = std::unique_ptr<BlkQueue>(new BlkQueue());
  auto vq = SplitQueue::create(mem, queue_size);
  if (!vq) return vq.error();
  q->mem_ = &mem;
  q->vq_ = *vq;
  q->depth_ = depth;
  q->max_io_ = max_io;
  q->descs_ = descs;
  auto* area = static_cast<uint8_t*>(mem.alloc(uint64_t(depth) * slot_stride(max_io), 4096));
  if (!area) return make_error(Errc::kNoMemory, "guest memory too small for the queue");
  q->slots_.resize(depth);
  for (uint32_t s = 0; s < depth; ++s) {
    uint8_t* base = area + uint64_t(s) * slot_stride(max_io);
    Slot& sl = q->slots_[s];
    sl.hdr = reinterpret_cast<vb::VirtioBlkOutHdr*>(base + 4096 - 16);
    sl.data = base + 4096;
    sl.status = sl.data + max_io;
    q->wire(s, vb::VIRTIO_BLK_T_IN, max_io);
  }
  q->kick_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  q->call_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!q->kick_ || !q->call_) return make_error(Errc::kIo, "eventfd failed");
  // We poll the used ring: ask the device not to interrupt.
  q->vq_.set_no_interrupt(true);
  return q;
}

void BlkQueue::wire(uint32_t slot, uint32_t type, uint32_t len) {
  Slot& s = slots_[slot];
  const uint16_t h = uint16_t(slot * descs_);
  virtio::VirtqDesc* d = &vq_.desc(h);
  const bool in = type == vb::VIRTIO_BLK_T_IN || type == vb::VIRTIO_BLK_T_GET_ID;
  const uint64_t hdr = mem_->gpa(s.hdr), data = mem_->gpa(s.data);
  constexpr uint16_t N = virtio::VIRTQ_DESC_F_NEXT, W = virtio::VIRTQ_DESC_F_WRITE;
  if (descs_ == 3) {
    s.status = s.data + max_io_;
    const uint64_t st = mem_->gpa(const_cast<uint8_t*>(s.status));
    d[0] = {hdr, 16, N, uint16_t(h + (len ? 1 : 2))};
    d[1] = {data, len, uint16_t(N | (in ? W : 0)), uint16_t(h + 2)};
    d[2] = {st, 1, W, 0};
  } else if (len == 0) {
    s.status = s.data;
    d[0] = {hdr, 16, N, uint16_t(h + 1)};
    d[1] = {data, 1, W, 0};
  } else if (in) {  // header | data + status
    s.status = s.data + len;
    d[0] = {hdr, 16, N, uint16_t(h + 1)};
    d[1] = {data, len + 1, W, 0};
  } else {  // header + data | status
    s.status = s.data + len;
    d[0] = {hdr, 16 + len, N, uint16_t(h + 1)};
    d[1] = {data + len, 1, W, 0};
  }
  s.type = type;
  s.len = len;
}

void BlkQueue::flush() {
  if (!vq_.publish(event_idx_)) return;
  if (event_idx_) vq_.set_used_event(uint16_t(vq_.last_used() - 1));  // far behind: no interrupts
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(kick_.get(), &one, sizeof(one));
  ++kicks_;
}

// ---------------------------------------------------------------------------
// BlkClient

Result<std::unique_ptr<BlkClient>> BlkClient::connect(const std::string& path, const BlkClientOptions& o) {
  auto fe = Frontend::connect(path);
  if (!fe) return fe.error();
  return attach(std::move(*fe), o);
}

Result<std::unique_ptr<BlkClient>> BlkClient::attach(std::unique_ptr<Frontend> fe, const BlkClientOptions& o) {
  std::unique_ptr<BlkClient> c(new BlkClient());
  c->fe_ = std::move(fe);
  c->opts_ = o;
  Frontend& f = *c->fe_;
  VDPU_TRY(f.set_owner());
  auto offered = f.get_features();
  if (!offered) return offered.error();
  if (!(*offered & VHOST_USER_F_PROTOCOL_FEATURES))
    return make_error(Errc::kUnsupported, "back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES");
  auto pf = f.get_protocol_features();
  if (!pf) return pf.error();
  uint64_t want_pf = pf_bit(VHOST_USER_PROTOCOL_F_MQ) | pf_bit(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
                     pf_bit(VHOST_USER_PROTOCOL_F_CONFIG);
  if (o.mem_slots) want_pf |= pf_bit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
  if (o.inflight) want_pf |= pf_bit(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
  VDPU_TRY(f.set_protocol_features(*pf & want_pf));
  if (!(*pf & pf_bit(VHOST_USER_PROTOCOL_F_CONFIG)))
    return make_error(Errc::kUnsupported, "back-end does not offer VHOST_USER_PROTOCOL_F_CONFIG");
  if (*pf & pf_bit(VHOST_USER_PROTOCOL_F_MQ)) {
    auto nq = f.get_queue_num();
    if (!nq) return nq.error();
    if (*nq < o.num_queues)
      return make_error(Errc::kUnsupported, fmt::format("back-end has {} queues, {} wanted", *nq, o.num_queues));
  }
  // Features a simple polled driver understands.
  uint64_t want = virtio::kFVersion1 | VHOST_USER_F_PROTOCOL_FEATURES | vb::VIRTIO_BLK_F_SIZE_MAX |
                  vb::VIRTIO_BLK_F_SEG_MAX | vb::VIRTIO_BLK_F_BLK_SIZE | vb::VIRTIO_BLK_F_FLUSH |
                  vb::VIRTIO_BLK_F_TOPOLOGY | vb::VIRTIO_BLK_F_MQ | vb::VIRTIO_BLK_F_RO;
  if (o.event_idx) want |= virtio::kFEventIdx;
  c->features_ = *offered & want;
  if (!(c->features_ & virtio::kFVersion1)) return make_error(Errc::kUnsupported, "back-end is not VIRTIO 1");
  auto cfg = f.get_config(0, 60);
  if (!cfg) return cfg.error();
  vb::VirtioBlkConfig bc{};
  std::memcpy(&bc, cfg->data(), std::min(cfg->size(), sizeof(bc)));
  c->capacity_ = bc.capacity;
  if ((c->features_ & vb::VIRTIO_BLK_F_BLK_SIZE) && bc.blk_size >= 512) c->blk_size_ = bc.blk_size;
  // Guest memory: rings + slots + data for every queue, plus slack.
  const uint64_t per_q = BlkQueue::mem_bytes(o.queue_size, o.depth, o.max_io);
  auto mem = GuestMemory::create(per_q * o.num_queues + o.extra_mem + (1 << 20), 0x40000000, o.hugepages);
  if (!mem) return mem.error();
  c->mem_ = std::move(*mem);
  for (uint16_t q = 0; q < o.num_queues; ++q) {
    auto bq = BlkQueue::create(*c->mem_, o.queue_size, o.depth, o.max_io, o.descs);
    if (!bq) return bq.error();
    (*bq)->set_event_idx(c->features_ & virtio::kFEventIdx);
    c->queues_.push_back(std::move(*bq));
  }
  return c;
}

Status BlkClient::start() {
  Frontend& f = *fe_;
  VDPU_TRY(f.set_features(features_));
  const MemRegion r = mem_->region();
  const int mfd = mem_->fd();
  if (f.protocol_features() & pf_bit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
    VDPU_TRY(f.add_mem_reg(r, mfd));
  } else {
    VDPU_TRY(f.set_mem_table(std::span<const MemRegion>(&r, 1), std::span<const int>(&mfd, 1)));
  }
  if (f.protocol_features() & pf_bit(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) {
    if (!inflight_fd_) {
      auto d = f.get_inflight_fd(uint16_t(queues_.size()), opts_.queue_size, &inflight_fd_);
      if (!d) return d.error();
      VDPU_TRY(f.set_inflight_fd(*d, inflight_fd_.get()));
    }
  }
  for (uint16_t q = 0; q < queues_.size(); ++q) {
    BlkQueue& bq = *queues_[q];
    SplitQueue& vq = bq.vq();
    VDPU_TRY(f.set_vring_num(q, vq.size()));
    VDPU_TRY(f.set_vring_base(q, vq.avail_idx()));
    VDPU_TRY(f.set_vring_addr(q, vq.desc_uva(), vq.used_uva(), vq.avail_uva()));
    VDPU_TRY(f.set_vring_kick(q, opts_.poll_kick ? -1 : bq.kick_fd()));
    VDPU_TRY(f.set_vring_call(q, bq.call_fd()));
  }
  for (uint16_t q = 0; q < queues_.size(); ++q) VDPU_TRY(f.set_vring_enable(q, true));
  return {};
}

Status BlkClient::stop() {
  for (uint16_t q = 0; q < queues_.size(); ++q) VDPU_TRY(fe_->set_vring_enable(q, false));
  for (uint16_t q = 0; q < queues_.size(); ++q) {
    auto b = fe_->get_vring_base(q);
    if (!b) return b.error();
  }
  return {};
}

Result<uint8_t> BlkClient::io(uint16_t q, uint32_t type, uint64_t sector, void* buf, uint32_t len,
                              int timeout_ms) {
  BlkQueue& bq = *queues_[q];
  if (len > bq.max_io()) return make_error(Errc::kInvalidArgument, "len > max_io");
  if (type == vb::VIRTIO_BLK_T_OUT && len) std::memcpy(bq.data(0), buf, len);
  bq.prep(0, type, sector, len);
  bq.flush();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int got = -1;
    bq.reap([&](uint32_t slot, uint8_t status, uint32_t) {
      if (slot == 0) got = status;
    });
    if (got >= 0) {
      if (type == vb::VIRTIO_BLK_T_IN && len) std::memcpy(buf, bq.data(0), len);
      return uint8_t(got);
    }
    if (std::chrono::steady_clock::now() > deadline) return make_error(Errc::kTimeout, "request timed out");
    std::this_thread::yield();
  }
}

}  // namespace vdpu::vhost_user::fe
