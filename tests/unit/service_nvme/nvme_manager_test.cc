// NVMe manager rules (spec snap-storage §6, §9; nvme-emulation §9) with a
// fake endpoint and the deterministic ManualEnv of the NVMe unit tests.
#include "service/nvme/nvme_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fake_endpoint.h"
#include "test_host.h"

namespace vdpu::service::nvme {
namespace {

namespace fs = std::filesystem;
using ::vdpu::nvme::test::ManualEnv;
using ::vdpu::nvme::test::TestBdev;
using test::FakeEndpoint;
using test::FakeState;

constexpr const char* kNqn = "nqn.2022-10.io.nvda.nvme:0";

class NvmeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vdpu-nvme-svc-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    emu::Options o;
    o.layout.static_pfs = {emu::PfConfig{emu::EmuType::kNvme, 0, 2, 0},
                           emu::PfConfig{emu::EmuType::kVblk, 0, 0, 0}};
    o.layout.hotplug_slots = 4;
    o.state_dir = (dir_ / "state").string();
    o.emu_dir = (dir_ / "emu").string();
    emu_ = std::move(*emu::Manager::create(o));
    mgr_ = std::make_unique<Manager>(*emu_, env_, [this](const EndpointSpec& s)
                                                      -> Result<std::unique_ptr<Endpoint>> {
      return std::unique_ptr<Endpoint>(new FakeEndpoint(&fakes_[s.vuid], s.num_msix));
    });
    for (const char* b : {"Malloc0", "Malloc1", "Malloc2"})
      ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<TestBdev>(b, 512, 4096)).ok());
  }
  void TearDown() override {
    mgr_.reset();
    emu_.reset();
    for (const char* b : {"Malloc0", "Malloc1", "Malloc2"}) (void)bdev::Manager::get().remove(b);
    fs::remove_all(dir_);
  }
  // Runs an asynchronous manager call to completion on the ManualEnv.
  template <class F>
  Status run(F&& f) {
    std::optional<Status> out;
    f([&](Status s) { out = s; });
    env_.run_until_idle();
    EXPECT_TRUE(out.has_value());
    return out.value_or(make_error(Errc::kTimeout, "no completion"));
  }
  std::string pf0() { return emu_->find_index(emu::EmuType::kNvme, 0, std::nullopt)->vuid; }
  CtrlParams req(bool suspended = true) {
    CtrlParams p;
    p.nqn = kNqn;
    p.fn.pf_id = 0;
    p.suspended = suspended;
    return p;
  }
  void make_subsys_with_ns(uint32_t nn = 0xfffffffe) {
    nv::SubsystemOptions o;
    o.nqn = kNqn;
    o.nn = nn;
    ASSERT_TRUE(mgr_->subsystem_create(o).ok());
    ASSERT_TRUE(mgr_->namespace_create(kNqn, "Malloc0", 1, "", "spdk").ok());
  }

  fs::path dir_;
  ManualEnv env_{2};
  std::unique_ptr<emu::Manager> emu_;
  std::unique_ptr<Manager> mgr_;
  std::map<std::string, FakeState> fakes_;
};

// ---------------------------------------------------------------- §6.3

TEST_F(NvmeManagerTest, SubsystemCreateListDestroy) {
  nv::SubsystemOptions o;
  o.nqn = kNqn;
  o.serial_number = "SN1";
  o.model_number = "MN1";
  o.nn = 16;
  o.mnan = 8;
  ASSERT_TRUE(mgr_->subsystem_create(o).ok());
  EXPECT_EQ(mgr_->subsystem_create(o).error().code, Errc::kExists);
  nv::SubsystemOptions bad;
  bad.nqn = "not-an-nqn";
  EXPECT_EQ(mgr_->subsystem_create(bad).error().code, Errc::kInvalidArgument);
  json l = mgr_->subsystem_list();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["nqn"], kNqn);
  EXPECT_EQ(l[0]["sn"], "SN1");
  EXPECT_EQ(l[0]["mn"], "MN1");
  EXPECT_EQ(l[0]["nn"], 16);
  EXPECT_EQ(l[0]["mnan"], 8);
  EXPECT_TRUE(l[0]["controllers"].is_array());
  EXPECT_TRUE(l[0]["namespaces"].is_array());
  EXPECT_EQ(run([&](Done d) { mgr_->subsystem_destroy("nqn.x:none", false, d); }).error().code,
            Errc::kNotFound);
  EXPECT_TRUE(run([&](Done d) { mgr_->subsystem_destroy(kNqn, false, d); }).ok());
  EXPECT_TRUE(mgr_->subsystem_list().empty());
}

