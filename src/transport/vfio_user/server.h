// vfio-user server: serves one pci::Function on a unix socket to one client
// at a time (QEMU's vfio-user-pci, or the vdpu client library).
//
// It parses and validates every message (header size, argsz, fd counts),
// answers malformed ones with an error reply carrying the errno (EINVAL for
// malformed input), maps DMA regions passed with fds into a
// hostmem::MemoryMap (gpa = IOVA) that it hands to the Function, and raises
// MSI-X vectors by writing the eventfds the client set with SET_IRQS.
// A client disconnect detaches the Function (its state stays for the next
// client) and the server goes back to listening.
//
// The connection never blocks the reactor (which other servers and the RPC
// server share): messages are received incrementally (MsgReader) as bytes
// arrive, and replies the socket cannot take at once wait in an output
// buffer sent on EPOLLOUT, while no further request is read (one reply
// pending at most). A malformed or oversized message drops the client.
//
// Threads: everything runs on the reactor given at construction (the main /
// control-plane reactor) — start(), stop() and handle() must be called there.
// raise() (pci::IrqSink) may be called from any data reactor.
// Limitation: a DMA_UNMAP is answered once the Function has been handed the
// new map; queues switching by message may still touch the old region for a
// moment (its mapping stays valid until the last map using it dies).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "hostmem/hostmem.h"
#include "pci/function.h"
#include "runtime/reactor.h"
#include "transport/vfio_user/msg_io.h"

namespace vdpu::vfio_user {

struct Reply {
  Header hdr{};
  std::vector<uint8_t> payload;
  std::vector<int> fds;  // borrowed (e.g. the BAR memfd): not closed by the reply
  bool suppressed = false;  // NO_REPLY request: nothing is sent
};

struct ServerStats {
  uint64_t connections = 0;
  uint64_t messages = 0;
  uint64_t errors = 0;  // error replies
};

class Server final : public pci::IrqSink {
 public:
  // fn must outlive the server; the server is the Function's IrqSink while a
  // client is attached, and must outlive the Function's data-path use of it.
  Server(std::string socket_path, pci::Function& fn, rt::Reactor& reactor);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (replacing a stale socket file), listens and watches the socket on
  // the reactor. Errors: kIo (socket/bind/listen/epoll), kInvalidArgument
  // (path too long).
  Status start();
  // Drops the client (detaching the Function), stops listening, unlinks the
  // socket file. Idempotent.
  void stop();

  bool connected() const { return conn_ >= 0; }
  const std::string& socket_path() const { return path_; }
  const ServerStats& stats() const { return stats_; }
  // Eventfd writes so far (any thread).
  uint64_t irqs() const { return irqs_.load(std::memory_order_relaxed); }
  // Mapped DMA regions (IOVA ranges with an fd) and unmappable ones.
  size_t dma_regions() const { return dma_.size(); }
  hostmem::MemoryMapPtr dma_map() const { return map_; }

  // pci::IrqSink: any thread. Writes the vector's eventfd (unless masked
  // with SET_IRQS ACTION_MASK: then it is pending until unmasked).
  void raise(uint16_t vector) noexcept override;

  // Handles one client message, replying through `send` (immediately, or
  // later for DEVICE_RESET). Public for the fuzz target and tests; the socket
  // path calls it for every message.
  void handle(Message& m, std::function<void(Reply&&)> send);
  // Forgets the client session (as on disconnect) — for the fuzz target.
  void reset_session(std::function<void()> done);

 private:
  struct Mapping;
  struct DmaRegion {
    uint64_t iova = 0, size = 0;
    bool readable = true, writable = true;
    std::shared_ptr<Mapping> map;  // nullptr: no fd, not accessible
    uint8_t* hva = nullptr;
  };

  struct OutMsg {
    std::vector<uint8_t> bytes;  // header + payload
    size_t off = 0;              // sent so far
    std::vector<int> fds;        // borrowed; go with the first byte
  };

  void on_listen_ready();
  void on_conn_ready(uint32_t events);
  void disconnect(const char* why);
  void send_reply(Reply&& r);
  // Sends buffered replies as far as the socket takes them. False when the
  // client was dropped.
  bool flush_out();
  // Watches the connection for what it needs now: nothing while a reset
  // runs, EPOLLOUT while replies wait, else EPOLLIN.
  void update_watch();
  void rebuild_map();
  void clear_irqs();
  void retire_fds(std::vector<int> fds);

  // Handlers: return errno (0 = success, reply filled).
  int on_version(Message& m, Reply& r);
  int on_dma_map(Message& m, Reply& r);
  int on_dma_unmap(Message& m, Reply& r);
  int on_get_info(Message& m, Reply& r);
  int on_region_info(Message& m, Reply& r);
  int on_irq_info(Message& m, Reply& r);
  int on_set_irqs(Message& m, Reply& r);
  int on_region_read(Message& m, Reply& r);
  int on_region_write(Message& m, Reply& r);

  const std::string path_;
  pci::Function& fn_;
  rt::Reactor& reactor_;
  int listen_ = -1;
  int conn_ = -1;
  uint32_t watched_ = 0;   // epoll events conn_ is registered with (0: none)
  bool resetting_ = false;  // DEVICE_RESET running: no request is read
  uint64_t conn_gen_ = 0;   // bumped per accepted client
  MsgReader reader_{kMaxMsgSize, kMaxMsgFds};
  std::deque<OutMsg> out_;
  bool negotiated_ = false;
  bool attached_ = false;
  bool listening_ = false;
  uint32_t client_max_fds_ = 1;
  uint32_t client_max_xfer_ = kMaxDataXferSize;
  std::vector<DmaRegion> dma_;
  hostmem::MemoryMapPtr map_;
  // MSI-X eventfds, read lock-free by raise().
  const uint32_t nvec_;
  std::unique_ptr<std::atomic<int>[]> irq_fd_;
  std::unique_ptr<std::atomic<uint8_t>[]> irq_masked_;
  std::unique_ptr<std::atomic<uint8_t>[]> irq_pending_;
  ServerStats stats_;
  std::atomic<uint64_t> irqs_{0};
};

}  // namespace vdpu::vfio_user
