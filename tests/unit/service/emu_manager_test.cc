// Emulation manager: function layout, lookup rules, VUID persistence,
// hotplug slots, list shape and MSI-X pools (spec snap-storage §1.4-1.6,
// §4.1, §9).
#include "service/emu/emu_manager.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "pci/emu_config.h"

namespace vdpu::service::emu {
namespace {

namespace fs = std::filesystem;

class EmuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vdpu-emu-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  Options opts(Layout l = default_layout()) {
    Options o;
    o.layout = std::move(l);
    o.state_dir = (dir_ / "state").string();
    o.emu_dir = (dir_ / "emu").string();
    return o;
  }
  std::unique_ptr<Manager> make(Layout l = default_layout()) {
    auto m = Manager::create(opts(std::move(l)));
    EXPECT_TRUE(m.ok()) << m.error().message;
    return std::move(*m);
  }
  fs::path dir_;
};

Layout with_vfs(uint32_t n) {
  Layout l;
  l.static_pfs.push_back(PfConfig{EmuType::kVblk, 0, n, 4});
  l.hotplug_slots = 2;
  return l;
}

TEST_F(EmuTest, DefaultLayoutHasOneVblkAndOneNvmePf) {
  auto m = make();
  auto pfs = m->pfs();
  ASSERT_EQ(pfs.size(), 2u);
  EXPECT_EQ(pfs[0]->type, EmuType::kVblk);
  EXPECT_EQ(pfs[1]->type, EmuType::kNvme);
  EXPECT_EQ(pfs[0]->pf_index, 0u);
  EXPECT_EQ(pfs[1]->pf_index, 0u);  // pf index counts per type
  EXPECT_NE(pfs[0]->vhca_id, pfs[1]->vhca_id);
  EXPECT_EQ(pfs[0]->vuid, m->serial() + "VBLKS0D0F0");
  EXPECT_EQ(pfs[1]->vuid, m->serial() + "NVMES0D0F0");
  EXPECT_EQ(pfs[0]->socket, (dir_ / "emu").string() + "/" + pfs[0]->vuid);
  EXPECT_EQ(pfs[0]->state, HotplugState::kPowerOn);
  EXPECT_TRUE(fs::is_directory(dir_ / "emu"));
  EXPECT_EQ(m->hotplug_slots(), 31u);
}

TEST_F(EmuTest, VuidsStableAcrossRestarts) {
  std::string serial, hp_vuid;
  {
    auto m = make();
    serial = m->serial();
    auto f = m->create_hotplug(EmuType::kVblk);
    ASSERT_TRUE(f.ok());
    hp_vuid = (*f)->vuid;
    m->set_state(**f, HotplugState::kPowerOn);
  }
  auto m = make();
  EXPECT_EQ(m->serial(), serial);
  Function* f = m->find_vuid(hp_vuid);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hotplugged);
  EXPECT_EQ(f->state, HotplugState::kPowerOn);  // hotplug functions persist (§1.4)
  EXPECT_EQ(f->pf_index, 1u);                   // after the static VBLK PF
}

TEST_F(EmuTest, NoStateDirGivesFreshSerial) {
  Options o = opts();
  o.state_dir.clear();
  auto a = Manager::create(o);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->serial().size(), 12u);
}

TEST_F(EmuTest, CorruptStateFileIsAnError) {
  fs::create_directories(dir_ / "state");
  FILE* f = fopen((dir_ / "state" / "emu-emu0.json").c_str(), "w");
  fputs("{not json", f);
  fclose(f);
  auto m = Manager::create(opts());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kIo);
}

