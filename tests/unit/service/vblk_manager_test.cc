// VBLK manager rules with a fake device (spec snap-storage §4.2, §4.3, §5).
#include "service/vblk/vblk_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fake_backend.h"

namespace vdpu::service::vblk {
namespace {

namespace fs = std::filesystem;
using test::FakeState;

class VblkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vdpu-vblk-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    emu::Options o;
    o.layout.static_pfs = {emu::PfConfig{emu::EmuType::kVblk, 0, 2, 4},
                           emu::PfConfig{emu::EmuType::kNvme, 0, 0, 0}};
    o.layout.hotplug_slots = 4;
    o.state_dir = (dir_ / "state").string();
    o.emu_dir = (dir_ / "emu").string();
    emu_ = std::move(*emu::Manager::create(o));
    mgr_ = std::make_unique<Manager>(*emu_, [this](const std::string& n, const CtrlConfig& c,
                                                   const std::string& bdev, bool susp)
                                                -> Result<std::unique_ptr<Backend>> {
      if (fail_factory_) return make_error(Errc::kIo, "factory failed");
      bdev::Desc* d = bdev.empty() ? nullptr : reinterpret_cast<bdev::Desc*>(1);  // marker only
      return std::unique_ptr<Backend>(new test::FakeBackend(&fakes_[n], c, d, susp));
    });
    mgr_->set_on_change([this] { ++changes_; });
    ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<test::IdleBdev>("Malloc0")).ok());
    ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<test::IdleBdev>("Malloc1", 4096)).ok());
  }
  void TearDown() override {
    mgr_.reset();
    emu_.reset();
    for (const char* b : {"Malloc0", "Malloc1"}) bdev::Manager::get().hot_remove(b);
    fs::remove_all(dir_);
  }
  CreateRequest req(std::string bdev = "Malloc0") {
    CreateRequest r;
    r.fn.pf_id = 0;
    r.bdev = std::move(bdev);
    return r;
  }
  // Runs an asynchronous manager call (the fake completes inline).
  template <class F>
  Status run(F&& f) {
    std::optional<Status> out;
    f([&](Status s) { out = s; });
    EXPECT_TRUE(out.has_value());
    return out.value_or(make_error(Errc::kTimeout, "no completion"));
  }
  Errc code(const Status& s) { return s.ok() ? Errc::kOk : s.error().code; }

  fs::path dir_;
  std::unique_ptr<emu::Manager> emu_;
  std::unique_ptr<Manager> mgr_;
  std::map<std::string, FakeState> fakes_;
  bool fail_factory_ = false;
  int changes_ = 0;
};

TEST_F(VblkTest, CreateNamesAndPlugsStaticFunction) {
  auto a = mgr_->create(req());
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, "VblkCtrl1");
  FakeState& f = fakes_["VblkCtrl1"];
  EXPECT_TRUE(f.plugged);  // static functions are always powered on
  EXPECT_EQ(f.socket, emu_->pfs()[0]->socket);
  EXPECT_NE(f.desc, nullptr);
  EXPECT_EQ(emu_->pfs()[0]->ctrl_id, "VblkCtrl1");
  EXPECT_EQ(bdev::Manager::get().find("Malloc0")->claimed_by(), "vblk VblkCtrl1");
  CreateRequest r = req("Malloc1");
  r.fn = {};
  r.fn.pf_id = 0;
  r.fn.vf_id = 0;
  auto b = mgr_->create(r);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, "VblkCtrl2");
  EXPECT_EQ(changes_, 2);
}

