// libFuzzer target: the vhost-user back-end's message parser and protocol
// state machine. The input is a stream of messages, each followed by one
// byte saying how many fds (memfds of 1 MiB) to attach to it:
//
//   [Header (12 bytes)][payload: header.size bytes][fd count byte] ...
//
// Messages go through a real socketpair into Server::on_conn_readable() (no
// reactor loop), against a device that completes inline and touches the
// first and last byte of every ring area it is given (so a bounds-check miss
// faults). Ends with a disconnect and the server's destruction.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/log.h"
#include "runtime/reactor.h"
#include "transport/vhost_user/server.h"
#include "virtio/device.h"

namespace {

using namespace vdpu;
using namespace vdpu::vhost_user;

class FuzzDevice : public virtio::Device {
 public:
  uint32_t device_id() const override { return 2; }
  uint64_t device_features() const override {
    return virtio::kFVersion1 | virtio::kFRingPacked | virtio::kFEventIdx | (1ull << 9);
  }
  uint16_t num_queues() const override { return 4; }
  uint16_t max_queue_size() const override { return 1024; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(offset + i);
  }
  Status write_config(uint32_t offset, std::span<const uint8_t> in) override {
    if (offset + in.size() > 64) return make_error(Errc::kInvalidArgument, "ro");
    return {};
  }
  Status set_features(uint64_t) override { return {}; }
  static void touch(const void* p, uint64_t len) {
    volatile const uint8_t* b = static_cast<const uint8_t*>(p);
    (void)b[0];
    (void)b[len - 1];
  }
  void start_queue(uint16_t, const virtio::QueueConfig& c, std::function<void(Status)> done) override {
    if (c.packed) {
      touch(c.desc, 16ull * c.size);
      touch(c.avail, 4);
      touch(c.used, 4);
    } else {
      touch(c.desc, 16ull * c.size);
      touch(c.avail, 6 + 2ull * c.size);
      touch(c.used, 6 + 8ull * c.size);
    }
    if (c.inflight.base) touch(c.inflight.base, c.inflight.size);
    done({});
  }
  void stop_queue(uint16_t, std::function<void(virtio::QueueState)> done) override { done({7, 7}); }
  void update_memory(hostmem::MemoryMapPtr) override {}
  void reset() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool once = [] {
    vdpu::log::init(0);  // critical only: guest-triggered warnings are noise here
    return true;
  }();
  (void)once;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  UniqueFd peer(sv[1]);
  int mfd = memfd_create("fuzz-mem", MFD_CLOEXEC);
  if (mfd < 0 || ftruncate(mfd, 1 << 20) != 0) return 0;
  UniqueFd mem(mfd);

  rt::Reactor reactor(0, -1, true);
  FuzzDevice dev;
  auto s = Server::adopt(reactor, dev, UniqueFd(sv[0]));
  if (!s) return 0;
  Server& server = **s;

  size_t off = 0;
  while (off + sizeof(Header) <= size && server.connected()) {
    Header h;
    std::memcpy(&h, data + off, sizeof(h));
    size_t len = sizeof(h) + std::min<size_t>(h.size, size - off - sizeof(h));
    len = std::min<size_t>(len, sizeof(h) + kMaxPayload + 64);
    const uint8_t* msg = data + off;
    off += len;
    uint32_t nfds = off < size ? data[off++] % 10 : 0;
    int fds[10];
    for (uint32_t i = 0; i < nfds; ++i) fds[i] = mem.get();
    // One sendmsg per message (fds on its first byte).
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(fds))];
    iovec iov{const_cast<uint8_t*>(msg), len};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds) {
      mh.msg_control = cbuf;
      mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    if (sendmsg(peer.get(), &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) break;
    server.on_conn_readable();
    // Drain replies so the server never blocks on a full socket.
    char sink[4096];
    while (recv(peer.get(), sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
  }
  peer.reset();
  server.on_conn_readable();  // EOF: disconnect, stop, reset
  s->reset();
  return 0;
}
