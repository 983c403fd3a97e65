// Subsystem / namespace / controller object rules (SNAP storage spec §6.1, §6.3-6.5).
#include <gtest/gtest.h>

#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

TEST(NvmeSubsystem, CreateValidates) {
  EXPECT_FALSE(Subsystem::create({"bad", "", "", 1, 1}).ok());
  EXPECT_FALSE(Subsystem::create({"nqn.x", std::string(21, 'a'), "", 1, 1}).ok());
  EXPECT_FALSE(Subsystem::create({"nqn.x", "", std::string(41, 'a'), 1, 1}).ok());
  EXPECT_FALSE(Subsystem::create({"nqn.x", "", "", 0, 1}).ok());
  EXPECT_FALSE(Subsystem::create({"nqn.x", "", "", 1, 0}).ok());
  auto s = Subsystem::create({"nqn.2022-10.io.nvda.nvme:0"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->serial_number().size(), 20u);
  EXPECT_EQ((*s)->model_number(), kDefaultModelNumber);
  EXPECT_EQ((*s)->nn(), 0xfffffffeu);
  EXPECT_EQ((*s)->mnan(), 1024u);
  json j = (*s)->info();
  EXPECT_EQ(j["nqn"], "nqn.2022-10.io.nvda.nvme:0");
}

TEST(NvmeSubsystem, NamespacesAreUniqueAndClaimBdevs) {
  auto s = Subsystem::create({"nqn.2022-10.io.vdpu:ns", "", "", 16, 2}).value();
  ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<TestBdev>("ns_a", 512, 64)).ok());
  ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<TestBdev>("ns_b", 4096, 64)).ok());
  ASSERT_TRUE(bdev::Manager::get().add(std::make_unique<TestBdev>("ns_c", 512, 64)).ok());
  EXPECT_EQ(s->add_namespace(0, "ns_a").error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s->add_namespace(17, "ns_a").error().code, Errc::kInvalidArgument);  // > nn
  EXPECT_EQ(s->add_namespace(1, "nope").error().code, Errc::kNotFound);
  EXPECT_EQ(s->add_namespace(1, "ns_a", "not-a-uuid").error().code, Errc::kInvalidArgument);
  auto ns = s->add_namespace(1, "ns_a", "263826ad-19a3-4feb-bc25-4bc81ee7749e");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ((*ns)->uuid()[0], 0x26);
  EXPECT_EQ((*ns)->uuid()[15], 0x9e);
  EXPECT_EQ(bdev::Manager::get().find("ns_a")->claimed_by(), "nvme_ns nqn.2022-10.io.vdpu:ns:1");
  EXPECT_EQ(s->add_namespace(1, "ns_b").error().code, Errc::kExists);     // NSID unique
  EXPECT_EQ(s->add_namespace(2, "ns_a").error().code, Errc::kBusy);       // claimed
  ASSERT_TRUE(s->add_namespace(2, "ns_b").ok());
  EXPECT_EQ(s->add_namespace(3, "ns_c").error().code, Errc::kInvalidArgument);  // mnan
  // A namespace attached to one controller cannot attach to another.
  ManualEnv env;
  ControllerOptions o1, o2;
  o1.name = "A";
  o1.suspended = true;
  o2.name = "B";
  o2.suspended = true;
  auto c1 = Controller::create(*s, o1, env).value();
  auto c2 = Controller::create(*s, o2, env).value();
  EXPECT_NE(c1->cntlid(), c2->cntlid());
  ASSERT_TRUE(c1->attach_ns(1).ok());
  EXPECT_EQ(c2->attach_ns(1).error().code, Errc::kBusy);
  EXPECT_EQ(c2->attach_ns(9).error().code, Errc::kNotFound);
  EXPECT_EQ(s->remove_namespace(1).error().code, Errc::kBusy);
  EXPECT_EQ(s->info()["namespaces"][0]["controllers"][0]["ctrl_id"], "A");
  ASSERT_TRUE(c1->detach_ns(1).ok());
  EXPECT_TRUE(s->remove_namespace(1).ok());
  EXPECT_EQ(bdev::Manager::get().find("ns_a")->claimed_by(), "");
  EXPECT_EQ(s->remove_namespace(1).error().code, Errc::kNotFound);
  c1.reset();
  c2.reset();
  s.reset();
  for (auto n : {"ns_a", "ns_b", "ns_c"}) EXPECT_TRUE(bdev::Manager::get().remove(n).ok());
}

TEST(NvmeSubsystem, ControllerOptionsValidated) {
  auto s = Subsystem::create({"nqn.2022-10.io.vdpu:opts"}).value();
  ManualEnv env;
  ControllerOptions o;
  EXPECT_FALSE(Controller::create(*s, o, env).ok());  // name required
  o.name = "C";
  o.num_queues = 0;
  EXPECT_FALSE(Controller::create(*s, o, env).ok());
  o.num_queues = 32;
  EXPECT_FALSE(Controller::create(*s, o, env).ok());
  o.num_queues = 31;
  o.mdts = 8;
  EXPECT_FALSE(Controller::create(*s, o, env).ok());
  o.mdts = 7;
  auto c = Controller::create(*s, o, env);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->num_msix(), 32u);
  o.name = "D";
  o.cntlid = (*c)->cntlid();
  EXPECT_EQ(Controller::create(*s, o, env).error().code, Errc::kExists);
  o.cntlid = 0;
  o.admin_only = true;
  auto d = Controller::create(*s, o, env);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->options().num_queues, 0u);
}

TEST(NvmeSubsystem, AdminOnlyControllerRefusesIoQueues) {
  TestHost::Options o;
  o.ctrl.admin_only = true;
  TestHost h(o);
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  auto e = h.create_cq(1, 16);
  ASSERT_TRUE(e);
  EXPECT_EQ((e->status >> 1) & 0x7ff, sc::kInvalidQueueIdentifier);
}

}  // namespace
}  // namespace vdpu::nvme::test