TEST_F(VblkTest, CreateErrors) {
  EXPECT_EQ(mgr_->create(req("nope")).error().code, Errc::kNotFound);  // §5.1 bdev must exist
  CreateRequest nofn = req();
  nofn.fn = {};
  EXPECT_EQ(mgr_->create(nofn).error().code, Errc::kInvalidArgument);
  CreateRequest nvme = req();
  nvme.fn = {};
  nvme.fn.vhca_id = emu_->pfs()[1]->vhca_id;  // the NVMe PF
  EXPECT_EQ(mgr_->create(nvme).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(mgr_->create(req()).ok());
  // One controller per function.
  auto dup = mgr_->create(req("Malloc1"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kExists);
  EXPECT_TRUE(bdev::Manager::get().find("Malloc1")->claimed_by().empty());  // released on error
  // The same bdev cannot back two controllers (claimed).
  CreateRequest vf = req("Malloc0");
  vf.fn.vf_id = 0;
  EXPECT_EQ(mgr_->create(vf).error().code, Errc::kBusy);
  // Duplicate name.
  vf.bdev = "Malloc1";
  vf.ctrl = "VblkCtrl1";
  EXPECT_EQ(mgr_->create(vf).error().code, Errc::kExists);
  // Factory failure releases the bdev.
  vf.ctrl.reset();
  fail_factory_ = true;
  EXPECT_EQ(mgr_->create(vf).error().code, Errc::kIo);
  EXPECT_TRUE(bdev::Manager::get().find("Malloc1")->claimed_by().empty());
  // vf_num_msix on a PF, dynamic_msix on a VF.
  fail_factory_ = false;
  CreateRequest bad = req("");
  bad.fn.vf_id = 1;
  bad.cfg.dynamic_msix = true;
  EXPECT_EQ(mgr_->create(bad).error().code, Errc::kInvalidArgument);
}

TEST_F(VblkTest, BdevInUseCannotBeDeletedUntilDestroy) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  EXPECT_EQ(code(bdev::Manager::get().remove("Malloc0")), Errc::kBusy);
  EXPECT_EQ(code(run([&](Done d) { mgr_->destroy("VblkCtrl9", false, false, d); })), Errc::kNotFound);
  ASSERT_TRUE(run([&](Done d) { mgr_->destroy("VblkCtrl1", false, false, d); }).ok());
  EXPECT_FALSE(fakes_["VblkCtrl1"].plugged);
  EXPECT_TRUE(emu_->pfs()[0]->ctrl_id.empty());
  EXPECT_EQ(mgr_->find("VblkCtrl1"), nullptr);
  EXPECT_TRUE(bdev::Manager::get().find("Malloc0")->claimed_by().empty());
  EXPECT_TRUE(mgr_->create(req()).ok());  // the function is free again
}

TEST_F(VblkTest, VfDestroyNeedsForceWhileDriverBound) {
  CreateRequest r = req();
  r.fn.vf_id = 0;
  ASSERT_TRUE(mgr_->create(r).ok());
  fakes_["VblkCtrl1"].driver_bound = true;
  EXPECT_EQ(code(run([&](Done d) { mgr_->destroy("VblkCtrl1", false, false, d); })), Errc::kBusy);
  EXPECT_TRUE(run([&](Done d) { mgr_->destroy("VblkCtrl1", true, false, d); }).ok());
}

TEST_F(VblkTest, SuspendResume) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  EXPECT_EQ(code(run([&](Done d) { mgr_->resume("VblkCtrl1", d); })), Errc::kState);
  ASSERT_TRUE(run([&](Done d) { mgr_->suspend("VblkCtrl1", false, d); }).ok());
  EXPECT_TRUE(mgr_->find("VblkCtrl1")->suspended);
  EXPECT_TRUE((*mgr_->list("VblkCtrl1"))[0]["suspended"].get<bool>());
  ASSERT_TRUE(run([&](Done d) { mgr_->resume("VblkCtrl1", d); }).ok());
  EXPECT_FALSE(fakes_["VblkCtrl1"].suspended);
  EXPECT_EQ(code(run([&](Done d) { mgr_->suspend("nope", false, d); })), Errc::kNotFound);
}

TEST_F(VblkTest, CreateSuspended) {
  CreateRequest r = req();
  r.suspended = true;
  ASSERT_TRUE(mgr_->create(r).ok());
  EXPECT_TRUE(fakes_["VblkCtrl1"].suspended);
  EXPECT_TRUE(mgr_->write_config()[0]["params"]["suspended"].get<bool>());
}

