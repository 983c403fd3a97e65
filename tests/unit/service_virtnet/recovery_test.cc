// Recovery files (virtio-net spec §13): JSON round trip, spec example,
// atomic save, bad files skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "service/virtnet/recovery.h"

namespace vdpu::service::virtnet {
namespace {

namespace fs = std::filesystem;

std::string tmpdir() {
  char t[] = "/tmp/virtnet-rec-XXXXXX";
  return mkdtemp(t);
}

RecoveryRecord sample() {
  RecoveryRecord r;
  r.port_ib_dev = "mlx5_0";
  r.pf_id = 0;
  r.function_type = "pf";
  r.bdf_raw = 57611;
  r.device_type = "hotplug";
  r.mac = "0c:c4:7a:ff:22:93";
  r.pf_num = 0;
  r.sf_num = 2000;
  r.mq = 3;
  r.vuid = "MT2151X03152VNETS1D0F0";
  r.mtu = 9000;
  r.max_queue_pairs = 4;
  r.max_queue_size = 1024;
  r.features = 0x230047082bull;
  r.extra = {{"dim", true}};
  return r;
}

TEST(Recovery, SpecExampleParses) {
  auto j = nlohmann::json::parse(R"({"port_ib_dev": "mlx5_0", "pf_id": 0, "function_type": "pf", "bdf_raw": 57611,
      "device_type": "hotplug", "mac": "0c:c4:7a:ff:22:93", "pf_num": 0, "sf_num": 2000, "mq": 3,
      "vuid": "X"})");
  auto r = RecoveryRecord::from_json(j);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->bdf_raw, 57611);
  EXPECT_EQ(r->mq, 3u);
  EXPECT_EQ(r->mtu, 1500);  // extension defaults
}

TEST(Recovery, JsonRoundTrip) {
  auto r = sample();
  auto j = r.to_json();
  for (const char* k : {"port_ib_dev", "pf_id", "function_type", "bdf_raw", "device_type", "mac", "pf_num", "sf_num", "mq"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_FALSE(j.contains("vf_id"));
  auto back = RecoveryRecord::from_json(j);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->to_json(), j);
  RecoveryRecord vf = sample();
  vf.function_type = "vf";
  vf.vf_id = 7;
  auto vj = vf.to_json();
  EXPECT_EQ(vj["vf_id"], 7);
  EXPECT_FALSE(vj.contains("device_type"));
  EXPECT_EQ(*RecoveryRecord::from_json(vj)->vf_id, 7u);
}

TEST(Recovery, BadRecords) {
  auto j = sample().to_json();
  for (const char* k : {"port_ib_dev", "pf_id", "function_type", "bdf_raw", "mac", "pf_num", "sf_num", "mq", "vuid"}) {
    auto c = j;
    c.erase(k);
    auto r = RecoveryRecord::from_json(c);
    ASSERT_FALSE(r) << k;
    EXPECT_NE(r.error().message.find(k), std::string::npos);
  }
  auto t = j;
  t["bdf_raw"] = 70000;  // not a uint16
  EXPECT_FALSE(RecoveryRecord::from_json(t));
  t = j;
  t["function_type"] = "sf";
  EXPECT_FALSE(RecoveryRecord::from_json(t));
  t = j;
  t["device_type"] = "dynamic";
  EXPECT_FALSE(RecoveryRecord::from_json(t));
  t = j;
  t["function_type"] = "vf";  // without vf_id
  EXPECT_FALSE(RecoveryRecord::from_json(t));
  t = j;
  t["mtu"] = "big";
  EXPECT_FALSE(RecoveryRecord::from_json(t));
  EXPECT_FALSE(RecoveryRecord::from_json(nlohmann::json::array()));
}

TEST(Recovery, StoreSaveLoadRemove) {
  std::string dir = tmpdir() + "/rec";  // created on first save
  RecoveryStore s(dir, true);
  auto r = sample();
  ASSERT_TRUE(s.save(r));
  EXPECT_TRUE(fs::exists(dir + "/" + r.vuid));
  EXPECT_FALSE(fs::exists(dir + "/" + r.vuid + ".tmp"));
  r.mtu = 1400;  // replaced in place
  ASSERT_TRUE(s.save(r));
  std::ofstream(dir + "/garbage") << "{not json";
  std::ofstream(dir + "/.emu-signature") << "x";
  auto other = sample();
  other.vuid = "OTHER";
  std::ofstream(dir + "/misnamed") << other.to_json().dump();
  std::vector<std::string> bad;
  auto all = s.load_all(&bad);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].mtu, 1400);
  EXPECT_EQ(all[0].to_json(), r.to_json());
  EXPECT_EQ(bad.size(), 2u);  // garbage + misnamed; dotfiles are not records
  ASSERT_TRUE(s.remove(r.vuid));
  ASSERT_TRUE(s.remove(r.vuid));  // missing: fine
  EXPECT_TRUE(s.load_all().empty());
  s.clear();
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(Recovery, DisabledStore) {
  std::string dir = tmpdir();
  RecoveryStore s(dir + "/x", false);
  ASSERT_TRUE(s.save(sample()));
  EXPECT_FALSE(fs::exists(dir + "/x"));
  EXPECT_TRUE(s.load_all().empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vdpu::service::virtnet
