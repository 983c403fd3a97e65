// Names and printed forms (virtio-net spec §1, §4.3, §5, §6, §13).
#include <gtest/gtest.h>

#include "service/virtnet/errors.h"
#include "service/virtnet/naming.h"

namespace vdpu::service::virtnet {
namespace {

TEST(Naming, RepresentorNames) {
  // §1: first static PF en3f0pf0sf1000, second hotplug PF en3f0pf0sf2001, first VF en3f0pf0sf3000.
  EXPECT_EQ(*rep_name("en3f0pf0sf", kSfStaticBase), "en3f0pf0sf1000");
  EXPECT_EQ(*rep_name("en3f0pf0sf", kSfHotplugBase + 1), "en3f0pf0sf2001");
  EXPECT_EQ(*rep_name("en3f0pf0sf", kSfVfBase), "en3f0pf0sf3000");
  EXPECT_FALSE(rep_name("averyverylongprefix", 2000));  // > 15 characters
  EXPECT_FALSE(rep_name("", 2000));
  EXPECT_FALSE(rep_name("bad/", 2000));
}

TEST(Naming, Vuids) {
  EXPECT_EQ(vuid_of("MT2151X03152", Kind::kHotplugPf, 0, 0, 0), "MT2151X03152VNETS1D0F0");
  EXPECT_EQ(vuid_of("MT2306XZ00BN", Kind::kStaticPf, 2, 0, 0), "MT2306XZ00BNVNETS0D0F2");
  EXPECT_EQ(vuid_of("S", Kind::kVf, 0, 0, 0), "SVNETS0D0F0VF1");
}

TEST(Naming, Bdf) {
  EXPECT_EQ(bdf_str(bdf_of(Kind::kStaticPf, 0, 0, 0)), "20:00.0");
  EXPECT_EQ(bdf_str(bdf_of(Kind::kHotplugPf, 0, 3, 0)), "43:00.0");
  EXPECT_EQ(bdf_str(bdf_of(Kind::kVf, 1, 0, 0)), "84:00.1");
  EXPECT_EQ(bdf_str(bdf_of(Kind::kVf, 0, 0, 255)), "81:00.0");
  EXPECT_EQ(bdf_str(57611), "e1:01.3");
  EXPECT_NE(bdf_of(Kind::kVf, 0, 0, 0), bdf_of(Kind::kVf, 0, 0, 1));
}

TEST(Naming, FeatureTables) {
  // §6: the example supported set is within the table.
  EXPECT_EQ(0x8b00037700ef982full & ~spec_feature_mask(), 0u);
  auto j = features_json(0x8b00037700ef982full);
  EXPECT_EQ(j["value"], "0x8b00037700ef982f");
  EXPECT_EQ(j["  0"], "VIRTIO_NET_F_CSUM");
  EXPECT_EQ(j[" 15"], "VIRTIO_F_MRG_RX_BUFFER");
  EXPECT_EQ(j[" 63"], "VIRTIO_NET_F_SPEED_DUPLEX");
  EXPECT_FALSE(j.contains(" 4"));
  EXPECT_EQ(vq_types_json(false), (nlohmann::json{{"value", "0x1"}, {" 0", "SPLIT"}}));
  EXPECT_EQ(vq_types_json(true)[" 1"], "PACKED");
  EXPECT_EQ(event_modes_json(), (nlohmann::json{{"value", "0x5"}, {" 0", "NO_MSIX_MODE"}, {" 2", "MSIX_MODE"}}));
  auto s = status_json(0xf);
  EXPECT_EQ(s, (nlohmann::json{{"value", "0xf"}, {" 0", "ACK"}, {" 1", "DRIVER"}, {" 2", "DRIVER_OK"},
                               {" 3", "FEATURES_OK"}}));
  EXPECT_EQ(status_json(0xc0)[" 7"], "FAILED");
}

TEST(Errors, SpecTable) {
  EXPECT_EQ(errstr(0), "Success");
  EXPECT_EQ(errstr(VIRTNET_ERR_FEATURE_VALIDATE), "Failed to validate device feature");
  EXPECT_EQ(errstr(VIRTNET_ERR_INVALID_MAC), "Failed - MAC is invalid");
  EXPECT_EQ(VIRTNET_ERR_INVALID_MAC, -1008);
  EXPECT_EQ(errstr(VIRTNET_ERR_DEV_NOT_READY_UNPLUG),
            "Error - Device is not ready to be unplugged please check host and retry");
  EXPECT_EQ(VIRTNET_ERR_DEBUGFS_DELETE, -1075);
  EXPECT_STREQ(errname(-1042), "VIRTNET_ERR_QUEUE_SIZE_POW2");
  EXPECT_EQ(errstr(-EBUSY), strerror(EBUSY));
  EXPECT_STREQ(errname(-EBUSY), "");
  EXPECT_EQ(err_json(-1010), (nlohmann::json{{"errno", -1010}, {"errstr", "Failed - MTU is invalid"}}));
  for (int e = -1000; e >= -1075; --e) EXPECT_STRNE(errname(e), "") << e;
}

}  // namespace
}  // namespace vdpu::service::virtnet
