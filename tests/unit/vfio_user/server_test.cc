// vfio-user server over a real unix socket, driven by the client library:
// every message, good and bad (negative replies carry the errno).
#include "transport/vfio_user/server.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "pci/function_base.h"
#include "pci/pci_regs.h"
#include "transport/vfio_user/client/client.h"

namespace vdpu::vfio_user {
namespace {

using pci::RegionIndex;

class TestFunction : public pci::PciFunctionBase {
 public:
  TestFunction() : PciFunctionBase({"testfn", pci::nvme_config_options(pci::Identity{}, 4, "TESTNVMES0D0F0")}) {
    EXPECT_TRUE(set_bar_handler(0, pci::BarHandler{
        [this](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
          for (size_t i = 0; i < out.size(); ++i) out[i] = off + i < sizeof(regs) ? regs[off + i] : 0;
          return out.size();
        },
        [this](uint64_t off, std::span<const uint8_t> in) -> Result<size_t> {
          for (size_t i = 0; i < in.size(); ++i)
            if (off + i < sizeof(regs)) regs[off + i] = in[i];
          return in.size();
        }}));
    doorbells = *add_mmap_area(0, pci::kNvmeDoorbellOffset, pci::kNvmeDoorbellSize);
  }
  uint8_t regs[0x100] = {};
  uint8_t* doorbells = nullptr;
  std::atomic<int> attaches{0}, detaches{0}, resets{0}, dma_changes{0};

 protected:
  void on_attach(const hostmem::MemoryMapPtr&) override { ++attaches; }
  void on_dma_changed(const hostmem::MemoryMapPtr&) override { ++dma_changes; }
  void on_reset(std::function<void()> done) override { ++resets; done(); }
  void on_detach(std::function<void()> done) override { ++detaches; done(); }
};

size_t open_fds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

class VfioUserServer : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/vfio-user-test-" + std::to_string(getpid()) + ".sock";
    reactor_ = std::make_unique<rt::Reactor>(0, -1, true);
    ASSERT_TRUE(reactor_->start_thread());
    on_reactor([&] {
      server_ = std::make_unique<Server>(path_, fn_, *reactor_);
      ASSERT_TRUE(server_->start());
    });
    client_ = connect();
  }
  void TearDown() override {
    client_.reset();
    on_reactor([&] { server_.reset(); });
    reactor_->request_stop();
    reactor_->join();
  }
  template <class F>
  void on_reactor(F&& f) {
    std::promise<void> p;
    reactor_->send_blocking([&] {
      f();
      p.set_value();
    });
    p.get_future().get();
  }
  std::unique_ptr<Client> connect(bool negotiate = true) {
    auto c = Client::connect(path_);
    EXPECT_TRUE(c) << c.error().message;
    if (!c) return nullptr;
    if (negotiate) EXPECT_TRUE((*c)->negotiate());
    return std::move(*c);
  }
  // Raw request; returns the reply's errno (0 on success).
  int raw(uint16_t cmd, const std::vector<uint8_t>& payload, std::vector<int> fds = {}, uint32_t flags = 0) {
    auto r = client_->request(cmd, payload, fds, flags);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return -1;
    return (r->hdr.flags & kFlagsError) ? int(r->hdr.error_no) : 0;
  }
  template <class T>
  static std::vector<uint8_t> b(const T& x, size_t extra = 0) {
    std::vector<uint8_t> v(sizeof(T) + extra);
    memcpy(v.data(), &x, sizeof(T));
    return v;
  }