TEST_F(VblkTest, BdevDetachAttach) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  Controller* c = mgr_->find("VblkCtrl1");
  EXPECT_TRUE(c->suspended);  // §5.4: detach suspends
  EXPECT_EQ((*mgr_->list("VblkCtrl1"))[0]["bdev"], "none");
  EXPECT_TRUE(bdev::Manager::get().find("Malloc0")->claimed_by().empty());
  EXPECT_EQ(code(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); })), Errc::kState);
  EXPECT_EQ(code(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "nope", {}, d); })), Errc::kNotFound);
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc1", "serial-2", d); }).ok());
  EXPECT_FALSE(c->suspended);  // attach resumes outstanding I/O
  EXPECT_EQ(fakes_["VblkCtrl1"].vblk_id, "serial-2");
  EXPECT_EQ((*mgr_->list("VblkCtrl1"))[0]["bdev"], "Malloc1");
  EXPECT_EQ(code(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc0", {}, d); })), Errc::kBusy);
  // "none": no backend; the controller runs (requests fail).
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "none", {}, d); }).ok());
  EXPECT_EQ(fakes_["VblkCtrl1"].desc, nullptr);
  EXPECT_FALSE(c->suspended);
}

TEST_F(VblkTest, AttachKeepsUserSuspension) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->suspend("VblkCtrl1", false, d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc0", {}, d); }).ok());
  EXPECT_TRUE(mgr_->find("VblkCtrl1")->suspended);
}

// §5.4: bdev_attach resumes what bdev_detach suspended, and only that.
TEST_F(VblkTest, AttachResumesOnlyWhatDetachSuspended) {
  CreateRequest r = req();
  r.suspended = true;  // suspended by the user from the start
  ASSERT_TRUE(mgr_->create(r).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc1", {}, d); }).ok());
  EXPECT_TRUE(mgr_->find("VblkCtrl1")->suspended);
  EXPECT_TRUE(fakes_["VblkCtrl1"].suspended);  // the device was told to stay suspended
  // Suspended by the user while detached: stays suspended too.
  ASSERT_TRUE(run([&](Done d) { mgr_->resume("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->suspend("VblkCtrl1", false, d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc0", {}, d); }).ok());
  EXPECT_TRUE(mgr_->find("VblkCtrl1")->suspended);
  // Resumed by the user, then detached: the attach resumes.
  ASSERT_TRUE(run([&](Done d) { mgr_->resume("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_detach("VblkCtrl1", d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->bdev_attach("VblkCtrl1", "Malloc1", {}, d); }).ok());
  EXPECT_FALSE(mgr_->find("VblkCtrl1")->suspended);
  EXPECT_FALSE(fakes_["VblkCtrl1"].suspended);
}

TEST_F(VblkTest, HotRemovedBdevDetachesController) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  bool gone = false;
  bdev::Manager::get().hot_remove("Malloc0", [&] { gone = true; });
  EXPECT_TRUE(gone);
  Controller* c = mgr_->find("VblkCtrl1");
  EXPECT_TRUE(c->suspended);
  EXPECT_EQ(c->desc, nullptr);
  EXPECT_EQ((*mgr_->list({}))[0]["bdev"], "none");
  ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<test::IdleBdev>("Malloc0")).ok());
}

TEST_F(VblkTest, ModifyRules) {
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify({}, 2, {}, d); })), Errc::kInvalidArgument);  // §5.4 (*)
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify("nope", 2, {}, d); })), Errc::kNotFound);
  ASSERT_TRUE(mgr_->create(req()).ok());
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify("VblkCtrl1", {}, {}, d); })), Errc::kInvalidArgument);
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify("VblkCtrl1", 65, {}, d); })), Errc::kInvalidArgument);
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify("VblkCtrl1", {}, 4, d); })), Errc::kInvalidArgument);  // num_msix: VF only
  fakes_["VblkCtrl1"].driver_bound = true;
  EXPECT_EQ(code(run([&](Done d) { mgr_->modify("VblkCtrl1", 2, {}, d); })), Errc::kBusy);
  fakes_["VblkCtrl1"].driver_bound = false;
  ASSERT_TRUE(run([&](Done d) { mgr_->modify("VblkCtrl1", 4, {}, d); }).ok());
  EXPECT_EQ(fakes_["VblkCtrl1"].num_queues, 4);
  EXPECT_EQ((*mgr_->list("VblkCtrl1"))[0]["num_queues"], 4);
}

