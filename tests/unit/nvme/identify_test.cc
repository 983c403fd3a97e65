// Identify structures checked field by field (Base 2.0 Figures 275-282,
// NVM 1.0 Figures 97-100), Get/Set Features and Get Log Page.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

uint16_t sc_of(const std::optional<CqEntry>& e) { return e ? uint16_t((e->status >> 1) & 0x7ff) : 0xffff; }

class NvmeIdentify : public ::testing::Test {
 protected:
  void SetUp() override {
    TestHost::Options o;
    o.ctrl.num_queues = 8;
    o.ctrl.mdts = 5;
    o.ctrl.compare = true;
    o.namespaces = {{1, 4096}, {3, 8192}};
    h = std::make_unique<TestHost>(o);
    ASSERT_EQ(h->enable() & kCstsRdy, kCstsRdy);
  }
  std::unique_ptr<TestHost> h;
};

TEST_F(NvmeIdentify, Controller) {
  uint64_t buf;
  ASSERT_EQ(sc_of(h->identify(kCnsController, 0, &buf)), sc::kSuccess);
  IdentifyController id;
  std::memcpy(&id, h->hva(buf), sizeof(id));
  EXPECT_EQ(id.vid, 0x15b3);
  EXPECT_EQ(id.ssvid, 0x15b3);
  EXPECT_EQ(std::string(id.sn, 20), "SN0001              ");  // padded with spaces
  EXPECT_EQ(std::string(id.mn, 40), std::string("vdpu test") + std::string(31, ' '));
  EXPECT_EQ(std::string(id.fr, 8), "vdpu0.1 ");
  EXPECT_EQ(id.mdts, 5);
  EXPECT_EQ(id.cntlid, h->ctrl().cntlid());
  EXPECT_EQ(id.ver, kNvmeVersion14);
  EXPECT_EQ(id.oaes, kOaesNsAttrNotices);
  EXPECT_EQ(id.cntrltype, kCntrltypeIo);
  EXPECT_EQ(id.oacs, 0);
  EXPECT_EQ(id.acl, 3);
  EXPECT_EQ(id.aerl, 3);
  EXPECT_EQ(id.frmw, 1 | (4 << 1));
  EXPECT_EQ(id.lpa, kLpaCommandEffects | kLpaExtendedData);
  EXPECT_EQ(id.elpe, 3);
  EXPECT_EQ(id.sqes, 0x66);
  EXPECT_EQ(id.cqes, 0x44);
  EXPECT_EQ(id.maxcmd, 0);
  EXPECT_EQ(id.nn, 0xfffffffeu);
  EXPECT_EQ(id.oncs, kOncsCompare | kOncsDsm | kOncsWriteZeroes | kOncsSaveSelect);
  EXPECT_EQ(id.fuses, 0);
  EXPECT_EQ(id.vwc, 0x05);
  EXPECT_EQ(id.sgls, kSglsSupportedNoAlign);
  EXPECT_EQ(id.mnan, 1024u);
  EXPECT_EQ(id.kas, 1);
  EXPECT_EQ(id.wctemp, 0x157);
  EXPECT_EQ(id.cctemp, 0x175);
  EXPECT_EQ(std::string(id.subnqn), h->subsys().nqn());
  EXPECT_EQ(id.psd[0].mp, 2500);
}

TEST_F(NvmeIdentify, OptionalCommandsFollowOptionsAndBdevs) {
  TestHost::Options o;
  o.ctrl.sgl = false;
  o.ctrl.write_zeroes = false;
  TestHost h2(o);
  ASSERT_EQ(h2.enable() & kCstsRdy, kCstsRdy);
  uint64_t buf;
  ASSERT_EQ(sc_of(h2.identify(kCnsController, 0, &buf)), sc::kSuccess);
  IdentifyController id;
  std::memcpy(&id, h2.hva(buf), sizeof(id));
  // compare unset: every attached bdev supports it -> on; write_zeroes forced off.
  EXPECT_EQ(id.oncs, kOncsCompare | kOncsDsm | kOncsSaveSelect);
  EXPECT_EQ(id.sgls, 0u);
}