  std::string path_;
  TestFunction fn_;
  std::unique_ptr<rt::Reactor> reactor_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(VfioUserServer, VersionNegotiation) {
  EXPECT_NE(client_->server_caps().find("\"max_msg_fds\":16"), std::string::npos);
  EXPECT_NE(client_->server_caps().find("max_data_xfer_size"), std::string::npos);
  EXPECT_EQ(fn_.attaches.load(), 1);
  // Negotiated once per connection.
  EXPECT_EQ(raw(VFIO_USER_VERSION, b(Version{0, 0})), EINVAL);
}

TEST_F(VfioUserServer, VersionBad) {
  client_ = connect(false);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, b(DeviceInfo{16, 0, 0, 0})), EINVAL);  // before VERSION
  EXPECT_EQ(raw(VFIO_USER_VERSION, {0, 0}), EINVAL);                              // short
  EXPECT_EQ(raw(VFIO_USER_VERSION, b(Version{1, 0})), EINVAL);                    // major
  auto with_json = [](const std::string& j) {
    auto v = b(Version{0, 2});
    v.insert(v.end(), j.begin(), j.end());
    v.push_back(0);
    return v;
  };
  EXPECT_EQ(raw(VFIO_USER_VERSION, with_json("{not json")), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_VERSION, with_json("[1]")), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_VERSION, with_json(R"({"capabilities":3})")), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_VERSION, with_json(R"({"capabilities":{"max_msg_fds":"8"}})")), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_VERSION, with_json(R"({"capabilities":{"max_data_xfer_size":0}})")), EINVAL);
  // The minor version answered is the lower one.
  auto r = client_->request(VFIO_USER_VERSION, with_json(R"({"capabilities":{"max_msg_fds":4}})"));
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->hdr.flags & kFlagsError);
  Version v;
  memcpy(&v, r->payload.data(), sizeof(v));
  EXPECT_EQ(v.major, 0);
  EXPECT_EQ(v.minor, 2);
}

TEST_F(VfioUserServer, HeaderChecks) {
  // A reply-typed or error-flagged message from the client is refused.
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, b(DeviceInfo{16, 0, 0, 0}), {}, kFlagsTypeReply), EINVAL);
}

TEST_F(VfioUserServer, DeviceGetInfo) {
  auto info = client_->device_info();
  ASSERT_TRUE(info);
  EXPECT_EQ(info->flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
  EXPECT_EQ(info->num_regions, 9u);
  EXPECT_EQ(info->num_irqs, 5u);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, b(DeviceInfo{8, 0, 0, 0})), EINVAL);  // argsz
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, {1, 2, 3}), EINVAL);                  // short
}

TEST_F(VfioUserServer, RegionInfoAndSparseMmap) {
  auto cfg = client_->region_info(7);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->size, 4096u);
  EXPECT_EQ(cfg->flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
  auto bar0 = client_->region_info(0);
  ASSERT_TRUE(bar0);
  EXPECT_EQ(bar0->size, pci::kNvmeBar0Size);
  EXPECT_TRUE(bar0->flags & VFIO_REGION_INFO_FLAG_MMAP);
  EXPECT_TRUE(bar0->flags & VFIO_REGION_INFO_FLAG_CAPS);
  ASSERT_EQ(bar0->sparse.size(), 1u);
  EXPECT_EQ(bar0->sparse[0], std::make_pair(pci::kNvmeDoorbellOffset, pci::kNvmeDoorbellSize));
  EXPECT_GE(bar0->fd, 0);
  auto db = client_->mmap_area(0, pci::kNvmeDoorbellOffset);
  ASSERT_TRUE(db);
  reinterpret_cast<volatile uint32_t*>(*db)[2] = 0x1234;  // doorbell write, no syscall
  EXPECT_EQ(reinterpret_cast<volatile uint32_t*>(fn_.doorbells)[2], 0x1234u);
  EXPECT_EQ(client_->region_info(2)->size, 0u);
  // argsz too small for the caps: required size back, no caps.
  auto r = client_->request(VFIO_USER_DEVICE_GET_REGION_INFO, b(RegionInfo{32, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(r);
  RegionInfo ri;
  memcpy(&ri, r->payload.data(), sizeof(ri));
  EXPECT_EQ(ri.argsz, 32u + 16 + 16);
  EXPECT_EQ(ri.cap_offset, 0u);
  EXPECT_EQ(r->payload.size(), 32u);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_REGION_INFO, b(RegionInfo{32, 0, 9, 0, 0, 0})), EINVAL);  // index
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_REGION_INFO, b(RegionInfo{16, 0, 0, 0, 0, 0})), EINVAL);  // argsz
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_REGION_INFO, {0, 0, 0, 0}), EINVAL);                      // short
}