TEST_F(VblkTest, ListFields) {
  CreateRequest r = req();
  r.cfg.num_queues = 2;
  r.cfg.vblk_id = "abc";
  r.cfg.indirect_desc = true;
  ASSERT_TRUE(mgr_->create(r).ok());
  json l = *mgr_->list({});
  ASSERT_EQ(l.size(), 1u);
  for (const char* k : {"ctrl_id", "vhca_id", "num_queues", "queue_size", "seg_max", "size_max",
                        "bdev", "plugged", "indirect_desc", "num_msix", "min configurable num_msix",
                        "max configurable num_msix", "vblk_id", "force_in_order", "admin_q",
                        "dbg_local_optimized", "read_only"})
    EXPECT_TRUE(l[0].contains(k)) << k;
  EXPECT_EQ(l[0]["vblk_id"], "abc");
  EXPECT_TRUE(l[0]["plugged"].get<bool>());
  EXPECT_FALSE(l[0].contains("free_msix"));
  EXPECT_EQ(mgr_->list("nope").error().code, Errc::kNotFound);
}

TEST_F(VblkTest, IoStatsTotalsAreSums) {
  CreateRequest r = req();
  r.cfg.num_queues = 3;
  ASSERT_TRUE(mgr_->create(r).ok());
  json s = *mgr_->io_stats("VblkCtrl1");
  EXPECT_EQ(s["ctrl_id"], "VblkCtrl1");
  ASSERT_EQ(s["queues"].size(), 3u);
  EXPECT_EQ(s["read_io_count"], 10 + 11 + 12);
  EXPECT_EQ(s["write_io_count"], 20 + 21 + 22);
  EXPECT_EQ(s["flush_io_count"], 0 + 1 + 2);
  std::optional<Result<json>> ds;
  mgr_->debug_stats("VblkCtrl1", [&](Result<json> r) { ds = std::move(r); });
  ASSERT_TRUE(ds && ds->ok());
  EXPECT_EQ((**ds)["queues"].size(), 3u);
  EXPECT_EQ(mgr_->io_stats("nope").error().code, Errc::kNotFound);
}

