// libFuzzer target for the vfio-user server's message handling: the input is
// a sequence of records [nfds:1][header:16][payload:msg_size-16] fed to
// Server::handle() as if they came from a client (fds are fresh eventfds or
// memfds). Every reply is dropped; the checks are ASan/UBSan and no fd leak.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/log.h"
#include "pci/function_base.h"
#include "transport/vfio_user/server.h"

namespace {

using namespace vdpu;

class FuzzFunction : public pci::PciFunctionBase {
 public:
  FuzzFunction() : PciFunctionBase({"fuzz", pci::nvme_config_options(pci::Identity{}, 8, "FUZZNVMES0D0F0")}) {
    (void)set_bar_handler(0, pci::BarHandler{
        [this](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
          for (size_t i = 0; i < out.size(); ++i) out[i] = off + i < sizeof(regs_) ? regs_[off + i] : 0;
          return out.size();
        },
        [this](uint64_t off, std::span<const uint8_t> in) -> Result<size_t> {
          for (size_t i = 0; i < in.size(); ++i)
            if (off + i < sizeof(regs_)) regs_[off + i] = in[i];
          return in.size();
        }});
    (void)add_mmap_area(0, pci::kNvmeDoorbellOffset, pci::kNvmeDoorbellSize);
  }

 protected:
  void on_dma_changed(const hostmem::MemoryMapPtr& m) override {
    // Touch every mapped byte range the way a device would.
    for (const auto& r : m->regions()) {
      if (r.writable) r.hva[0] = 1;
      volatile uint8_t x = r.hva[r.size - 1];
      (void)x;
    }
  }

 private:
  uint8_t regs_[0x100] = {};
};

struct Harness {
  Harness() : reactor(0, -1, true), server("/nonexistent/fuzz.sock", fn, reactor) {
    vdpu::log::init(0);
  }
  FuzzFunction fn;
  rt::Reactor reactor;
  vfio_user::Server server;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness;
  size_t pos = 0;
  while (pos + 1 + sizeof(vfio_user::Header) <= size) {
    uint8_t nfds = data[pos++] % 4;
    vfio_user::Message m;
    std::memcpy(&m.hdr, data + pos, sizeof(m.hdr));
    pos += sizeof(m.hdr);
    // The framing check of MsgReader (msg_io.h).
    if (m.hdr.msg_size < sizeof(vfio_user::Header) || m.hdr.msg_size > vfio_user::kMaxMsgSize) break;
    size_t len = std::min<size_t>(m.hdr.msg_size - sizeof(vfio_user::Header), size - pos);
    m.payload.assign(data + pos, data + pos + len);
    pos += len;
    for (uint8_t i = 0; i < nfds; ++i) {
      int fd;
      if (i % 2 == 0) {
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      } else {
        fd = memfd_create("fuzz", MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, 1 << 16) != 0) {
          close(fd);
          fd = -1;
        }
      }
      if (fd >= 0) m.fds.push_back(fd);
    }
    h->server.handle(m, [](vfio_user::Reply&&) {});
  }
  // Each input is a fresh session: drop DMA maps and eventfds.
  h->server.reset_session(nullptr);
  return 0;
}