TEST_F(VfioUserServer, IrqInfo) {
  auto msix = client_->irq_info(VFIO_PCI_MSIX_IRQ_INDEX);
  ASSERT_TRUE(msix);
  EXPECT_EQ(msix->count, 4u);
  EXPECT_TRUE(msix->flags & VFIO_IRQ_INFO_EVENTFD);
  EXPECT_EQ(client_->irq_info(VFIO_PCI_INTX_IRQ_INDEX)->count, 0u);
  EXPECT_EQ(client_->irq_info(VFIO_PCI_MSI_IRQ_INDEX)->count, 0u);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_IRQ_INFO, b(IrqInfo{16, 0, 5, 0})), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_IRQ_INFO, b(IrqInfo{4, 0, 2, 0})), EINVAL);
}

uint64_t drain(int efd) {
  uint64_t v = 0;
  if (read(efd, &v, 8) != 8) return 0;
  return v;
}

TEST_F(VfioUserServer, SetIrqsEventfdsMaskUnmaskDisable) {
  int e0 = eventfd(0, EFD_NONBLOCK), e1 = eventfd(0, EFD_NONBLOCK);
  int fds[2] = {e0, e1};
  ASSERT_TRUE(client_->set_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 1, fds));
  server_->raise(1);
  server_->raise(2);
  EXPECT_EQ(drain(e0), 1u);
  EXPECT_EQ(drain(e1), 1u);
  // Loopback trigger (DATA_NONE / DATA_BOOL).
  ASSERT_TRUE(client_->irq_action(VFIO_PCI_MSIX_IRQ_INDEX, 1, 1, VFIO_IRQ_SET_ACTION_TRIGGER));
  EXPECT_EQ(drain(e0), 1u);
  auto bools = b(IrqSet{22, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 1, 2}, 2);
  bools[20] = 0;
  bools[21] = 1;
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, bools), 0);
  EXPECT_EQ(drain(e0), 0u);
  EXPECT_EQ(drain(e1), 1u);
  // Mask: pending until unmask.
  ASSERT_TRUE(client_->irq_action(VFIO_PCI_MSIX_IRQ_INDEX, 1, 1, VFIO_IRQ_SET_ACTION_MASK));
  server_->raise(1);
  EXPECT_EQ(drain(e0), 0u);
  ASSERT_TRUE(client_->irq_action(VFIO_PCI_MSIX_IRQ_INDEX, 1, 1, VFIO_IRQ_SET_ACTION_UNMASK));
  EXPECT_EQ(drain(e0), 1u);
  // count 0 disables all.
  ASSERT_TRUE(client_->disable_irqs(VFIO_PCI_MSIX_IRQ_INDEX));
  server_->raise(1);
  EXPECT_EQ(drain(e0), 0u);
  close(e0);
  close(e1);
}

TEST_F(VfioUserServer, SetIrqsBad) {
  size_t before = open_fds();
  int e = eventfd(0, EFD_NONBLOCK);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const uint32_t kEvTrig = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, kEvTrig, 2, 0, 2}), {e}), EINVAL);   // fds != count
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, kEvTrig, 2, 3, 2}), {e, e}), EINVAL);  // start+count
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, kEvTrig | VFIO_IRQ_SET_DATA_NONE, 2, 0, 1}), {e}), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, kEvTrig, 2, 0, 1}), {p[0]}), EINVAL);  // not an eventfd
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK, 2, 0, 1}), {e}), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 1}), {e}), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, kEvTrig, 7, 0, 1}), {e}), EINVAL);     // index
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{8, kEvTrig, 2, 0, 1}), {e}), EINVAL);      // argsz
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 2})), EINVAL);  // bools missing
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, b(IrqSet{20, 1u << 9 | kEvTrig, 2, 0, 1}), {e}), EINVAL);  // unknown flag
  EXPECT_EQ(raw(VFIO_USER_DEVICE_SET_IRQS, {1, 2}), EINVAL);
  close(e);
  close(p[0]);
  close(p[1]);
  // Every fd sent with a refused message was closed by the server.
  EXPECT_EQ(open_fds(), before);
}