TEST_F(NvmeIdentify, Namespace) {
  uint64_t buf;
  ASSERT_EQ(sc_of(h->identify(kCnsNamespace, 3, &buf)), sc::kSuccess);
  IdentifyNamespace id;
  std::memcpy(&id, h->hva(buf), sizeof(id));
  EXPECT_EQ(id.nsze, 8192u);
  EXPECT_EQ(id.ncap, 8192u);
  EXPECT_EQ(id.nuse, 8192u);
  EXPECT_EQ(id.nlbaf, 0);
  EXPECT_EQ(id.flbas, 0);
  EXPECT_EQ(id.lbaf[0].lbads, 9);
  EXPECT_EQ(id.lbaf[0].ms, 0);
  Namespace* ns = h->subsys().find_namespace(3);
  EXPECT_EQ(0, std::memcmp(id.nguid, ns->nguid().data(), 16));
  EXPECT_EQ(0, std::memcmp(id.eui64, ns->eui64().data(), 8));
  // Inactive but valid NSID: zero-filled.
  ASSERT_EQ(sc_of(h->identify(kCnsNamespace, 2, &buf)), sc::kSuccess);
  std::memcpy(&id, h->hva(buf), sizeof(id));
  EXPECT_EQ(id.nsze, 0u);
  // Invalid NSIDs.
  EXPECT_EQ(sc_of(h->identify(kCnsNamespace, 0, &buf)), sc::kInvalidNamespaceOrFormat);
  EXPECT_EQ(sc_of(h->identify(kCnsNamespace, 0xffffffff, &buf)), sc::kInvalidNamespaceOrFormat);
}

TEST_F(NvmeIdentify, ActiveNamespaceLists) {
  uint64_t buf;
  ASSERT_EQ(sc_of(h->identify(kCnsActiveNsList, 0, &buf)), sc::kSuccess);
  EXPECT_EQ(le32(h->hva(buf)), 1u);
  EXPECT_EQ(le32(h->hva(buf) + 4), 3u);
  EXPECT_EQ(le32(h->hva(buf) + 8), 0u);
  ASSERT_EQ(sc_of(h->identify(kCnsActiveNsList, 1, &buf)), sc::kSuccess);
  EXPECT_EQ(le32(h->hva(buf)), 3u);
  EXPECT_EQ(sc_of(h->identify(kCnsActiveNsList, 0xfffffffe, &buf)), sc::kInvalidNamespaceOrFormat);
  ASSERT_EQ(sc_of(h->identify(kCnsCsiActiveNsList, 0, &buf, kCsiNvm)), sc::kSuccess);
  EXPECT_EQ(le32(h->hva(buf)), 1u);
  EXPECT_EQ(sc_of(h->identify(kCnsCsiActiveNsList, 0, &buf, 2)), sc::kInvalidField);
}

TEST_F(NvmeIdentify, NamespaceIdDescriptors) {
  uint64_t buf;
  ASSERT_EQ(sc_of(h->identify(kCnsNsIdDescriptors, 1, &buf)), sc::kSuccess);
  const uint8_t* p = h->hva(buf);
  Namespace* ns = h->subsys().find_namespace(1);
  EXPECT_EQ(p[0], kNidtEui64);
  EXPECT_EQ(p[1], 8);
  EXPECT_EQ(0, std::memcmp(p + 4, ns->eui64().data(), 8));
  p += 12;
  EXPECT_EQ(p[0], kNidtNguid);
  EXPECT_EQ(p[1], 16);
  p += 20;
  EXPECT_EQ(p[0], kNidtUuid);
  EXPECT_EQ(p[1], 16);
  EXPECT_EQ(0, std::memcmp(p + 4, ns->uuid().data(), 16));
  p += 20;
  EXPECT_EQ(p[0], kNidtCsi);
  EXPECT_EQ(p[1], 1);
  EXPECT_EQ(p[4], kCsiNvm);
  EXPECT_EQ(p[5], 0);  // end of list
  EXPECT_EQ(sc_of(h->identify(kCnsNsIdDescriptors, 2, &buf)), sc::kInvalidNamespaceOrFormat);
}

TEST_F(NvmeIdentify, CommandSetSpecific) {
  uint64_t buf;
  EXPECT_EQ(sc_of(h->identify(kCnsCsiController, 0, &buf, kCsiNvm)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->identify(kCnsCsiController, 0, &buf, 1)), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->identify(kCnsCsiNamespace, 1, &buf, kCsiNvm)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->identify(kCnsCsiNamespace, 1, &buf, 2)), sc::kInvalidField);
  ASSERT_EQ(sc_of(h->identify(kCnsIoCommandSetList, 0, &buf)), sc::kSuccess);
  EXPECT_EQ(le64(h->hva(buf)), 1u);
  ASSERT_EQ(sc_of(h->identify(kCnsCsIndependentNamespace, 1, &buf)), sc::kSuccess);
  EXPECT_EQ(h->hva(buf)[14], 1);  // NSTAT: ready
  EXPECT_EQ(sc_of(h->identify(0x10, 0, &buf)), sc::kInvalidField);  // unsupported CNS
}

