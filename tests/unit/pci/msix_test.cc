#include "pci/msix.h"

#include <gtest/gtest.h>

#include <vector>

namespace vdpu::pci {
namespace {

struct Sink : IrqSink {
  std::vector<uint16_t> raised;
  void raise(uint16_t v) noexcept override { raised.push_back(v); }
};

void unmask(MsixTable& t, uint16_t v) {
  uint32_t ctrl = 0;
  t.table_write(v * 16 + 12, {reinterpret_cast<uint8_t*>(&ctrl), 4});
}
void mask(MsixTable& t, uint16_t v) {
  uint32_t ctrl = 1;
  t.table_write(v * 16 + 12, {reinterpret_cast<uint8_t*>(&ctrl), 4});
}

TEST(MsixTable, SizesAndResetState) {
  MsixTable t(65);
  EXPECT_EQ(t.table_bytes(), 65u * 16);
  EXPECT_EQ(t.pba_bytes(), 16u);
  for (uint16_t v = 0; v < 65; ++v) EXPECT_TRUE(t.vector_masked(v));  // §6.8.2.9
}

TEST(MsixTable, EntryReadWriteAndReservedBits) {
  MsixTable t(4);
  uint8_t e[16];
  for (int i = 0; i < 16; ++i) e[i] = uint8_t(0xa0 + i);
  t.table_write(16, e);
  uint8_t r[16] = {};
  t.table_read(16, r);
  EXPECT_EQ(0, memcmp(r, e, 12));
  // Vector control: only the mask bit (bit 0) sticks.
  uint32_t ctrl;
  memcpy(&ctrl, r + 12, 4);
  EXPECT_EQ(ctrl, (0xac & 1u));
  uint8_t out[4] = {9, 9, 9, 9};
  t.table_read(4 * 16, out);  // beyond the table
  EXPECT_EQ(out[0], 0);
}

TEST(MsixTable, MaskedVectorSetsPendingDeliveredOnUnmask) {
  MsixTable t(8);
  Sink s;
  t.set_sink(&s);
  t.set_control(true, false);
  t.raise(3);  // masked after reset
  EXPECT_TRUE(s.raised.empty());
  EXPECT_TRUE(t.pending(3));
  uint8_t pba[8];
  t.pba_read(0, pba);
  EXPECT_EQ(pba[0], 1u << 3);
  unmask(t, 3);
  EXPECT_EQ(s.raised, std::vector<uint16_t>{3});
  EXPECT_FALSE(t.pending(3));
  t.raise(3);
  EXPECT_EQ(s.raised.size(), 2u);
}

TEST(MsixTable, FunctionMaskAndDisable) {
  MsixTable t(2);
  Sink s;
  t.set_sink(&s);
  unmask(t, 0);
  t.raise(0);  // MSI-X disabled: pending
  EXPECT_TRUE(t.pending(0));
  t.set_control(true, true);  // enabled but function-masked
  EXPECT_TRUE(s.raised.empty());
  t.set_control(true, false);
  EXPECT_EQ(s.raised, std::vector<uint16_t>{0});
  mask(t, 0);
  t.raise(0);
  t.raise(0);  // one pending bit, one delivery
  unmask(t, 0);
  EXPECT_EQ(s.raised.size(), 2u);
}

TEST(MsixTable, OutOfRangeVectorAndNoSink) {
  MsixTable t(2);
  t.set_control(true, false);
  unmask(t, 1);
  t.raise(7);  // dropped
  t.raise(1);  // no sink yet: pending
  EXPECT_TRUE(t.pending(1));
  Sink s;
  t.set_sink(&s);
  t.set_control(true, false);
  EXPECT_EQ(s.raised, std::vector<uint16_t>{1});
  uint8_t pba[8] = {1};
  t.pba_read(0, pba);
  EXPECT_EQ(pba[0], 0);
}

}  // namespace
}  // namespace vdpu::pci