TEST_F(VfioUserServer, RegionReadWrite) {
  auto vid = client_->read32(7, pci::kVendorId);
  ASSERT_TRUE(vid);
  EXPECT_EQ(*vid & 0xffff, 0x15b3u);
  ASSERT_TRUE(client_->write32(0, 0x14, 0xdeadbeef));
  EXPECT_EQ(*client_->read32(0, 0x14), 0xdeadbeefu);
  // BAR sizing through the config region.
  ASSERT_TRUE(client_->write32(7, pci::kBaseAddress0, 0xffffffff));
  EXPECT_EQ(*client_->read32(7, pci::kBaseAddress0), ~uint32_t(pci::kNvmeBar0Size - 1) | pci::kBarMemType64);
  // Posted write (NO_REPLY): no reply comes, the next request still matches.
  uint32_t v = 0x55;
  auto w = b(RegionAccess{0x20, 0, 4}, 4);
  memcpy(w.data() + 16, &v, 4);
  ASSERT_TRUE(client_->send(VFIO_USER_REGION_WRITE, w, {}, kFlagsNoReply));
  EXPECT_EQ(*client_->read32(0, 0x20), 0x55u);
  // Bad accesses.
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{4094, 7, 4})), EINVAL);     // past the end
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{0, 9, 4})), EINVAL);        // region
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{0, 7, 0})), EINVAL);        // count 0
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{0, 2, 4})), EINVAL);        // absent BAR
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{0, 7, 2u << 20})), EINVAL);  // > max xfer
  EXPECT_EQ(raw(VFIO_USER_REGION_READ, b(RegionAccess{0, 7, 4}, 4)), EINVAL);     // trailing data
  EXPECT_EQ(raw(VFIO_USER_REGION_WRITE, b(RegionAccess{0, 7, 8}, 4)), EINVAL);    // count != data
  EXPECT_EQ(raw(VFIO_USER_REGION_WRITE, b(RegionAccess{~0ull, 0, 4}, 4)), EINVAL);  // overflow
  EXPECT_EQ(raw(VFIO_USER_REGION_WRITE, {1}), EINVAL);
}

TEST_F(VfioUserServer, DmaMapUnmap) {
  auto buf = DmaBuffer::create(64 << 10);
  ASSERT_TRUE(buf);
  ASSERT_TRUE(client_->dma_map(0x100000, 32 << 10, (*buf)->fd(), 16 << 10));
  EXPECT_EQ(fn_.dma_changes.load(), 1);
  hostmem::MemoryMapPtr map;
  on_reactor([&] { map = fn_.dma(); });
  ASSERT_TRUE(map);
  uint8_t* p = map->translate(0x100000 + 8, 8, true);
  ASSERT_NE(p, nullptr);
  memcpy(p, "devwrote", 8);  // the device's DMA write lands in the client's memory
  EXPECT_EQ(0, memcmp((*buf)->data() + (16 << 10) + 8, "devwrote", 8));
  EXPECT_EQ(map->translate(0x100000 + (32 << 10), 1), nullptr);
  // A region without an fd is recorded but not accessible.
  ASSERT_TRUE(client_->dma_map(0x200000, 4096, -1, 0));
  on_reactor([&] { map = fn_.dma(); });
  EXPECT_EQ(map->translate(0x200000, 16), nullptr);
  EXPECT_EQ(server_->dma_regions(), 2u);
  // Read-only region refuses device writes.
  ASSERT_TRUE(client_->dma_map(0x300000, 4096, (*buf)->fd(), 0, VFIO_USER_F_DMA_REGION_READ));
  on_reactor([&] { map = fn_.dma(); });
  EXPECT_EQ(map->translate(0x300000, 16, true), nullptr);
  EXPECT_NE(map->translate(0x300000, 16, false), nullptr);
  // Unmap.
  ASSERT_TRUE(client_->dma_unmap(0x100000, 32 << 10));
  on_reactor([&] { map = fn_.dma(); });
  EXPECT_EQ(map->translate(0x100000, 8), nullptr);
  EXPECT_NE(p, nullptr);
  ASSERT_TRUE(client_->dma_unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL));
  EXPECT_EQ(server_->dma_regions(), 0u);
}