TEST_F(EmuTest, SelectorRules) {
  auto m = make(with_vfs(3));
  Function* pf = m->pfs()[0];
  Selector s;
  EXPECT_EQ(m->select(EmuType::kVblk, s).error().code, Errc::kInvalidArgument);  // empty
  s.vf_id = 1;
  EXPECT_EQ(m->select(EmuType::kVblk, s).error().code, Errc::kInvalidArgument);  // vf without pf
  s.pf_id = 0;
  auto vf = m->select(EmuType::kVblk, s);
  ASSERT_TRUE(vf.ok());
  EXPECT_EQ((*vf)->vf_index, 1);
  EXPECT_EQ((*vf)->parent, pf);
  EXPECT_EQ((*vf)->vuid, pf->vuid + "VF1");
  s.vuid = pf->vuid;  // disagrees with pf 0 vf 1
  EXPECT_EQ(m->select(EmuType::kVblk, s).error().code, Errc::kInvalidArgument);
  Selector by_vhca;
  by_vhca.vhca_id = pf->vhca_id;
  EXPECT_EQ(*m->select(EmuType::kVblk, by_vhca), pf);
  EXPECT_EQ(m->select(EmuType::kNvme, by_vhca).error().code, Errc::kInvalidArgument);  // wrong type
  Selector nf;
  nf.vuid = "nope";
  EXPECT_EQ(m->select(EmuType::kVblk, nf).error().code, Errc::kNotFound);
  Selector bdf;
  bdf.pci_bdf = "0000:" + (*vf)->pci_bdf;  // domain prefix accepted
  EXPECT_EQ(*m->select(EmuType::kVblk, bdf), *vf);
  Selector pf9;
  pf9.pf_id = 9;
  EXPECT_EQ(m->select(EmuType::kVblk, pf9).error().code, Errc::kNotFound);
}

TEST_F(EmuTest, UniqueIdentifiers) {
  auto m = make(with_vfs(20));
  std::set<uint32_t> ids;
  std::set<std::string> bdfs, vuids;
  size_t n = 0;
  for (Function* pf : m->pfs()) {
    for (Function* f : {pf}) ids.insert(f->vhca_id), bdfs.insert(f->pci_bdf), vuids.insert(f->vuid), ++n;
    for (auto& v : pf->vfs) ids.insert(v->vhca_id), bdfs.insert(v->pci_bdf), vuids.insert(v->vuid), ++n;
  }
  auto h = m->create_hotplug(EmuType::kVblk);
  ASSERT_TRUE(h.ok());
  ids.insert((*h)->vhca_id), bdfs.insert((*h)->pci_bdf), vuids.insert((*h)->vuid), ++n;
  EXPECT_EQ(ids.size(), n);
  EXPECT_EQ(bdfs.size(), n);
  EXPECT_EQ(vuids.size(), n);
}

TEST_F(EmuTest, HotplugSlotsAreLimited) {
  auto m = make(with_vfs(0));
  auto a = m->create_hotplug(EmuType::kVblk);
  auto b = m->create_hotplug(EmuType::kNvme);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->slot, 1u);
  EXPECT_EQ((*b)->slot, 2u);
  auto c = m->create_hotplug(EmuType::kVblk);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kBusy);
  std::string av = (*a)->vuid;
  ASSERT_TRUE(m->destroy_hotplug(av).ok());
  auto d = m->create_hotplug(EmuType::kVblk);  // slot 1 is free again
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->slot, 1u);
  EXPECT_EQ((*d)->vuid, av);
}

TEST_F(EmuTest, DestroyHotplugRules) {
  auto m = make();
  EXPECT_EQ(m->destroy_hotplug("nope").error().code, Errc::kNotFound);
  EXPECT_EQ(m->destroy_hotplug(m->pfs()[0]->vuid).error().code, Errc::kInvalidArgument);
  auto f = m->create_hotplug(EmuType::kVblk);
  ASSERT_TRUE(m->bind(**f, "VblkCtrl9").ok());
  EXPECT_EQ(m->bind(**f, "Other").error().code, Errc::kExists);
  EXPECT_EQ(m->destroy_hotplug((*f)->vuid).error().code, Errc::kBusy);
  m->unbind(**f);
  EXPECT_TRUE(m->destroy_hotplug((*f)->vuid).ok());
}