TEST_F(NvmeManagerTest, DestroyNonEmptySubsystemNeedsForce) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c, 1, true, d); }).ok());
  // §6.3: without force a non-empty subsystem stays.
  EXPECT_EQ(run([&](Done d) { mgr_->subsystem_destroy(kNqn, false, d); }).error().code, Errc::kBusy);
  EXPECT_NE(mgr_->find_ctrl(*c), nullptr);
  EXPECT_EQ(bdev::Manager::get().find("Malloc0")->claimed_by(), std::string("nvme_ns ") + kNqn + ":1");
  // force: controllers, then namespaces (bdev released), then the subsystem.
  EXPECT_TRUE(run([&](Done d) { mgr_->subsystem_destroy(kNqn, true, d); }).ok());
  EXPECT_EQ(mgr_->find_ctrl(*c), nullptr);
  EXPECT_EQ(mgr_->find_subsys(kNqn), nullptr);
  EXPECT_EQ(bdev::Manager::get().find("Malloc0")->claimed_by(), "");
  EXPECT_TRUE(emu_->find_vuid(pf0())->ctrl_id.empty());
  EXPECT_FALSE(fakes_[pf0()].alive);
}

// ---------------------------------------------------------------- §6.4

TEST_F(NvmeManagerTest, NamespaceRules) {
  nv::SubsystemOptions o;
  o.nqn = kNqn;
  o.nn = 4;
  ASSERT_TRUE(mgr_->subsystem_create(o).ok());
  EXPECT_EQ(mgr_->namespace_create("nqn.x:nope", "Malloc0", 1, "", "spdk").error().code, Errc::kNotFound);
  EXPECT_EQ(mgr_->namespace_create(kNqn, "NoSuchBdev", 1, "", "spdk").error().code, Errc::kNotFound);
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc0", 5, "", "spdk").error().code,
            Errc::kInvalidArgument);  // nsid > nn
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc0", 1, "bad-uuid", "spdk").error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc0", 1, "", "other").error().code, Errc::kInvalidArgument);
  // bdev_type malloc: the bdev must come from the malloc module.
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc0", 1, "", "malloc").error().code,
            Errc::kInvalidArgument);
  ASSERT_TRUE(mgr_->namespace_create(kNqn, "Malloc0", 1, "263826ad-19a3-4feb-bc25-4bc81ee7749e", "spdk").ok());
  // §6.1: NSID unique within the subsystem.
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc1", 1, "", "spdk").error().code, Errc::kExists);
  // The bdev is claimed by the first namespace.
  EXPECT_EQ(mgr_->namespace_create(kNqn, "Malloc0", 2, "", "spdk").error().code, Errc::kBusy);
  ASSERT_TRUE(mgr_->namespace_create(kNqn, "Malloc1", 2, "", "spdk").ok());
  auto l = mgr_->namespace_list(std::string(kNqn));
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0]["nsid"], 1);
  EXPECT_EQ((*l)[0]["bdev"], "Malloc0");
  EXPECT_EQ((*l)[0]["uuid"], "263826ad-19a3-4feb-bc25-4bc81ee7749e");
  EXPECT_TRUE((*l)[0].contains("max inflights per weight"));
  EXPECT_EQ(mgr_->namespace_list(std::string("nqn.x:nope")).error().code, Errc::kNotFound);
  EXPECT_EQ(mgr_->namespace_destroy(kNqn, 9).error().code, Errc::kNotFound);
  EXPECT_TRUE(mgr_->namespace_destroy(kNqn, 2).ok());
  EXPECT_EQ(bdev::Manager::get().find("Malloc1")->claimed_by(), "");
}

// ---------------------------------------------------------------- §6.5