TEST_F(VfioUserServer, DmaMapBad) {
  size_t before = open_fds();
  auto buf = DmaBuffer::create(8192);
  ASSERT_TRUE(buf);
  int fd = (*buf)->fd();
  const uint32_t rw = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{8, rw, 0, 0x1000, 4096}), {fd}), EINVAL);      // argsz
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, 0x1000, 4096}, 8), {fd}), EINVAL);  // size
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, 0x80, 0, 0x1000, 4096}), {fd}), EINVAL);   // flags
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, 0x1000, 0}), {fd}), EINVAL);        // size 0
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, ~0ull - 10, 4096}), {fd}), EINVAL);  // wraps
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 4096, 0x1000, 8192}), {fd}), EINVAL);   // past EOF
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, 0x1000, 4096}), {fd, fd}), EINVAL);  // two fds
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, {1, 2, 3}), EINVAL);
  ASSERT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, 0x1000, 4096}), {fd}), 0);
  EXPECT_EQ(raw(VFIO_USER_DMA_MAP, b(DmaMap{32, rw, 0, 0x1800, 4096}), {fd}), EEXIST);  // overlap
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{24, 0, 0x5000, 4096})), ENOENT);
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{8, 0, 0x1000, 4096})), EINVAL);   // argsz
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{24, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0x1000, 4096})), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{24, VFIO_DMA_UNMAP_FLAG_ALL, 0x1000, 4096})), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{24, 0x8, 0x1000, 4096})), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, {0}), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DMA_UNMAP, b(DmaUnmap{24, 0, 0x1000, 4096})), 0);
  buf->reset();
  EXPECT_EQ(open_fds(), before);
}

TEST_F(VfioUserServer, DeviceReset) {
  ASSERT_TRUE(client_->write32(7, pci::kCommand, pci::kCommandMemory | pci::kCommandMaster));
  ASSERT_TRUE(client_->reset());
  EXPECT_EQ(fn_.resets.load(), 1);
  EXPECT_EQ(*client_->read32(7, pci::kCommand) & 0xffff, 0u);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_RESET, {1, 2, 3, 4}), EINVAL);
  EXPECT_EQ(fn_.resets.load(), 1);
}

TEST_F(VfioUserServer, UnknownUnsupportedAndStrayFds) {
  size_t before = open_fds();
  EXPECT_EQ(raw(200, {}), EINVAL);
  EXPECT_EQ(raw(VFIO_USER_DMA_READ, b(DmaAccess{0, 8})), EINVAL);  // server->client only
  EXPECT_EQ(raw(VFIO_USER_DIRTY_PAGES, {}), ENOSYS);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_FEATURE, {}), ENOSYS);
  int e = eventfd(0, 0);
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, b(DeviceInfo{16, 0, 0, 0}), {e, e, e}), EINVAL);
  close(e);
  EXPECT_EQ(open_fds(), before);
  // An error-flagged command is refused too.
  EXPECT_EQ(raw(VFIO_USER_DEVICE_GET_INFO, b(DeviceInfo{16, 0, 0, 0}), {}, kFlagsError), EINVAL);
}

