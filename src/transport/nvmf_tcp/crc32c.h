// CRC32C (Castagnoli, iSCSI polynomial 0x1EDC6F41 reflected 0x82F63B78), the
// header and data digest of NVMe/TCP (NVMe/TCP Transport 1.0 §3.6.1.3).
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
// start-up), else a slicing-by-8 table. Thread-safe, allocation-free.
//
// Usage: the digest of a buffer is crc32c(p, n). Over several pieces:
//   uint32_t s = kCrc32cInit; s = crc32c_update(s, a, na); s = crc32c_update(s, b, nb);
//   uint32_t digest = crc32c_final(s);
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace vdpu::nvmf_tcp {

constexpr uint32_t kCrc32cInit = 0xffffffffu;

// Running state in, running state out (no pre/post inversion).
uint32_t crc32c_update(uint32_t state, const void* data, size_t len) noexcept;
inline uint32_t crc32c_final(uint32_t state) noexcept {
  return state ^ 0xffffffffu;
}
inline uint32_t crc32c(const void* data, size_t len) noexcept {
  return crc32c_final(crc32c_update(kCrc32cInit, data, len));
}
// Digest over the first len bytes of an iovec list.
uint32_t crc32c_iov(const struct iovec* iov, int iovcnt, size_t len) noexcept;

// True when the hardware path is in use (for logs and benchmarks).
bool crc32c_hw() noexcept;

}  // namespace vdpu::nvmf_tcp