TEST_F(VblkTest, StateSaveRestoreNeedSuspended) {
  CreateRequest r = req();
  r.cfg.num_queues = 2;
  ASSERT_TRUE(mgr_->create(r).ok());
  std::string file = (dir_ / "st.json").string();
  EXPECT_EQ(code(run([&](Done d) { mgr_->state_save("VblkCtrl1", file, d); })), Errc::kState);
  ASSERT_TRUE(run([&](Done d) { mgr_->suspend("VblkCtrl1", false, d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->state_save("VblkCtrl1", file, d); }).ok());
  auto restore = [&](const std::string& f) {
    return run([&](Done d) { mgr_->state_restore("VblkCtrl1", f, d); });
  };
  ASSERT_TRUE(restore(file).ok());
  EXPECT_EQ(fakes_["VblkCtrl1"].restored.size(), 2u);
  EXPECT_EQ(fakes_["VblkCtrl1"].restored[1]["last_avail_idx"], 7);  // what was saved is applied
  EXPECT_EQ(code(restore((dir_ / "none.json").string())), Errc::kNotFound);
  std::ofstream((dir_ / "bad.json").string()) << "{\"version\": 1}";
  EXPECT_EQ(code(restore((dir_ / "bad.json").string())), Errc::kInvalidArgument);
  EXPECT_EQ(code(run([&](Done d) { mgr_->state_save("VblkCtrl1", "/nonexistent-dir/x.json", d); })),
            Errc::kIo);
  // Saved with 2 queues: refused on a controller with another queue count.
  ASSERT_TRUE(run([&](Done d) { mgr_->modify("VblkCtrl1", 3, {}, d); }).ok());
  EXPECT_EQ(code(restore(file)), Errc::kInvalidArgument);
  ASSERT_TRUE(run([&](Done d) { mgr_->resume("VblkCtrl1", d); }).ok());
  EXPECT_EQ(code(restore(file)), Errc::kState);  // a running controller is refused
}

TEST_F(VblkTest, TwoStepHotplug) {
  auto fr = mgr_->function_create();
  ASSERT_TRUE(fr.ok());
  std::string vuid = (*fr)["vuid"];
  EXPECT_TRUE((*fr).contains("vhca_id"));
  emu::Function* f = emu_->find_vuid(vuid);
  EXPECT_EQ(f->state, emu::HotplugState::kPowerOff);
  // §4.2: hotplug needs a controller.
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotplug("VblkCtrl1", false, {}, d); })), Errc::kNotFound);
  CreateRequest r = req();
  r.fn = {};
  r.fn.vuid = vuid;
  ASSERT_TRUE(mgr_->create(r).ok());
  EXPECT_FALSE(fakes_["VblkCtrl1"].plugged);  // created, not yet visible
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotplug("VblkCtrl1", false, 100, d); })), Errc::kInvalidArgument);
  ASSERT_TRUE(run([&](Done d) { mgr_->hotplug("VblkCtrl1", false, {}, d); }).ok());
  EXPECT_TRUE(fakes_["VblkCtrl1"].plugged);
  EXPECT_EQ(f->state, emu::HotplugState::kPowerOn);
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotplug("VblkCtrl1", false, {}, d); })), Errc::kState);
  // wait_for_done succeeds at once when the host is already connected.
  EXPECT_EQ(code(mgr_->function_destroy(vuid)), Errc::kBusy);
  ASSERT_TRUE(run([&](Done d) { mgr_->hotunplug("VblkCtrl1", true, d); }).ok());
  EXPECT_FALSE(fakes_["VblkCtrl1"].plugged);
  EXPECT_EQ(f->state, emu::HotplugState::kPowerOff);
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotunplug("VblkCtrl1", false, d); })), Errc::kState);
  ASSERT_TRUE(run([&](Done d) { mgr_->destroy("VblkCtrl1", false, false, d); }).ok());
  ASSERT_TRUE(mgr_->function_destroy(vuid).ok());
  EXPECT_EQ(emu_->find_vuid(vuid), nullptr);
  EXPECT_EQ(code(mgr_->function_destroy(vuid)), Errc::kNotFound);
  EXPECT_EQ(code(mgr_->function_destroy(emu_->pfs()[0]->vuid)), Errc::kInvalidArgument);
}

TEST_F(VblkTest, HotplugWaitTimesOutWithoutReactor) {
  auto fr = mgr_->function_create();
  CreateRequest r = req();
  r.fn = {};
  r.fn.vuid = (*fr)["vuid"].get<std::string>();
  ASSERT_TRUE(mgr_->create(r).ok());
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotplug("VblkCtrl1", true, 0, d); })), Errc::kTimeout);
  EXPECT_TRUE(fakes_["VblkCtrl1"].plugged);  // stays plugged: the host may still come
}

TEST_F(VblkTest, HotplugOfStaticFunctionRefused) {
  ASSERT_TRUE(mgr_->create(req()).ok());
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotplug("VblkCtrl1", false, {}, d); })), Errc::kInvalidArgument);
  EXPECT_EQ(code(run([&](Done d) { mgr_->hotunplug("VblkCtrl1", false, d); })), Errc::kInvalidArgument);
}

