#include "virtio/net/net_backend.h"

#include <algorithm>
#include <cstring>

namespace vdpu::virtio::net {

uint32_t iov_from_buf_slow(const iovec* iov, uint32_t iovcnt, uint32_t off, const void* src, uint32_t len) noexcept {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint32_t done = 0;
  for (uint32_t i = 0; i < iovcnt && done < len; ++i) {
    if (off >= iov[i].iov_len) {
      off -= uint32_t(iov[i].iov_len);
      continue;
    }
    uint32_t n = uint32_t(std::min<uint64_t>(iov[i].iov_len - off, len - done));
    std::memcpy(static_cast<uint8_t*>(iov[i].iov_base) + off, s + done, n);
    done += n;
    off = 0;
  }
  return done;
}

uint32_t iov_to_buf_slow(const iovec* iov, uint32_t iovcnt, uint32_t off, void* dst, uint32_t len) noexcept {
  uint8_t* d = static_cast<uint8_t*>(dst);
  uint32_t done = 0;
  for (uint32_t i = 0; i < iovcnt && done < len; ++i) {
    if (off >= iov[i].iov_len) {
      off -= uint32_t(iov[i].iov_len);
      continue;
    }
    uint32_t n = uint32_t(std::min<uint64_t>(iov[i].iov_len - off, len - done));
    std::memcpy(d + done, static_cast<const uint8_t*>(iov[i].iov_base) + off, n);
    done += n;
    off = 0;
  }
  return done;
}

}  // namespace vdpu::virtio::net
