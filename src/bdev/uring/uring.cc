#include "bdev/uring/uring.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "runtime/reactor.h"

namespace vdpu::bdev::uring {
namespace {

constexpr unsigned kReapBatch = 64;

class UringBdev final : public Bdev {
 public:
  UringBdev(const Options& o, int fd, bool blk, bool direct, uint32_t bs, uint64_t nb,
            uint32_t mem_align)
      : Bdev(o.name, kModule, bs, nb), opts_(o), fd_(fd), blk_(blk), direct_(direct),
        mem_align_(mem_align) {
    product_name_ = "URING bdev";
  }
  ~UringBdev() override { close(fd_); }

  bool supports(IoType t) const override {
    return t == IoType::kRead || t == IoType::kWrite || t == IoType::kFlush ||
           t == IoType::kUnmap || t == IoType::kWriteZeroes;
  }
  uint32_t required_alignment() const override { return direct_ ? mem_align_ : 1; }
  std::unique_ptr<Channel> create_channel() override;
  json driver_specific() const override {
    return {{"uring", {{"filename", opts_.filename}, {"direct", direct_}}}};
  }
  json write_config() const override {
    return {{"method", "bdev_uring_create"},
            {"params",
             {{"name", name()}, {"filename", opts_.filename}, {"block_size", block_size()},
              {"uuid", uuid()}}}};
  }

  int fd() const { return fd_; }
  bool is_blockdev() const { return blk_; }
  uint32_t ring_entries() const { return opts_.ring_entries; }

 private:
  Options opts_;
  int fd_;
  bool blk_, direct_;
  uint32_t mem_align_;
};

// Per-Io module state kept in Io::module_ctx.
struct IoCtx {
  uint8_t zero_fallback;  // write_zeroes retried as PUNCH_HOLE
};
static_assert(sizeof(IoCtx) <= sizeof(Io::module_ctx));
IoCtx& ctx(Io& io) { return *reinterpret_cast<IoCtx*>(io.module_ctx); }

class UringChannel final : public Channel {
 public:
  explicit UringChannel(UringBdev& b) : Channel(b), b_(b), entries_(b.ring_entries()) {
    int r = io_uring_queue_init(entries_, &ring_, 0);
    if (r < 0) {
      VDPU_ERR("bdev {}: io_uring_queue_init({}) failed: {}", b.name(), entries_, strerror(-r));
      return;
    }
    ok_ = true;
    // Event mode: a completion must wake a sleeping reactor.
    reactor_ = rt::this_reactor();
    if (reactor_) {
      efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (efd_ >= 0 && (io_uring_register_eventfd(&ring_, efd_) < 0 ||
                        !reactor_->add_wake_fd(efd_).ok())) {
        close(efd_);
        efd_ = -1;
      }
    }
  }

  ~UringChannel() override {
    if (!ok_) return;
    // Never lose an Io: pending ones are aborted, in-flight ones waited for.
    while (Io* io = pop_pending()) complete(*io, IoStatus::kAborted);
    while (queued_ > 0) {
      int r = io_uring_submit(&ring_);
      if (r <= 0) break;
      queued_ -= r;
      inflight_ += r;
    }
    while (inflight_ > 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring_, &cqe) < 0) break;
      Io* io = static_cast<Io*>(io_uring_cqe_get_data(cqe));
      int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      --inflight_;
      IoStatus st = status_of(*io, res);
      complete(*io, st == IoStatus::kNoMem ? IoStatus::kAborted : st);
    }
    if (efd_ >= 0) {
      if (reactor_) reactor_->remove_wake_fd(efd_);
      close(efd_);
    }
    io_uring_queue_exit(&ring_);
  }

  bool ok() const { return ok_; }

  bool prepare_sleep() noexcept override {
    // Without a wake eventfd an in-flight Io could complete unseen.
    if (efd_ < 0 && inflight_ > 0) return false;
    return queued_ == 0 && pend_head_ == nullptr && io_uring_cq_ready(&ring_) == 0;
  }