TEST_F(NvmeManagerTest, ControllerCreateChecks) {
  make_subsys_with_ns();
  CtrlParams p = req();
  p.fn = {};
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kInvalidArgument);  // no function
  p.fn.vuid = "NOSUCHVUID";
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kNotFound);
  p = req();
  p.nqn = "nqn.x:nope";
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kNotFound);
  p = req();
  p.vf_num_msix = 4;  // VF only
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kInvalidArgument);
  p = req();
  p.fn.vf_id = 0;
  p.dynamic_msix = true;  // PF only
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kInvalidArgument);

  auto c = mgr_->controller_create(req());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "NVMeCtrl1");
  emu::Function* f = emu_->find_vuid(pf0());
  EXPECT_EQ(f->ctrl_id, "NVMeCtrl1");
  // A static PF is powered on: its endpoint is served at <emu_dir>/<vuid>.
  EXPECT_EQ(fakes_[pf0()].socket, f->socket);
  EXPECT_EQ(fakes_[pf0()].bound, mgr_->find_ctrl(*c)->ctrl.get());
  // One controller per function; names unique.
  EXPECT_EQ(mgr_->controller_create(req()).error().code, Errc::kExists);
  p = req();
  p.fn = {};
  p.fn.pf_id = 0;
  p.fn.vf_id = 0;
  p.ctrl = "NVMeCtrl1";
  EXPECT_EQ(mgr_->controller_create(p).error().code, Errc::kExists);
  p.ctrl = "MyCtrl";
  auto c2 = mgr_->controller_create(p);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(*c2, "MyCtrl");
  auto l = mgr_->controller_list(std::nullopt, std::string("NVMeCtrl1"));
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 1u);
  const json& e = (*l)[0];
  for (const char* k : {"ctrl_id", "nqn", "vhca_id", "num_queues", "mdts", "namespaces", "free_msix",
                        "free_queues", "vf_min_msix", "vf_max_msix", "vf_min_queues", "vf_max_queues"})
    EXPECT_TRUE(e.contains(k)) << k;
  EXPECT_EQ(e["num_queues"], 1);
  EXPECT_EQ(e["mdts"], 7);
  EXPECT_EQ(mgr_->controller_list(std::nullopt, std::string("Nope")).error().code, Errc::kNotFound);
  EXPECT_EQ(mgr_->controller_list(std::string(kNqn), std::nullopt)->size(), 2u);
}

// §6.1 / §6.7: namespaces are attached to a suspended controller; attach and
// detach on a running one (the spec's cleanup) quiesce it around the change
// and leave it running.
TEST_F(NvmeManagerTest, AttachDetachSuspendedOrRunning) {
  make_subsys_with_ns();
  ASSERT_TRUE(mgr_->namespace_create(kNqn, "Malloc1", 2, "", "spdk").ok());
  auto c = mgr_->controller_create(req(false));
  ASSERT_TRUE(c.ok());
  auto attach = [&](const std::string& ctrl, uint32_t nsid) {
    return run([&](Done d) { mgr_->controller_ns_change(ctrl, nsid, true, d); });
  };
  auto detach = [&](const std::string& ctrl, uint32_t nsid) {
    return run([&](Done d) { mgr_->controller_ns_change(ctrl, nsid, false, d); });
  };
  auto nsids = [&] {
    std::vector<uint32_t> v;
    json l = *mgr_->controller_list(std::nullopt, *c);
    for (auto& n : l[0]["namespaces"]) v.push_back(n["nsid"]);
    return v;
  };
  auto suspended = [&] { return (*mgr_->controller_list(std::nullopt, *c))[0]["suspended"].get<bool>(); };
  ASSERT_TRUE(attach(*c, 1).ok()) << "running controller";
  EXPECT_FALSE(suspended()) << "resumed after the change";
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_suspend(*c, {}, d); }).ok());
  ASSERT_TRUE(attach(*c, 2).ok());
  EXPECT_TRUE(suspended()) << "a user suspend stays";
  EXPECT_EQ(nsids(), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(attach(*c, 1).error().code, Errc::kExists);
  EXPECT_EQ(attach(*c, 7).error().code, Errc::kNotFound);
  ASSERT_TRUE(mgr_->controller_resume(*c).ok());
  // An attached namespace cannot be destroyed.
  EXPECT_EQ(mgr_->namespace_destroy(kNqn, 1).error().code, Errc::kBusy);
  ASSERT_TRUE(detach(*c, 1).ok());
  EXPECT_EQ(nsids(), (std::vector<uint32_t>{2}));
  EXPECT_FALSE(suspended());
  EXPECT_EQ(detach(*c, 1).error().code, Errc::kNotFound);
  EXPECT_TRUE(mgr_->namespace_destroy(kNqn, 1).ok());
  EXPECT_EQ(attach("Nope", 1).error().code, Errc::kNotFound);
  EXPECT_EQ(mgr_->controller_resume("Nope").error().code, Errc::kNotFound);
}