TEST_F(EmuTest, ListShape) {
  auto m = make(with_vfs(2));
  ASSERT_TRUE(m->bind(*m->pfs()[0], "VblkCtrl1").ok());
  json l = m->list(false);
  ASSERT_EQ(l.size(), 1u);
  const json& e = l[0];
  for (const char* k : {"hotplugged", "hotplug state", "emulation_type", "pf_index", "pci_bdf",
                        "vhca_id", "vuid", "ctrl_id", "num_vfs", "vfs"})
    EXPECT_TRUE(e.contains(k)) << k;
  EXPECT_EQ(e["hotplug state"], "POWER_ON");
  EXPECT_EQ(e["emulation_type"], "VBLK");
  EXPECT_EQ(e["ctrl_id"], "VblkCtrl1");
  EXPECT_EQ(e["num_vfs"], 0);
  EXPECT_TRUE(e["vfs"].empty());  // inactive VFs hidden without --all
  json all = m->list(true);
  ASSERT_EQ(all[0]["vfs"].size(), 2u);
  EXPECT_EQ(all[0]["vfs"][1]["vf_index"], 1);
  EXPECT_FALSE(all[0]["vfs"][0].contains("ctrl_id"));
  ASSERT_TRUE(m->set_vfs_enabled(*m->pfs()[0], 1).ok());
  EXPECT_EQ(m->list(false)[0]["vfs"].size(), 1u);
  EXPECT_EQ(m->list(false)[0]["num_vfs"], 1);
  EXPECT_FALSE(m->set_vfs_enabled(*m->pfs()[0], 3).ok());
}

TEST_F(EmuTest, LayoutFromConfigFile) {
  auto c = pci::parse_emu_config(
      "SRIOV_EN=1\nPCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=8\n"
      "VIRTIO_BLK_EMULATION_ENABLE=1\nVIRTIO_BLK_EMULATION_NUM_PF=2\n"
      "VIRTIO_BLK_EMULATION_NUM_VF=4\nNVME_EMULATION_ENABLE=1\nNVME_EMULATION_NUM_PF=1\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  Layout l = layout_from_config(*c);
  EXPECT_EQ(l.hotplug_slots, 7u);
  ASSERT_EQ(l.static_pfs.size(), 3u);
  auto m = make(l);
  Selector s;
  s.pf_id = 1;
  s.vf_id = 3;
  EXPECT_TRUE(m->select(EmuType::kVblk, s).ok());
  s.pf_id = 2;
  EXPECT_EQ(m->select(EmuType::kVblk, s).error().code, Errc::kNotFound);
}

TEST_F(EmuTest, MsixPool) {
  auto m = make(with_vfs(4));
  Function* pf = m->pfs()[0];
  Function* vf0 = pf->vfs[0].get();
  // No pool before reclaim.
  EXPECT_EQ(m->take_vf_resources(*vf0, 4, 3).error().code, Errc::kState);
  ASSERT_TRUE(m->set_vfs_enabled(*pf, 1).ok());
  EXPECT_EQ(m->reclaim_vfs_msix(*pf).error().code, Errc::kBusy);  // §9: no VF enabled
  ASSERT_TRUE(m->set_vfs_enabled(*pf, 0).ok());
  EXPECT_EQ(m->reclaim_vfs_msix(*vf0).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(m->reclaim_vfs_msix(*pf).ok());
  EXPECT_EQ(pf->pool.free_msix, 16u);
  EXPECT_EQ(pf->pool.free_queues, 12u);  // virtio: msix - 1 per VF
  EXPECT_EQ(m->take_vf_resources(*vf0, 1, 1).error().code, Errc::kInvalidArgument);    // < vf_min_msix
  EXPECT_EQ(m->take_vf_resources(*vf0, 17, 1).error().code, Errc::kInvalidArgument);   // > free
  EXPECT_EQ(m->take_vf_resources(*vf0, 4, 13).error().code, Errc::kInvalidArgument);   // > free queues
  ASSERT_TRUE(m->take_vf_resources(*vf0, 10, 9).ok());
  EXPECT_EQ(pf->pool.free_msix, 6u);
  EXPECT_EQ(vf0->num_msix, 10u);
  m->release_vf_resources(*vf0);
  EXPECT_EQ(pf->pool.free_msix, 16u);
  EXPECT_EQ(pf->pool.free_queues, 12u);
}

}  // namespace
}  // namespace vdpu::service::emu