TEST_F(VfioUserServer, DisconnectDetachesAndReconnectMapsAgain) {
  auto buf = DmaBuffer::create(8192);
  ASSERT_TRUE(client_->dma_map(0x1000, 8192, (*buf)->fd(), 0));
  client_.reset();
  // The server notices on its reactor; wait for the detach.
  while (fn_.detaches.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  client_ = connect();
  EXPECT_EQ(fn_.attaches.load(), 2);
  EXPECT_EQ(server_->dma_regions(), 0u);
  ASSERT_TRUE(client_->dma_map(0x1000, 8192, (*buf)->fd(), 0));
  EXPECT_TRUE(client_->device_info());
}

TEST_F(VfioUserServer, BrokenFramingDropsClientOnly) {
  // msg_size smaller than the header cannot be framed: the server drops the
  // connection and keeps listening.
  Header h{1, VFIO_USER_DEVICE_GET_INFO, 8, 0, 0};
  ASSERT_EQ(write(client_->socket(), &h, sizeof(h)), ssize_t(sizeof(h)));
  char c;
  EXPECT_EQ(read(client_->socket(), &c, 1), 0);  // EOF
  client_ = connect();
  EXPECT_TRUE(client_->device_info());
}

TEST_F(VfioUserServer, SecondClientWaitsForFirst) {
  auto second = Client::connect(path_);
  ASSERT_TRUE(second);  // queued in the backlog
  client_.reset();
  ASSERT_TRUE((*second)->negotiate());
  EXPECT_TRUE((*second)->device_info());
}

// ---- incremental, non-blocking reception --------------------------------

// Sends bytes (and fds with the first byte) as one sendmsg.
void send_raw(int sock, const void* p, size_t n, std::vector<int> fds = {}) {
  iovec iov{const_cast<void*>(p), n};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 32)];
  if (!fds.empty()) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(sendmsg(sock, &mh, MSG_NOSIGNAL), ssize_t(n));
}