// §6.1: no namespace shared by two controllers.
TEST_F(NvmeManagerTest, NoSharedNamespace) {
  make_subsys_with_ns();
  auto c1 = mgr_->controller_create(req());
  CtrlParams p = req();
  p.fn = {};
  p.fn.pf_id = 0;
  p.fn.vf_id = 1;
  auto c2 = mgr_->controller_create(p);
  ASSERT_TRUE(c1.ok() && c2.ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c1, 1, true, d); }).ok());
  EXPECT_EQ(run([&](Done d) { mgr_->controller_ns_change(*c2, 1, true, d); }).error().code, Errc::kBusy);
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c1, 1, false, d); }).ok());
  EXPECT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c2, 1, true, d); }).ok());
}

TEST_F(NvmeManagerTest, DestroyUnplugsAndReleases) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c, 1, true, d); }).ok());
  EXPECT_EQ(run([&](Done d) { mgr_->controller_destroy("Nope", false, false, d); }).error().code,
            Errc::kNotFound);
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_destroy(*c, false, false, d); }).ok());
  EXPECT_EQ(fakes_[pf0()].unplugs, 1);
  EXPECT_FALSE(fakes_[pf0()].alive);
  EXPECT_TRUE(emu_->find_vuid(pf0())->ctrl_id.empty());
  EXPECT_EQ(mgr_->subsystem_list()[0]["namespaces"][0]["controllers"].size(), 0u);
  // The namespace is free again and the function can take a new controller.
  EXPECT_TRUE(mgr_->namespace_destroy(kNqn, 1).ok());
  EXPECT_TRUE(mgr_->controller_create(req()).ok());
}

TEST_F(NvmeManagerTest, SuspendResumeAndSnapshot) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req(false));
  ASSERT_TRUE(c.ok());
  std::string file = (dir_ / "snap.json").string();
  // §6.6: snapshot only while suspended.
  EXPECT_EQ(mgr_->controller_snapshot_get(*c, file).error().code, Errc::kState);
  SuspendOpts so;
  so.timeout_ms = 100;
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_suspend(*c, so, d); }).ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c, 1, true, d); }).ok());
  ASSERT_TRUE(mgr_->controller_snapshot_get(*c, file).ok());
  auto sp = load_snapshot(file);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->nqn, kNqn);
  EXPECT_EQ(sp->num_queues, 1u);
  EXPECT_EQ(load_snapshot((dir_ / "none.json").string()).error().code, Errc::kNotFound);
  ASSERT_TRUE(mgr_->controller_resume(*c).ok());
  EXPECT_FALSE(mgr_->find_ctrl(*c)->ctrl->suspended());
}

TEST_F(NvmeManagerTest, ModifyRebuildsControllerKeepingNamespaces) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c, 1, true, d); }).ok());
  EXPECT_EQ(run([&](Done d) { mgr_->controller_modify(*c, std::nullopt, std::nullopt, d); }).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(run([&](Done d) { mgr_->controller_modify(*c, 32u, std::nullopt, d); }).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(run([&](Done d) { mgr_->controller_modify(*c, std::nullopt, 4u, d); }).error().code,
            Errc::kInvalidArgument);  // num_msix: VF only
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_modify(*c, 4u, std::nullopt, d); }).ok());
  Ctrl* k = mgr_->find_ctrl(*c);
  EXPECT_EQ(k->ctrl->options().num_queues, 4u);
  EXPECT_EQ(fakes_[pf0()].bound, k->ctrl.get());
  ASSERT_EQ(k->ctrl->attached_namespaces().size(), 1u);
  EXPECT_TRUE(k->ctrl->suspended());  // created suspended and not resumed yet
}