TEST_F(VblkTest, LegacyAttachDetach) {
  auto a = mgr_->device_attach(0);
  ASSERT_TRUE(a.ok());
  std::string vuid = (*a)["vuid"];
  emu::Selector sel;
  sel.vuid = vuid;
  // §4.3: prepare needs an existing, active controller.
  EXPECT_EQ(code(run([&](Done d) { mgr_->detach_prepare(sel, {}, d); })), Errc::kState);
  CreateRequest r = req();
  r.fn = sel;
  ASSERT_TRUE(mgr_->create(r).ok());
  EXPECT_TRUE(fakes_["VblkCtrl1"].plugged);  // attach exposed it already
  EXPECT_EQ(code(mgr_->device_detach(sel, false)), Errc::kBusy);
  ASSERT_TRUE(run([&](Done d) { mgr_->detach_prepare({}, "VblkCtrl1", d); }).ok());
  EXPECT_FALSE(fakes_["VblkCtrl1"].plugged);
  EXPECT_EQ(emu_->find_vuid(vuid)->state, emu::HotplugState::kPowerOffPending);
  ASSERT_TRUE(run([&](Done d) { mgr_->destroy("VblkCtrl1", false, false, d); }).ok());
  ASSERT_TRUE(mgr_->device_detach(sel, false).ok());
  EXPECT_EQ(emu_->find_vuid(vuid), nullptr);
  EXPECT_EQ(code(mgr_->device_detach({}, false)), Errc::kInvalidArgument);
}

TEST_F(VblkTest, LegacyDetachWithoutPrepareNeedsForce) {
  auto a = mgr_->device_attach(8);
  emu::Selector sel;
  sel.vhca_id = (*a)["vhca_id"].get<uint32_t>();
  EXPECT_EQ(emu_->find_vhca(*sel.vhca_id)->num_msix, 8u);
  EXPECT_EQ(code(mgr_->device_detach(sel, false)), Errc::kState);
  EXPECT_TRUE(mgr_->device_detach(sel, true).ok());
  emu::Selector st;
  st.vuid = emu_->pfs()[0]->vuid;
  EXPECT_EQ(code(mgr_->device_detach(st, true)), Errc::kInvalidArgument);  // static
}

TEST_F(VblkTest, DynamicMsixFlow) {
  CreateRequest pf = req();
  pf.cfg.dynamic_msix = true;
  ASSERT_TRUE(mgr_->create(pf).ok());
  EXPECT_TRUE((*mgr_->list("VblkCtrl1"))[0].contains("free_msix"));
  ASSERT_TRUE(mgr_->vfs_msix_reclaim("VblkCtrl1").ok());
  json l = (*mgr_->list("VblkCtrl1"))[0];
  EXPECT_EQ(l["free_msix"], 8);
  EXPECT_EQ(l["free_queues"], 6);
  CreateRequest vf = req("Malloc1");
  vf.fn.vf_id = 1;
  vf.cfg.vf_num_msix = 4;
  vf.cfg.num_queues = 3;
  ASSERT_TRUE(mgr_->create(vf).ok());
  EXPECT_EQ((*mgr_->list("VblkCtrl1"))[0]["free_msix"], 4);
  EXPECT_EQ(code(mgr_->vfs_msix_reclaim("VblkCtrl2")), Errc::kInvalidArgument);  // PF only
  EXPECT_EQ((*mgr_->list("VblkCtrl2"))[0]["num_msix"], 4);
  ASSERT_TRUE(run([&](Done d) { mgr_->destroy("VblkCtrl2", false, true, d); }).ok());
  EXPECT_EQ((*mgr_->list("VblkCtrl1"))[0]["free_msix"], 8);
}

TEST_F(VblkTest, WriteConfigRecreatesControllers) {
  CreateRequest r = req();
  r.ctrl = "Disk0";
  r.cfg.num_queues = 2;
  r.cfg.read_only = true;
  ASSERT_TRUE(mgr_->create(r).ok());
  json c = mgr_->write_config();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["method"], "virtio_blk_controller_create");
  json p = c[0]["params"];
  EXPECT_EQ(p["ctrl"], "Disk0");
  EXPECT_EQ(p["vuid"], emu_->pfs()[0]->vuid);
  EXPECT_EQ(p["bdev"], "Malloc0");
  EXPECT_EQ(p["num_queues"], 2);
  EXPECT_TRUE(p["read_only"].get<bool>());
  EXPECT_FALSE(p.contains("indirect_desc"));
  // The params parse back to the same request.
  auto back = parse_create(p);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back->ctrl, "Disk0");
  EXPECT_EQ(back->cfg.num_queues, 2);
}

}  // namespace
}  // namespace vdpu::service::vblk
