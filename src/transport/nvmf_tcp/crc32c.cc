#include "transport/nvmf_tcp/crc32c.h"

#include <array>
#include <cstring>

namespace vdpu::nvmf_tcp {
namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

struct Tables {
  uint32_t t[8][256];
};

constexpr Tables make_tables() {
  Tables tb{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    tb.t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) tb.t[s][i] = (tb.t[s - 1][i] >> 8) ^ tb.t[0][tb.t[s - 1][i] & 0xff];
  }
  return tb;
}

constexpr Tables kTables = make_tables();

uint32_t update_sw(uint32_t c, const uint8_t* p, size_t n) noexcept {
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xff];
    --n;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = kTables.t[7][w & 0xff] ^ kTables.t[6][(w >> 8) & 0xff] ^ kTables.t[5][(w >> 16) & 0xff] ^
        kTables.t[4][(w >> 24) & 0xff] ^ kTables.t[3][(w >> 32) & 0xff] ^
        kTables.t[2][(w >> 40) & 0xff] ^ kTables.t[1][(w >> 48) & 0xff] ^
        kTables.t[0][(w >> 56) & 0xff];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
// Serial: one crc32 per 8 bytes (latency bound, ~2.7 bytes/cycle).
__attribute__((target("sse4.2"))) uint32_t update_hw_serial(uint32_t c, const uint8_t* p,
                                                            size_t n) noexcept {
  uint64_t c64 = c;
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c64 = __builtin_ia32_crc32qi(uint32_t(c64), *p++);
    --n;
  }
  while (n >= 32) {
    uint64_t a, b, d, e;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&d, p + 16, 8);
    std::memcpy(&e, p + 24, 8);
    c64 = __builtin_ia32_crc32di(c64, a);
    c64 = __builtin_ia32_crc32di(c64, b);
    c64 = __builtin_ia32_crc32di(c64, d);
    c64 = __builtin_ia32_crc32di(c64, e);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t a;
    std::memcpy(&a, p, 8);
    c64 = __builtin_ia32_crc32di(c64, a);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = uint32_t(c64);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

// The register after feeding zero_bytes zeros to register c, as a function of
// c: linear over GF(2), so one 256-entry table per byte of c. Built once with
// the serial hardware routine.
struct ShiftTable {
  uint32_t t[4][256];
};

__attribute__((target("sse4.2"))) ShiftTable make_shift(size_t zero_bytes) {
  ShiftTable st{};
  static const uint8_t zeros[4096] = {};
  for (int byte = 0; byte < 4; ++byte) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t c = v << (8 * byte);
      size_t left = zero_bytes;
      while (left) {
        size_t k = left < sizeof(zeros) ? left : sizeof(zeros);
        c = update_hw_serial(c, zeros, k);
        left -= k;
      }
      st.t[byte][v] = c;
    }
  }
  return st;
}

inline uint32_t shift(const ShiftTable& st, uint32_t c) {
  return st.t[0][c & 0xff] ^ st.t[1][(c >> 8) & 0xff] ^ st.t[2][(c >> 16) & 0xff] ^
         st.t[3][c >> 24];
}

// Large buffers: three independent crc32 streams per round hide the
// instruction's 3-cycle latency; the partial registers are combined with the
// shift tables. Each round covers three streams of kStream bytes.
constexpr size_t kStream = 1024;

__attribute__((target("sse4.2"))) uint32_t update_hw(uint32_t c, const uint8_t* p,
                                                     size_t n) noexcept {
  static const ShiftTable kShift1 = make_shift(kStream);
  static const ShiftTable kShift2 = make_shift(2 * kStream);
  while (n >= 3 * kStream) {
    uint64_t c0 = c, c1 = 0, c2 = 0;
    const uint8_t* p0 = p;
    const uint8_t* p1 = p + kStream;
    const uint8_t* p2 = p + 2 * kStream;
    for (size_t i = 0; i < kStream; i += 8) {
      uint64_t a, b, d;
      std::memcpy(&a, p0 + i, 8);
      std::memcpy(&b, p1 + i, 8);
      std::memcpy(&d, p2 + i, 8);
      c0 = __builtin_ia32_crc32di(c0, a);
      c1 = __builtin_ia32_crc32di(c1, b);
      c2 = __builtin_ia32_crc32di(c2, d);
    }
    // crc(A|B|C) = shift2(crc_A) ^ shift1(crc_B from 0) ^ crc_C from 0, for
    // the raw (non-inverted) register form: CRC is linear over GF(2).
    c = shift(kShift2, uint32_t(c0)) ^ shift(kShift1, uint32_t(c1)) ^ uint32_t(c2);
    p += 3 * kStream;
    n -= 3 * kStream;
  }
  return update_hw_serial(c, p, n);
}

bool detect_hw() noexcept {
  return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t update_hw(uint32_t c, const uint8_t* p, size_t n) noexcept {
  return update_sw(c, p, n);
}
bool detect_hw() noexcept {
  return false;
}
#endif

const bool kHw = detect_hw();

}  // namespace

uint32_t crc32c_update(uint32_t state, const void* data, size_t len) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  return kHw ? update_hw(state, p, len) : update_sw(state, p, len);
}

uint32_t crc32c_iov(const struct iovec* iov, int iovcnt, size_t len) noexcept {
  uint32_t s = kCrc32cInit;
  for (int i = 0; i < iovcnt && len; ++i) {
    size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
    s = crc32c_update(s, iov[i].iov_base, k);
    len -= k;
  }
  return crc32c_final(s);
}

bool crc32c_hw() noexcept {
  return kHw;
}

}  // namespace vdpu::nvmf_tcp