// §9: dynamic MSI-X pools of a PF and its VFs.
TEST_F(NvmeManagerTest, VfMsixPool) {
  make_subsys_with_ns();
  CtrlParams pf = req(false);
  pf.dynamic_msix = true;
  auto c = mgr_->controller_create(pf);
  ASSERT_TRUE(c.ok());
  CtrlParams vf = req();
  vf.fn.vf_id = 0;
  vf.vf_num_msix = 4;
  vf.num_queues = 4;
  // Before reclaim there is no pool.
  EXPECT_EQ(mgr_->controller_create(vf).error().code, Errc::kState);
  ASSERT_TRUE(mgr_->controller_vfs_msix_reclaim(*c).ok());
  json l = *mgr_->controller_list(std::nullopt, *c);
  uint32_t free_msix = l[0]["free_msix"];
  EXPECT_GT(free_msix, 0u);
  vf.vf_num_msix = free_msix + 1;
  EXPECT_EQ(mgr_->controller_create(vf).error().code, Errc::kInvalidArgument);
  vf.vf_num_msix = 4;
  auto v = mgr_->controller_create(vf);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(fakes_[emu_->find_index(emu::EmuType::kNvme, 0, 0u)->vuid].num_msix, 4);
  l = *mgr_->controller_list(std::nullopt, *c);
  EXPECT_EQ(l[0]["free_msix"], free_msix - 4);
  // Reclaim is refused while a VF has a controller.
  EXPECT_EQ(mgr_->controller_vfs_msix_reclaim(*c).error().code, Errc::kBusy);
  EXPECT_EQ(mgr_->controller_vfs_msix_reclaim(*v).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_destroy(*v, false, true, d); }).ok());
  l = *mgr_->controller_list(std::nullopt, *c);
  EXPECT_EQ(l[0]["free_msix"], free_msix);
}

TEST_F(NvmeManagerTest, IoStatsShape) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req());
  auto s = mgr_->controller_io_stats(*c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["ctrl_id"], *c);
  EXPECT_TRUE((*s)["queues"].is_array());
  EXPECT_EQ((*s)["read_io_count"], 0);
  EXPECT_EQ(mgr_->controller_io_stats("Nope").error().code, Errc::kNotFound);
}