  bool poll() noexcept override {
    bool busy = false;
    unsigned ready = io_uring_cq_ready(&ring_);
    if (ready && efd_ >= 0 && reactor_->event_mode()) {
      // Drain the wake eventfd before reaping: a CQE posted after this read
      // signals it again, so the reactor cannot sleep on an unreaped CQE.
      uint64_t v;
      [[maybe_unused]] ssize_t n = read(efd_, &v, sizeof(v));
    }
    for (int round = 0; ready && round < 4; ++round) {
      io_uring_cqe* cqes[kReapBatch];
      unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
      if (n == 0) break;
      Io* ios[kReapBatch];
      int res[kReapBatch];
      for (unsigned i = 0; i < n; ++i) {
        ios[i] = static_cast<Io*>(io_uring_cqe_get_data(cqes[i]));
        res[i] = cqes[i]->res;
      }
      // Release the CQ slots before the callbacks, which may submit again.
      io_uring_cq_advance(&ring_, n);
      inflight_ -= n;
      for (unsigned i = 0; i < n; ++i) finish(*ios[i], res[i]);
      busy = true;
      if (n < kReapBatch) break;
    }
    while (pend_head_) {
      Io* io = pend_head_;
      if (!prep(*io)) break;
      pop_pending();
    }
    if (queued_ > 0) {
      // One system call for every SQE prepared since the last poll.
      int r = io_uring_submit(&ring_);
      if (r > 0) {
        queued_ -= unsigned(r);
        inflight_ += unsigned(r);
      } else if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR) {
        VDPU_WARN_RL("bdev {}: io_uring_submit: {}", bdev().name(), strerror(-r));
      }
      busy = true;
    }
    return busy;
  }

 protected:
  void do_submit(Io& io) noexcept override {
    ctx(io).zero_fallback = 0;
    // FIFO: nothing overtakes an Io waiting for ring space.
    if (pend_head_ || !prep(io)) push_pending(io);
  }

 private:
  // Prepares an SQE for io; false when the ring is full (kept pending).
  bool prep(Io& io) noexcept {
    if (inflight_ + queued_ >= entries_) return false;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return false;
    const uint64_t bs = b_.block_size();
    const uint64_t off = io.offset_blocks * bs, len = io.num_blocks * bs;
    const int fd = b_.fd();
    switch (io.type) {
      case IoType::kRead: io_uring_prep_readv(sqe, fd, io.iov, io.iovcnt, off); break;
      case IoType::kWrite: io_uring_prep_writev(sqe, fd, io.iov, io.iovcnt, off); break;
      case IoType::kFlush: io_uring_prep_fsync(sqe, fd, 0); break;
      case IoType::kUnmap:
        // Files: deallocates the range. Block devices: zeroes it without a
        // write fallback (blkdev_fallocate), so it stays cheap or fails.
        io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
        break;
      case IoType::kWriteZeroes:
        io_uring_prep_fallocate(sqe, fd,
                                (ctx(io).zero_fallback ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
                                    FALLOC_FL_KEEP_SIZE,
                                off, len);
        break;
      default: io_uring_prep_nop(sqe); break;  // not reached: supports() filters
    }
    io_uring_sqe_set_data(sqe, &io);
    ++queued_;
    return true;
  }

  IoStatus status_of(Io& io, int res) noexcept {
    if (res == -EAGAIN || res == -EINTR) return IoStatus::kNoMem;
    switch (io.type) {
      case IoType::kRead:
      case IoType::kWrite:
        if (uint64_t(res) == io.num_blocks * b_.block_size() && res >= 0) return IoStatus::kSuccess;
        if (res >= 0) {
          VDPU_WARN_RL("bdev {}: short {} ({} of {} bytes)", bdev().name(), io_type_name(io.type),
                       res, io.num_blocks * b_.block_size());
          return IoStatus::kFailed;
        }
        break;
      case IoType::kUnmap:
        // Deallocation is advisory (NVMe DSM AD, virtio-blk DISCARD): a
        // backend that cannot do it has still honoured the request.
        if (res == 0 || res == -EOPNOTSUPP) return IoStatus::kSuccess;
        break;
      default:
        if (res == 0) return IoStatus::kSuccess;
        break;
    }
    VDPU_WARN_RL("bdev {}: {} at block {} failed: {}", bdev().name(), io_type_name(io.type),
                 io.offset_blocks, strerror(-res));
    return IoStatus::kFailed;
  }

  void finish(Io& io, int res) noexcept {
    if (io.type == IoType::kWriteZeroes && !ctx(io).zero_fallback && !b_.is_blockdev() &&
        (res == -EOPNOTSUPP || res == -EINVAL)) {
      // The file system lacks ZERO_RANGE (e.g. tmpfs): a punched hole reads
      // back as zeroes too.
      ctx(io).zero_fallback = 1;
      if (pend_head_ || !prep(io)) push_pending(io);
      return;
    }
    IoStatus st = status_of(io, res);
    if (st == IoStatus::kNoMem) {  // transient: try again
      if (pend_head_ || !prep(io)) push_pending(io);
      return;
    }
    complete(io, st);
  }

  void push_pending(Io& io) noexcept {
    io.next = nullptr;
    if (pend_tail_) pend_tail_->next = &io;
    else pend_head_ = &io;
    pend_tail_ = &io;
  }
  Io* pop_pending() noexcept {
    Io* io = pend_head_;
    if (io) {
      pend_head_ = io->next;
      if (!pend_head_) pend_tail_ = nullptr;
    }
    return io;
  }

  UringBdev& b_;
  io_uring ring_{};
  unsigned entries_;
  unsigned queued_ = 0;    // SQEs prepared, not yet submitted
  unsigned inflight_ = 0;  // submitted, not yet reaped
  Io* pend_head_ = nullptr;
  Io* pend_tail_ = nullptr;
  bool ok_ = false;
  int efd_ = -1;
  rt::Reactor* reactor_ = nullptr;
};

