// A malloc-like bdev for virtio tests: data in a vector, every io type, and
// a "hold" switch that makes channels keep I/Os until released (a bdev that
// completes later: suspend/drain and in-order tests).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bdev/bdev.h"

namespace vdpu::virtio::test {

class VecBdev;

class VecChannel : public bdev::Channel {
 public:
  VecChannel(VecBdev& b);
  // Completes held I/Os (all, or the one at index i). On the channel's thread.
  void release_all(bool reverse = false);
  void release_one(size_t i);
  size_t held() const { return held_.size(); }
  bool poll() noexcept override;

 protected:
  void do_submit(bdev::Io& io) noexcept override;

 private:
  void exec(bdev::Io& io);
  VecBdev& b_;
  std::deque<bdev::Io*> held_;
};

class VecBdev : public bdev::Bdev {
 public:
  VecBdev(std::string name, uint32_t bs, uint64_t nb, bool flush = true, bool unmap = true, bool wz = true)
      : Bdev(std::move(name), "test", bs, nb), data(size_t(bs) * nb), flush_(flush), unmap_(unmap), wz_(wz) {}
  bool supports(bdev::IoType t) const override {
    switch (t) {
      case bdev::IoType::kRead:
      case bdev::IoType::kWrite: return true;
      case bdev::IoType::kFlush: return flush_;
      case bdev::IoType::kUnmap: return unmap_;
      case bdev::IoType::kWriteZeroes: return wz_;
      default: return false;
    }
  }
  std::unique_ptr<bdev::Channel> create_channel() override {
    channels.fetch_add(1);
    return std::make_unique<VecChannel>(*this);
  }

  std::vector<uint8_t> data;
  std::atomic<bool> hold{false};     // channels keep I/Os until hold is cleared (then poll completes them)
  std::atomic<int> fail_next{0};     // complete the next N I/Os with kFailed
  std::atomic<int> channels{0};      // channels ever created
  std::atomic<uint64_t> submitted{0};

 private:
  bool flush_, unmap_, wz_;
};

inline VecChannel::VecChannel(VecBdev& b) : Channel(b), b_(b) {}

inline void VecChannel::do_submit(bdev::Io& io) noexcept {
  b_.submitted.fetch_add(1);
  if (b_.hold.load()) {
    held_.push_back(&io);
    return;
  }
  exec(io);
}

inline bool VecChannel::poll() noexcept {
  if (held_.empty() || b_.hold.load()) return false;
  release_all();
  return true;
}

inline void VecChannel::release_all(bool reverse) {
  std::deque<bdev::Io*> h;
  h.swap(held_);
  if (reverse) std::reverse(h.begin(), h.end());
  for (bdev::Io* io : h) exec(*io);
}

inline void VecChannel::release_one(size_t i) {
  bdev::Io* io = held_[i];
  held_.erase(held_.begin() + long(i));
  exec(*io);
}

inline void VecChannel::exec(bdev::Io& io) {
  if (b_.fail_next.load() > 0) {
    b_.fail_next.fetch_sub(1);
    complete(io, bdev::IoStatus::kFailed);
    return;
  }
  size_t bs = b_.block_size();
  size_t off = io.offset_blocks * bs, len = io.num_blocks * bs;
  switch (io.type) {
    case bdev::IoType::kRead:
    case bdev::IoType::kWrite: {
      size_t pos = off;
      for (uint32_t i = 0; i < io.iovcnt && pos < off + len; ++i) {
        size_t k = std::min(io.iov[i].iov_len, off + len - pos);
        if (io.type == bdev::IoType::kRead) std::memcpy(io.iov[i].iov_base, &b_.data[pos], k);
        else std::memcpy(&b_.data[pos], io.iov[i].iov_base, k);
        pos += k;
      }
      break;
    }
    case bdev::IoType::kUnmap:
    case bdev::IoType::kWriteZeroes: std::memset(&b_.data[off], 0, len); break;
    default: break;
  }
  complete(io, bdev::IoStatus::kSuccess);
}

}  // namespace vdpu::virtio::test