TEST_F(NvmeManagerTest, LegacyDeviceAttach) {
  make_subsys_with_ns();
  auto r = mgr_->emulation_device_attach(8);
  ASSERT_TRUE(r.ok());
  std::string vuid = (*r)["vuid"];
  EXPECT_NE(vuid.find("NVME"), std::string::npos);
  CtrlParams p = req();
  p.fn = {};
  p.fn.vuid = vuid;
  auto c = mgr_->controller_create(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(fakes_[vuid].num_msix, 8);
  EXPECT_FALSE(fakes_[vuid].socket.empty());  // attach = create and expose
}

TEST_F(NvmeManagerTest, SaveConfigReplaysInOrder) {
  make_subsys_with_ns();
  auto c = mgr_->controller_create(req());
  ASSERT_TRUE(run([&](Done d) { mgr_->controller_ns_change(*c, 1, true, d); }).ok());
  ASSERT_TRUE(mgr_->controller_resume(*c).ok());
  json cfg = mgr_->write_config();
  std::vector<std::string> methods;
  for (auto& e : cfg) methods.push_back(e["method"]);
  std::vector<std::string> want = {"nvme_subsystem_create", "nvme_namespace_create",
                                   "nvme_controller_create", "nvme_controller_attach_ns",
                                   "nvme_controller_resume"};
  EXPECT_EQ(methods, want);
  EXPECT_EQ(cfg[2]["params"]["suspended"], true);
  EXPECT_EQ(cfg[2]["params"]["vuid"], pf0());
  EXPECT_EQ(cfg[2]["params"]["ctrl"], *c);
  EXPECT_EQ(cfg[3]["params"]["nsid"], 1);
  // Replaying the create params gives the same controller parameters.
  auto p = parse_ctrl_params(cfg[2]["params"]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->fn.vuid, pf0());
  EXPECT_EQ(p->mdts, 7u);
}

// ---------------------------------------------------------------- nvmf dialect

TEST_F(NvmeManagerTest, NvmfTransportAndListener) {
  EXPECT_EQ(mgr_->nvmf_create_transport("rdma", json::object()).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(mgr_->nvmf_create_transport("doca", json{{"max_queue_depth", 256}}).ok());
  EXPECT_EQ(mgr_->nvmf_create_transport("vfio_user", json::object()).error().code, Errc::kExists);
  auto tr = mgr_->nvmf_get_transports(std::nullopt);
  ASSERT_EQ(tr->size(), 1u);
  EXPECT_EQ((*tr)[0]["trtype"], "DOCA");
  EXPECT_EQ((*tr)[0]["max_queue_depth"], 256);
  EXPECT_EQ((*tr)[0]["max_io_size"], 131072);
  ASSERT_TRUE(mgr_->nvmf_create_subsystem(kNqn, "", "", true, 0, false, 1, 0xffef).ok());
  std::optional<Result<uint32_t>> nsid;
  mgr_->nvmf_add_ns(kNqn, "Malloc0", 0, "", [&](Result<uint32_t> r) { nsid = r; });
  env_.run_until_idle();
  ASSERT_TRUE(nsid && nsid->ok());
  EXPECT_EQ(**nsid, 1u);
  auto fnr = mgr_->doca_create_function("emu0");
  ASSERT_TRUE(fnr.ok());
  std::string vuid = (*fnr)["Created a function with vuid"];
  EXPECT_EQ(mgr_->doca_create_function("mlx5_9").error().message, "Couldn't find supported devices");
  auto lf = mgr_->doca_list_functions("emu0");
  ASSERT_TRUE(lf.ok());
  bool listed = false;
  for (auto& e : *lf) listed |= e["Function VUID: "] == vuid;
  EXPECT_TRUE(listed);
  ListenAddress a;
  a.trtype = "doca";
  a.traddr = "NOSUCH";
  EXPECT_EQ(run([&](Done d) { mgr_->nvmf_add_listener(kNqn, a, d); }).error().code, Errc::kNotFound);
  a.traddr = vuid;
  EXPECT_EQ(run([&](Done d) { mgr_->nvmf_add_listener("nqn.x:nope", a, d); }).error().code, Errc::kNotFound);
  ASSERT_TRUE(run([&](Done d) { mgr_->nvmf_add_listener(kNqn, a, d); }).ok());
  EXPECT_EQ(run([&](Done d) { mgr_->nvmf_add_listener(kNqn, a, d); }).error().code, Errc::kExists);
  // Listen = a controller on the function, namespaces attached, hot plugged.
  emu::Function* f = emu_->find_vuid(vuid);
  EXPECT_EQ(f->state, emu::HotplugState::kPowerOn);
  ASSERT_FALSE(f->ctrl_id.empty());
  Ctrl* c = mgr_->find_ctrl(f->ctrl_id);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->ctrl->attached_namespaces().size(), 1u);
  EXPECT_FALSE(c->ctrl->suspended());
  EXPECT_EQ(c->ctrl->options().max_queue_entries, 256u);
  EXPECT_EQ(fakes_[vuid].socket, f->socket);
  EXPECT_EQ(mgr_->doca_destroy_function("emu0", vuid).error().code, Errc::kBusy);
  // A namespace added now reaches the listener's controller.
  nsid.reset();
  mgr_->nvmf_add_ns(kNqn, "Malloc1", 0, "", [&](Result<uint32_t> r) { nsid = r; });
  env_.run_until_idle();
  ASSERT_TRUE(nsid && nsid->ok());
  EXPECT_EQ(**nsid, 2u);
  EXPECT_EQ(c->ctrl->attached_namespaces().size(), 2u);
  auto subs = mgr_->nvmf_get_subsystems(std::nullopt);
  ASSERT_EQ(subs->size(), 2u);
  EXPECT_EQ((*subs)[0]["subtype"], "Discovery");
  const json& s = (*subs)[1];
  EXPECT_EQ(s["nqn"], kNqn);
  EXPECT_EQ(s["subtype"], "NVMe");
  EXPECT_EQ(s["listen_addresses"][0]["trtype"], "DOCA");
  EXPECT_EQ(s["listen_addresses"][0]["traddr"], vuid);
  EXPECT_EQ(s["namespaces"].size(), 2u);
  EXPECT_EQ(s["namespaces"][1]["bdev_name"], "Malloc1");
  json st = mgr_->nvmf_get_stats();
  EXPECT_EQ(st["poll_groups"][0]["transports"][0]["trtype"], "DOCA");
  // save_config: transport first, listener last.
  json cfg = mgr_->write_config();
  EXPECT_EQ(cfg.front()["method"], "nvmf_create_transport");
  EXPECT_EQ(cfg.back()["method"], "nvmf_subsystem_add_listener");
  EXPECT_EQ(cfg.back()["params"]["listen_address"]["traddr"], vuid);
  // remove_ns detaches from the running controller first.
  EXPECT_TRUE(run([&](Done d) { mgr_->nvmf_remove_ns(kNqn, 2, d); }).ok());
  EXPECT_EQ(c->ctrl->attached_namespaces().size(), 1u);
  EXPECT_FALSE(c->ctrl->suspended());
  EXPECT_EQ(mgr_->nvmf_delete_transport("doca").error().code, Errc::kBusy);
  // Remove listener = hot unplug + controller destroyed.
  ASSERT_TRUE(run([&](Done d) { mgr_->nvmf_remove_listener(kNqn, a, d); }).ok());
  EXPECT_TRUE(f->ctrl_id.empty());
  EXPECT_EQ(f->state, emu::HotplugState::kPowerOff);
  EXPECT_EQ((*mgr_->nvmf_get_subsystems(std::string(kNqn)))[0]["listen_addresses"].size(), 0u);
  EXPECT_TRUE(mgr_->doca_destroy_function("emu0", vuid).ok());
  EXPECT_EQ(mgr_->doca_destroy_function("emu0", vuid).error().message,
            "device representor with requested vuid doesn't exist");
  EXPECT_TRUE(run([&](Done d) { mgr_->subsystem_destroy(kNqn, true, d); }).ok());
  EXPECT_TRUE(mgr_->nvmf_delete_transport("DOCA").ok());
}

TEST_F(NvmeManagerTest, ListenerNeedsTransport) {
  ASSERT_TRUE(mgr_->nvmf_create_subsystem(kNqn, "", "", true, 4, false, 1, 0xffef).ok());
  ListenAddress a;
  a.trtype = "DOCA";
  a.traddr = pf0();
  EXPECT_EQ(run([&](Done d) { mgr_->nvmf_add_listener(kNqn, a, d); }).error().code, Errc::kNotFound);
  a.trtype = "bogus";
  EXPECT_EQ(run([&](Done d) { mgr_->nvmf_add_listener(kNqn, a, d); }).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(mgr_->nvmf_create_subsystem(kNqn, "", "", true, 0, false, 5, 2).error().code,
            Errc::kInvalidArgument);
  // max_namespaces bounds the NSIDs (SPDK).
  std::optional<Result<uint32_t>> r;
  mgr_->nvmf_add_ns(kNqn, "Malloc0", 5, "", [&](Result<uint32_t> x) { r = x; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error().code, Errc::kInvalidArgument);
}

// ---------------------------------------------------------------- params

TEST(NvmeParams, ParseAndDefaults) {
  auto p = parse_ctrl_params(json{{"nqn", kNqn}, {"pf_id", 0}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_queues, 1u);
  EXPECT_EQ(p->mdts, 7u);
  EXPECT_EQ(p->fw_slots, 4u);
  EXPECT_FALSE(p->suspended);
  EXPECT_FALSE(p->compare.has_value());
  EXPECT_EQ(*p->fn.pf_id, 0u);
  // ctrl_id is an alias of ctrl; flags take 0/1.
  p = parse_ctrl_params(json{{"nqn", kNqn}, {"vuid", "X"}, {"ctrl_id", "C9"}, {"suspended", 1},
                             {"compare", 0}, {"num_queues", 31}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p->ctrl, "C9");
  EXPECT_TRUE(p->suspended);
  EXPECT_EQ(p->compare, std::optional<bool>(false));
  EXPECT_EQ(p->num_queues, 31u);
  // Bad parameters.
  for (json bad : {json{{"pf_id", 0}},                                  // nqn missing
                   json{{"nqn", kNqn}, {"num_queues", 0}},
                   json{{"nqn", kNqn}, {"num_queues", 32}},
                   json{{"nqn", kNqn}, {"mdts", 8}},
                   json{{"nqn", kNqn}, {"mdts", 0}},
                   json{{"nqn", kNqn}, {"fw_slots", 8}},
                   json{{"nqn", kNqn}, {"suspended", "yes"}},
                   json{{"nqn", kNqn}, {"suspended", 2}},
                   json{{"nqn", kNqn}, {"pf_id", -1}},
                   json{{"nqn", kNqn}, {"vf_num_msix", 0}},
                   json{{"nqn", kNqn}, {"ctrl", ""}},
                   json{{"nqn", 5}}})
    EXPECT_EQ(parse_ctrl_params(bad).error().code, Errc::kInvalidArgument) << bad.dump();
  // A base (snapshot) supplies what the request leaves out.
  CtrlParams base;
  base.nqn = kNqn;
  base.num_queues = 8;
  base.mdts = 5;
  p = parse_ctrl_params(json{{"pf_id", 0}, {"mdts", 6}}, base);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_queues, 8u);
  EXPECT_EQ(p->mdts, 6u);
}

}  // namespace
}  // namespace vdpu::service::nvme

namespace vdpu::service::nvme {
namespace {

// NVMe-oF host access (SPDK nvmf_subsystem_add_host / _remove_host /
// _allow_any_host), as NVMe/TCP Connect checks it, and its save_config.
TEST_F(NvmeManagerTest, NvmfHostAccess) {
  const std::string h1 = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001";
  EXPECT_EQ(mgr_->nvmf_add_host("nqn.x:nope", h1).error().code, Errc::kNotFound);
  ASSERT_TRUE(mgr_->nvmf_create_subsystem(kNqn, "", "", false, 0, false, 1, 0xffef).ok());
  EXPECT_FALSE(mgr_->host_allowed(kNqn, h1));
  ASSERT_TRUE(mgr_->nvmf_add_host(kNqn, h1).ok());
  EXPECT_EQ(mgr_->nvmf_add_host(kNqn, h1).error().code, Errc::kExists);
  EXPECT_EQ(mgr_->nvmf_add_host(kNqn, "").error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(mgr_->host_allowed(kNqn, h1));
  EXPECT_FALSE(mgr_->host_allowed(kNqn, h1 + "x"));
  EXPECT_FALSE(mgr_->host_allowed("nqn.x:nope", h1));
  auto subs = mgr_->nvmf_get_subsystems(kNqn);
  ASSERT_TRUE(subs.ok());
  json want = json::array();
  want.push_back(json{{"nqn", h1}});
  EXPECT_EQ((*subs)[0]["hosts"], want);
  EXPECT_EQ((*subs)[0]["allow_any_host"], false);
  bool saved = false;
  for (auto& m : mgr_->write_config())
    saved |= m["method"] == "nvmf_subsystem_add_host" && m["params"]["host"] == h1;
  EXPECT_TRUE(saved);
  ASSERT_TRUE(mgr_->nvmf_remove_host(kNqn, h1).ok());
  EXPECT_EQ(mgr_->nvmf_remove_host(kNqn, h1).error().code, Errc::kNotFound);
  EXPECT_FALSE(mgr_->host_allowed(kNqn, h1));
  ASSERT_TRUE(mgr_->nvmf_allow_any_host(kNqn, true).ok());
  EXPECT_TRUE(mgr_->host_allowed(kNqn, h1));
}

}  // namespace
}  // namespace vdpu::service::nvme
