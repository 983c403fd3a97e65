// A scripted NVMe/TCP target for the initiator's unit tests: listens on
// 127.0.0.1 (ephemeral port), one thread per connection, blocking sockets.
// It speaks just enough of NVMe/TCP and NVMe-oF (ICResp, Connect, Property
// Get/Set, Identify, Set Features, Keep Alive, Read/Write/Flush/DSM/Write
// Zeroes on an in-memory disk, in-capsule data, R2T + H2CData, C2HData in
// chunks, digests) and can misbehave on request.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nvme/fabrics.h"
#include "nvme/spec.h"
#include "transport/nvmf_tcp/pdu.h"

namespace vdpu::bdev::nvme::test {

namespace nv = vdpu::nvme;
using namespace vdpu::nvmf_tcp;

class FakeTarget {
 public:
  // Knobs (set before connections are made).
  std::string nqn = "nqn.2016-06.io.spdk:cnode1";
  std::string allowed_host;  // empty: any host
  uint32_t lbads = 9;
  uint64_t blocks = 4096;  // 2 MiB with 512-byte blocks
  uint32_t icd = 4096;     // in-capsule data bytes on I/O queues
  uint32_t maxh2cdata = 8192;
  uint32_t c2h_chunk = 16384;  // data bytes per C2HData
  uint8_t mdts = 5;            // 2^5 * 4 KiB = 128 KiB per command
  uint16_t queues = 4;         // I/O queues granted
  bool c2h_success = true;     // C2HData SUCCESS instead of a CapsuleResp
  // Misbehaviour: after this many I/O responses, send a CapsuleResp whose
  // HLEN is wrong (-1: never).
  std::atomic<int> bad_pdu_after{-1};
  // Misbehaviour: the next I/O command is answered with a bad PDU instead.
  enum class Misbehave : int {
    kNone,
    kUnknownCid,       // C2HData for a command ID not in flight
    kBadHeaderDigest,  // CapsuleResp whose header digest is wrong (needs hdgst)
    kR2tOutOfRange,    // R2T beyond the command's data
    kC2HTermReq,       // the target ends the connection
    kBadType,          // a PDU type a host never receives (CapsuleCmd)
    kTransient,        // not a bad PDU: Transient Transport Error, DNR clear
    kNoAnswer,         // the command is dropped silently
  };
  std::atomic<Misbehave> misbehave{Misbehave::kNone};

  std::atomic<uint64_t> connects{0}, io_connects{0}, keep_alives{0}, r2ts{0}, cmds{0};
  std::atomic<bool> got_h2c_term{false};

  FakeTarget() : disk_(blocks << lbads) {}
  ~FakeTarget() { stop(); }

  void start() {
    if (disk_.size() != size_t(blocks << lbads)) disk_.assign(size_t(blocks << lbads), 0);
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    if (bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) abort();
    socklen_t l = sizeof(a);
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &l);
    port_ = ntohs(a.sin_port);
    listen(lfd_, 16);
    running_ = true;
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  // Stops listening and drops every connection (the target "goes away").
  // start() again listens on the same port.
  void stop() {
    if (!running_) return;
    running_ = false;
    shutdown(lfd_, SHUT_RDWR);
    close(lfd_);
    acceptor_.join();
    std::vector<std::thread> ts;
    {
      std::lock_guard lk(mu_);
      for (int fd : conns_) shutdown(fd, SHUT_RDWR);
      ts.swap(threads_);
    }
    for (auto& t : ts) t.join();
    std::lock_guard lk(mu_);
    conns_.clear();
  }

  // Drops the connections but keeps listening.
  void drop_connections() {
    std::lock_guard lk(mu_);
    for (int fd : conns_) shutdown(fd, SHUT_RDWR);
  }

  uint16_t port() const { return port_; }
  std::string port_str() const { return std::to_string(port_); }
  uint8_t* disk() { return disk_.data(); }

 private:
  struct Conn;
  class Handler;

  void accept_loop() {
    while (running_) {
      pollfd p{lfd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard lk(mu_);
      conns_.push_back(fd);
      threads_.emplace_back([this, fd] {
        serve(fd);
        {
          std::lock_guard lk(mu_);
          std::erase(conns_, fd);
        }
        close(fd);
      });
    }
  }

  void serve(int fd);

  uint16_t port_ = 0;
  int lfd_ = -1;
  std::atomic<bool> running_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
  std::vector<uint8_t> disk_;
  std::mutex disk_mu_;
  std::atomic<int> io_resps_{0};
};

}  // namespace vdpu::bdev::nvme::test
