#include "pci/vuid.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace vdpu::pci {
namespace {

TEST(Vuid, FormatMatchesSpecExamples) {
  EXPECT_EQ(make_vuid({"MT2306XZ009T", FunctionType::kVirtioBlk, 1, 0, 0, {}}), "MT2306XZ009TVBLKS1D0F0");
  EXPECT_EQ(make_vuid({"MT2323XZ09G2", FunctionType::kNvme, 1, 0, 0, {}}), "MT2323XZ09G2NVMES1D0F0");
  EXPECT_EQ(make_vuid({"VDPU00000001", FunctionType::kNvme, 0, 0, 1, 12}), "VDPU00000001NVMES0D0F1VF12");
}

TEST(Vuid, ParseRoundTrip) {
  for (auto s : {"MT2306XZ009TVBLKS1D0F0", "VDPU00000001NVMES0D0F1VF12", "ABCVNETS3D2F1"}) {
    auto p = parse_vuid(s);
    ASSERT_TRUE(p) << s;
    EXPECT_EQ(make_vuid(*p), s);
  }
  auto p = parse_vuid("VDPU00000001NVMES0D0F1VF12");
  EXPECT_EQ(p->serial, "VDPU00000001");
  EXPECT_EQ(p->f, 1u);
  EXPECT_EQ(*p->vf, 12u);
}

TEST(Vuid, ParseRejectsMalformed) {
  for (auto s : {"", "NVMES0D0F0", "SERIALNVME", "SERIALNVMES0D0", "SERIALNVMES0D0F0X", "SERIALNVMES0D0F0VF",
                 "SERIALNVMESxD0F0", "SERIALNVMES0D0F0VF1x"})
    EXPECT_FALSE(parse_vuid(s)) << s;
}

TEST(Vuid, SerialIsStableAcrossRestarts) {
  std::string path = ::testing::TempDir() + "/vuid_serial_test";
  std::remove(path.c_str());
  auto a = load_or_create_serial(path);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->size(), 12u);
  auto b = load_or_create_serial(path);
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  {
    std::ofstream f(path);
    f << "bad serial!\n";
  }
  EXPECT_EQ(load_or_create_serial(path).error().code, Errc::kInvalidArgument);
  std::remove(path.c_str());
  EXPECT_EQ(load_or_create_serial("/nonexistent-dir/x/serial").error().code, Errc::kIo);
}

}  // namespace
}  // namespace vdpu::pci