std::unique_ptr<Channel> UringBdev::create_channel() {
  auto ch = std::make_unique<UringChannel>(*this);
  if (!ch->ok()) return nullptr;
  return ch;
}

Error open_error(const std::string& f, int e) {
  Errc c = e == ENOENT ? Errc::kNotFound : (e == EACCES || e == EPERM) ? Errc::kPermission : Errc::kIo;
  return make_error(c, "cannot open " + f + ": " + strerror(e));
}

}  // namespace

Result<Bdev*> create(const Options& o) {
  if (o.name.empty()) return make_error(Errc::kInvalidArgument, "bdev name must not be empty");
  if (o.filename.empty()) return make_error(Errc::kInvalidArgument, "filename must not be empty");
  if (!o.uuid.empty() && !valid_uuid(o.uuid))
    return make_error(Errc::kInvalidArgument, "Failed to parse bdev UUID");
  if (o.ring_entries == 0 || o.ring_entries > 32768)
    return make_error(Errc::kInvalidArgument, "ring_entries must be 1..32768");
  if (Manager::get().find(o.name))
    return make_error(Errc::kExists, "bdev " + o.name + " already exists");

  bool direct = o.direct;
  int fd = open(o.filename.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0 && direct && errno == EINVAL) {
    VDPU_WARN("bdev {}: {} does not support O_DIRECT; using buffered I/O", o.name, o.filename);
    direct = false;
    fd = open(o.filename.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0) return open_error(o.filename, errno);
  auto fail = [&](Errc c, const std::string& m) -> Error {
    close(fd);
    return make_error(c, m);
  };

  struct stat st {};
  if (fstat(fd, &st) < 0) return fail(Errc::kIo, "fstat " + o.filename + ": " + strerror(errno));
  uint64_t size = 0;
  uint32_t lbs = 512, mem_align = 512;
  bool blk = S_ISBLK(st.st_mode);
  if (blk) {
    int ss = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0 || ioctl(fd, BLKSSZGET, &ss) < 0)
      return fail(Errc::kIo, "ioctl on " + o.filename + ": " + strerror(errno));
    lbs = mem_align = uint32_t(ss);
  } else if (S_ISREG(st.st_mode)) {
    size = uint64_t(st.st_size);
#ifdef STATX_DIOALIGN
    struct statx sx {};
    if (direct && statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
      lbs = std::max<uint32_t>(512, sx.stx_dio_offset_align);
      mem_align = std::max<uint32_t>(1, sx.stx_dio_mem_align);
    }
#endif
  } else {
    return fail(Errc::kInvalidArgument, o.filename + " is not a regular file or block device");
  }

  uint32_t bs = o.block_size ? o.block_size : lbs;
  if (bs < 512 || (bs & (bs - 1)) != 0)
    return fail(Errc::kInvalidArgument,
                "block size " + std::to_string(bs) + " must be a power of 2 and at least 512");
  if (direct && bs % lbs != 0)
    return fail(Errc::kInvalidArgument, "block size " + std::to_string(bs) +
                                            " is smaller than the logical block size " +
                                            std::to_string(lbs) + " of " + o.filename);
  uint64_t nb = size / bs;
  if (nb == 0) return fail(Errc::kInvalidArgument, o.filename + " is smaller than one block");

  auto b = std::make_unique<UringBdev>(o, fd, blk, direct, bs, nb, direct ? mem_align : 1);
  if (!o.uuid.empty()) b->set_uuid(o.uuid);
  Bdev* raw = b.get();
  VDPU_TRY(Manager::get().add(std::move(b)));  // closes fd on failure
  return raw;
}

Status destroy(const std::string& name, std::function<void()> done) {
  return remove_module_bdev(name, kModule, std::move(done));
}

}  // namespace vdpu::bdev::uring