TEST_F(NvmeIdentify, BadDataPointer) {
  SqEntry c = make_cmd(kAdmIdentify);
  c.cdw10 = kCnsController;
  c.prp1 = 0x7000000000ull;
  EXPECT_EQ(sc_of(h->admin(c)), sc::kDataTransferError);
  c.prp1 = h->alloc(8192) + 2;  // not dword aligned
  EXPECT_EQ(sc_of(h->admin(c)), sc::kPrpOffsetInvalid);
  c.prp1 = h->alloc(8192) + 512;  // crosses a page: PRP2 needed
  c.prp2 = c.prp1 + 4096 - 512 + 8;  // PRP2 with an offset
  EXPECT_EQ(sc_of(h->admin(c)), sc::kPrpOffsetInvalid);
  c.prp2 = c.prp1 + 4096 - 512;
  EXPECT_EQ(sc_of(h->admin(c)), sc::kSuccess);
}

// ---------------------------------------------------------------- features

SqEntry get_feat(uint8_t fid, uint8_t sel = 0, uint32_t cdw11 = 0) {
  SqEntry c = make_cmd(kAdmGetFeatures);
  c.cdw10 = fid | (uint32_t(sel) << 8);
  c.cdw11 = cdw11;
  return c;
}
SqEntry set_feat(uint8_t fid, uint32_t v, bool sv = false) {
  SqEntry c = make_cmd(kAdmSetFeatures);
  c.cdw10 = fid | (sv ? 1u << 31 : 0);
  c.cdw11 = v;
  return c;
}

TEST_F(NvmeIdentify, NumberOfQueues) {
  auto e = h->admin(set_feat(kFidNumberOfQueues, 63 | (63u << 16)));
  ASSERT_EQ(sc_of(e), sc::kSuccess);
  EXPECT_EQ(e->dw0, 7u | (7u << 16));  // 8 allocated, 0-based
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidNumberOfQueues, 0xffff))), sc::kInvalidField);
  e = h->admin(get_feat(kFidNumberOfQueues));
  EXPECT_EQ(e->dw0, 7u | (7u << 16));
  ASSERT_TRUE(h->create_io_queues(1, 16));
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidNumberOfQueues, 1 | (1u << 16)))), sc::kCommandSequenceError);
}

TEST_F(NvmeIdentify, FeaturesSetGetSelect) {
  struct Case { uint8_t fid; uint32_t v; };
  for (Case c : {Case{kFidArbitration, 0x01020303}, Case{kFidErrorRecovery, 10},
                 Case{kFidVolatileWriteCache, 0}, Case{kFidInterruptCoalescing, 0x0a05},
                 Case{kFidAsyncEventConfig, 0x100}, Case{kFidWriteAtomicity, 1}}) {
    ASSERT_EQ(sc_of(h->admin(set_feat(c.fid, c.v))), sc::kSuccess) << int(c.fid);
    auto e = h->admin(get_feat(c.fid));
    EXPECT_EQ(e->dw0, c.v) << int(c.fid);
    e = h->admin(get_feat(c.fid, kSelDefault));
    EXPECT_NE(e->dw0, c.v) << int(c.fid);
    auto s = h->admin(get_feat(c.fid, kSelSaved));
    EXPECT_EQ(s->dw0, e->dw0) << int(c.fid);  // not saveable: saved == default
    e = h->admin(get_feat(c.fid, kSelSupported));
    EXPECT_EQ(e->dw0, kFeatCapChangeable) << int(c.fid);
  }
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidArbitration, 0, /*sv=*/true))), sc::kFeatureIdNotSaveable);
  EXPECT_EQ(sc_of(h->admin(get_feat(kFidArbitration, 4))), sc::kInvalidField);  // SEL reserved
  EXPECT_EQ(sc_of(h->admin(get_feat(0x7f))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(set_feat(0x7f, 0))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidPowerManagement, 1))), sc::kInvalidField);  // NPSS 0
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidErrorRecovery, 1u << 16))), sc::kInvalidField);  // DULBE
}

TEST_F(NvmeIdentify, TemperatureThreshold) {
  auto e = h->admin(get_feat(kFidTemperatureThreshold));
  EXPECT_EQ(e->dw0 & 0xffff, 0x157u);
  ASSERT_EQ(sc_of(h->admin(set_feat(kFidTemperatureThreshold, 0x160))), sc::kSuccess);
  ASSERT_EQ(sc_of(h->admin(set_feat(kFidTemperatureThreshold, 0x100 | (1u << 20)))), sc::kSuccess);
  EXPECT_EQ(h->admin(get_feat(kFidTemperatureThreshold))->dw0 & 0xffff, 0x160u);
  EXPECT_EQ(h->admin(get_feat(kFidTemperatureThreshold, 0, 1u << 20))->dw0 & 0xffff, 0x100u);
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidTemperatureThreshold, 3u << 16))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidTemperatureThreshold, 2u << 20))), sc::kInvalidField);
}