// A reply read with a bound, so that a broken server fails the test instead
// of hanging it.
Result<bool> read_reply(int sock, Message& m) {
  timeval tv{30, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  VDPU_TRY(recv_message(sock, kMaxMsgSize, kMaxMsgFds, m));
  return true;
}

bool peer_closed(int sock) {
  timeval tv{30, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  return recv(sock, &c, 1, 0) == 0;
}

class VfioUserTwoServers : public VfioUserServer {
 protected:
  void SetUp() override {
    VfioUserServer::SetUp();
    path2_ = path_ + ".2";
    on_reactor([&] {
      server2_ = std::make_unique<Server>(path2_, fn2_, *reactor_);  // the same reactor
      ASSERT_TRUE(server2_->start());
    });
  }
  void TearDown() override {
    on_reactor([&] { server2_.reset(); });
    VfioUserServer::TearDown();
  }
  std::string path2_;
  TestFunction fn2_;
  std::unique_ptr<Server> server2_;
};

// A client that sends half a header and stalls must not hold the reactor: a
// client of another server on the same reactor is served meanwhile. Proven
// by order, not time: the second client's whole exchange completes while the
// first message is still incomplete, then the first completes and is
// answered on the same, still open, connection.
TEST_F(VfioUserTwoServers, StalledPartialHeaderDoesNotBlockTheReactor) {
  Header h{77, VFIO_USER_DEVICE_GET_INFO, uint32_t(sizeof(Header) + sizeof(DeviceInfo)), 0, 0};
  DeviceInfo di{sizeof(DeviceInfo), 0, 0, 0};
  int a = client_->socket();
  send_raw(a, &h, 8);  // half a header, then nothing

  auto b = Client::connect(path2_);
  ASSERT_TRUE(b);
  ASSERT_TRUE((*b)->negotiate());       // served while A's message is incomplete
  auto info = (*b)->device_info();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(fn2_.attaches.load(), 1);
  bool a_connected = false;
  uint64_t a_messages = 0;
  on_reactor([&] {
    a_connected = server_->connected();
    a_messages = server_->stats().messages;
  });
  EXPECT_TRUE(a_connected);  // A was not dropped for being slow
  EXPECT_EQ(a_messages, 1u);  // only its VERSION so far

  send_raw(a, reinterpret_cast<uint8_t*>(&h) + 8, 4);  // still incomplete
  send_raw(a, reinterpret_cast<uint8_t*>(&h) + 12, sizeof(h) - 12);
  send_raw(a, &di, sizeof(di));
  Message m;
  auto r = read_reply(a, m);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.hdr.msg_id, 77);
  EXPECT_EQ(m.hdr.flags & kFlagsError, 0u);
  EXPECT_EQ(m.payload.size(), sizeof(DeviceInfo));
  // The connection goes on as usual.
  EXPECT_TRUE(client_->device_info());
}

// A client that sends requests but does not read its replies fills its
// socket: the server keeps the reply that does not fit, stops reading that
// client, and serves the others meanwhile (a blocking send would hang the
// reactor for good). Once the client reads, every reply arrives, in order.
TEST_F(VfioUserTwoServers, ClientThatDoesNotReadItsRepliesDoesNotBlockTheReactor) {
  int a = client_->socket();
  int sndbuf = 0;
  socklen_t sl = sizeof(sndbuf);
  ASSERT_EQ(getsockopt(a, SOL_SOCKET, SO_RCVBUF, &sndbuf, &sl), 0);
  // Enough 4 KiB config-space reads to overflow the client's receive buffer
  // and the server's send buffer several times over.
  const int n = 4 * (sndbuf / 4096 + 1) + 64;
  for (int i = 0; i < n; ++i) {
    Header h{uint16_t(1000 + i), VFIO_USER_REGION_READ, uint32_t(sizeof(Header) + sizeof(RegionAccess)), 0, 0};
    RegionAccess ra{0, uint32_t(RegionIndex::kConfig), 4096};
    uint8_t msg[sizeof(h) + sizeof(ra)];
    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), &ra, sizeof(ra));
    send_raw(a, msg, sizeof(msg));
  }
  auto b = Client::connect(path2_);
  ASSERT_TRUE(b);
  ASSERT_TRUE((*b)->negotiate());  // served while A's replies are stuck
  ASSERT_TRUE((*b)->device_info());
  for (int i = 0; i < n; ++i) {
    Message m;
    auto r = read_reply(a, m);
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    ASSERT_EQ(m.hdr.msg_id, uint16_t(1000 + i));
    ASSERT_EQ(m.hdr.flags & kFlagsError, 0u) << m.hdr.error_no;
    ASSERT_EQ(m.payload.size(), sizeof(RegionAccess) + 4096);
  }
  EXPECT_TRUE(client_->device_info());
}

// A payload that arrives in pieces, with the fd on the first piece: the fd
// stays with its message.
TEST_F(VfioUserTwoServers, FdsStayWithAMessageThatArrivesInPieces) {
  auto buf = DmaBuffer::create(8192);
  ASSERT_TRUE(buf);
  DmaMap d{sizeof(DmaMap), VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE, 0, 0x2000, 8192};
  Header h{91, VFIO_USER_DMA_MAP, uint32_t(sizeof(Header) + sizeof(DmaMap)), 0, 0};
  std::vector<uint8_t> msg(sizeof(h) + sizeof(d));
  memcpy(msg.data(), &h, sizeof(h));
  memcpy(msg.data() + sizeof(h), &d, sizeof(d));
  int a = client_->socket();
  send_raw(a, msg.data(), 5, {(*buf)->fd()});
  // Another client's exchange on the same reactor, between the pieces.
  auto b = Client::connect(path2_);
  ASSERT_TRUE(b);
  ASSERT_TRUE((*b)->negotiate());
  send_raw(a, msg.data() + 5, 20);
  send_raw(a, msg.data() + 25, msg.size() - 25);
  Message m;
  auto r = read_reply(a, m);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.hdr.msg_id, 91);
  EXPECT_EQ(m.hdr.flags & kFlagsError, 0u) << m.hdr.error_no;
  size_t regions = 0;
  on_reactor([&] { regions = server_->dma_regions(); });
  EXPECT_EQ(regions, 1u);
}

