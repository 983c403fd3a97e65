// Helpers shared by the bdev unit tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "bdev/bdev.h"

namespace vdpu::bdev::test {

// An Io plus its completion record.
struct TestIo {
  Io io;
  iovec iov[4];
  bool done = false;
  IoStatus status = IoStatus::kFailed;
  int completions = 0;

  TestIo() {
    io.cb = [](Io& io, IoStatus st) {
      auto* t = static_cast<TestIo*>(io.cb_arg);
      t->done = true;
      t->status = st;
      ++t->completions;
    };
    io.cb_arg = this;
  }
  void set(IoType type, uint64_t off, uint64_t n, void* buf = nullptr, size_t len = 0) {
    io.type = type;
    io.offset_blocks = off;
    io.num_blocks = n;
    if (buf) {
      iov[0] = {buf, len};
      io.iov = iov;
      io.iovcnt = 1;
    } else {
      io.iov = nullptr;
      io.iovcnt = 0;
    }
    done = false;
  }
};

// A 4 KiB-aligned, zeroed buffer (good for O_DIRECT).
struct Buf {
  explicit Buf(size_t n) : size(n), p(static_cast<unsigned char*>(std::aligned_alloc(4096, (n + 4095) & ~size_t(4095)))) {
    memset(p, 0, n);
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  size_t size;
  unsigned char* p;
};

// Polls ch until pred() holds; fails after a bounded number of polls (no
// timing involved).
template <class Pred>
bool poll_until(Channel& ch, Pred pred, uint64_t max_polls = 50'000'000) {
  for (uint64_t i = 0; i < max_polls; ++i) {
    if (pred()) return true;
    ch.poll();
  }
  return pred();
}

// Runs one Io to completion on ch and returns its status.
inline IoStatus run(Channel& ch, TestIo& t) {
  t.done = false;
  ch.submit(t.io);
  EXPECT_TRUE(poll_until(ch, [&] { return t.done; }));
  return t.status;
}

// Removes every bdev after each test (the Manager is a process singleton).
class BdevTest : public ::testing::Test {
 protected:
  void TearDown() override { Manager::get().clear(); }
};

}  // namespace vdpu::bdev::test