TEST_F(NvmeIdentify, InterruptVectorConfig) {
  auto e = h->admin(get_feat(kFidInterruptVectorConfig, 0, 3));
  EXPECT_EQ(e->dw0, 3u);
  ASSERT_EQ(sc_of(h->admin(set_feat(kFidInterruptVectorConfig, 3 | (1u << 16)))), sc::kSuccess);
  EXPECT_EQ(h->admin(get_feat(kFidInterruptVectorConfig, 0, 3))->dw0, 3u | (1u << 16));
  EXPECT_EQ(sc_of(h->admin(set_feat(kFidInterruptVectorConfig, 9 | (1u << 16)))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(get_feat(kFidInterruptVectorConfig, 0, 9))), sc::kInvalidField);
}

// ---------------------------------------------------------------- log pages

SqEntry log_cmd(uint8_t lid, uint64_t gpa, uint32_t bytes, uint64_t off = 0, bool rae = false) {
  SqEntry c = make_cmd(kAdmGetLogPage);
  c.prp1 = gpa;
  uint32_t numd = bytes / 4 - 1;
  c.cdw10 = lid | (rae ? 1u << 15 : 0) | ((numd & 0xffff) << 16);
  c.cdw11 = numd >> 16;
  c.cdw12 = uint32_t(off);
  c.cdw13 = uint32_t(off >> 32);
  return c;
}

TEST_F(NvmeIdentify, SmartLogCountsIo) {
  ASSERT_TRUE(h->create_io_queues(1, 16));
  uint64_t data = h->alloc(4096);
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 0, 8);
  h->build_prps(w, data, 4096);
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h->build_prps(r, data, 4096);
  ASSERT_EQ(sc_of(h->io(1, r)), sc::kSuccess);
  ASSERT_EQ(sc_of(h->io(1, r)), sc::kSuccess);
  uint64_t buf = h->alloc(4096);
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidSmartHealth, buf, 512))), sc::kSuccess);
  SmartHealthLog s;
  std::memcpy(&s, h->hva(buf), sizeof(s));
  EXPECT_EQ(s.host_write_commands[0], 1u);
  EXPECT_EQ(s.host_read_commands[0], 2u);
  EXPECT_EQ(s.data_units_read[0], 1u);  // 16 units of 512 B, rounded up to thousands
  EXPECT_EQ(s.available_spare, 100);
  EXPECT_GT(s.composite_temperature, 273);
}

TEST_F(NvmeIdentify, LogOffsetsAndPartialReads) {
  uint64_t buf = h->alloc(8192);
  std::memset(h->hva(buf), 0xee, 8192);
  // Commands Supported and Effects, read in two halves.
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidCommandsSupported, buf, 2048))), sc::kSuccess);
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidCommandsSupported, buf + 2048, 2048, 2048))), sc::kSuccess);
  CommandsSupportedLog l;
  std::memcpy(&l, h->hva(buf), sizeof(l));
  EXPECT_EQ(l.acs[kAdmIdentify], kCseCsupp);
  EXPECT_EQ(l.acs[kAdmCreateIoSq], kCseCsupp);
  EXPECT_EQ(l.acs[kAdmFormatNvm], 0u);
  EXPECT_EQ(l.iocs[kIoRead], kCseCsupp);
  EXPECT_EQ(l.iocs[kIoWrite], kCseCsupp | kCseLbcc);
  EXPECT_EQ(l.iocs[kIoCompare], kCseCsupp);  // compare = true
  EXPECT_EQ(l.iocs[kIoVerify], 0u);
  // A read longer than the log only fills the log's bytes.
  std::memset(h->hva(buf), 0xee, 8192);
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidFirmwareSlot, buf, 1024))), sc::kSuccess);
  EXPECT_EQ(h->hva(buf)[0], 1);  // AFI
  EXPECT_EQ(std::string(reinterpret_cast<char*>(h->hva(buf) + 8), 8), "vdpu0.1 ");
  EXPECT_EQ(h->hva(buf)[600], 0xee);
  // Offset inside the log.
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidFirmwareSlot, buf, 8, 8))), sc::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(h->hva(buf)), 8), "vdpu0.1 ");
  // Errors: offset beyond the log, unaligned offset, unknown LID, index offset.
  EXPECT_EQ(sc_of(h->admin(log_cmd(kLidFirmwareSlot, buf, 8, 512))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(log_cmd(kLidFirmwareSlot, buf, 8, 2))), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->admin(log_cmd(0x70, buf, 8))), sc::kInvalidField);
  SqEntry c = log_cmd(kLidSmartHealth, buf, 512);
  c.cdw14 = 1u << 23;
  EXPECT_EQ(sc_of(h->admin(c)), sc::kInvalidField);
  // Error information log: 4 entries of 64 bytes.
  ASSERT_EQ(sc_of(h->admin(log_cmd(kLidErrorInformation, buf, 256))), sc::kSuccess);
}

}  // namespace
}  // namespace vdpu::nvme::test