TEST_F(VfioUserServer, OversizedMessageDropsTheClientAtOnce) {
  // Refused from the header alone: nothing of the payload is awaited.
  Header h{1, VFIO_USER_REGION_WRITE, kMaxMsgSize + 1, 0, 0};
  send_raw(client_->socket(), &h, sizeof(h));
  EXPECT_TRUE(peer_closed(client_->socket()));
  client_ = connect();
  EXPECT_TRUE(client_->device_info());
}

TEST_F(VfioUserServer, TooManyFdsDropTheClientAndAreClosed) {
  size_t before = open_fds();
  std::vector<int> fds;
  for (uint32_t i = 0; i < kMaxMsgFds + 1; ++i) fds.push_back(eventfd(0, 0));
  Header h{2, VFIO_USER_DEVICE_SET_IRQS, uint32_t(sizeof(Header)), 0, 0};
  send_raw(client_->socket(), &h, sizeof(h), fds);
  for (int fd : fds) close(fd);
  EXPECT_TRUE(peer_closed(client_->socket()));
  client_.reset();
  client_ = connect();
  EXPECT_TRUE(client_->device_info());
  EXPECT_LE(open_fds(), before);  // the server kept none of them
}

TEST_F(VfioUserServer, PeerGoneInsideAMessageIsACleanDisconnect) {
  Header h{3, VFIO_USER_DEVICE_GET_INFO, uint32_t(sizeof(Header) + sizeof(DeviceInfo)), 0, 0};
  send_raw(client_->socket(), &h, sizeof(h));  // header, no payload
  client_.reset();
  while (fn_.detaches.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  client_ = connect();
  EXPECT_TRUE(client_->device_info());
  EXPECT_EQ(fn_.attaches.load(), 2);
}

// MsgReader alone: byte by byte, and nothing of the next message consumed.
TEST(MsgReader, ByteByByteAndStopsAtTheMessageEnd) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Header h1{1, VFIO_USER_DEVICE_GET_INFO, uint32_t(sizeof(Header) + 4), 0, 0};
  Header h2{2, VFIO_USER_DEVICE_RESET, uint32_t(sizeof(Header)), 0, 0};
  std::vector<uint8_t> bytes(sizeof(h1) + 4 + sizeof(h2));
  memcpy(bytes.data(), &h1, sizeof(h1));
  memcpy(bytes.data() + sizeof(h1), "abcd", 4);
  memcpy(bytes.data() + sizeof(h1) + 4, &h2, sizeof(h2));
  MsgReader rd(kMaxMsgSize, kMaxMsgFds);
  Message m;
  size_t first = sizeof(h1) + 4;
  for (size_t i = 0; i < first; ++i) {
    auto r = rd.read(sv[0], m);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << i;  // nothing complete yet, and no blocking
    ASSERT_EQ(write(sv[1], &bytes[i], 1), 1);
  }
  // Both messages are in the socket now; the first comes out alone.
  ASSERT_EQ(write(sv[1], bytes.data() + first, sizeof(h2)), ssize_t(sizeof(h2)));
  auto r = rd.read(sv[0], m);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(m.hdr.msg_id, 1);
  EXPECT_EQ(std::string(m.payload.begin(), m.payload.end()), "abcd");
  r = rd.read(sv[0], m);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(m.hdr.msg_id, 2);
  EXPECT_TRUE(m.payload.empty());
  r = rd.read(sv[0], m);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  // EOF between messages is is_eof(); a bad size is kProtocol.
  Header bad{3, 1, 8, 0, 0};
  ASSERT_EQ(write(sv[1], &bad, sizeof(bad)), ssize_t(sizeof(bad)));
  r = rd.read(sv[0], m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  rd.reset();
  close(sv[1]);
  r = rd.read(sv[0], m);
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_eof(r.error()));
  close(sv[0]);
}

}  // namespace
}  // namespace vdpu::vfio_user
