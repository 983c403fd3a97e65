// The vhost-user back-end: one unix socket, one front-end at a time, one
// virtio::Device behind it. It parses and validates every message
// (message.h), maps front-end memory (memory.h), tracks each vring's
// configuration and starts/stops the device's queues when the protocol says
// so. The device never sees a vhost-user message.
//
// Threads: everything runs on the reactor given at creation (the main,
// control-plane reactor); the device's asynchronous callbacks must come back
// on it too (virtio/device.h says they do).
//
// Asynchronous requests (GET_VRING_BASE waits for the queue to drain, a ring
// restart when its fds change, memory table changes under running queues)
// run one at a time; the socket is not read while one is pending, so
// messages are handled strictly in order and replies are never reordered.
//
// Reconnect: when the front-end goes away the server stops every queue,
// resets the device, forgets the session (memory, features, rings) and keeps
// listening, so a front-end with `reconnect=` comes back to a clean device.
// The inflight buffer is kept across connections.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/reactor.h"
#include "transport/vhost_user/memory.h"
#include "transport/vhost_user/message.h"
#include "virtio/device.h"

namespace vdpu::vhost_user {

// Protocol features we offer (vhost-user.rst "Protocol features").
constexpr uint64_t kServerProtocolFeatures =
    pf_bit(VHOST_USER_PROTOCOL_F_MQ) | pf_bit(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
    pf_bit(VHOST_USER_PROTOCOL_F_CONFIG) | pf_bit(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
    pf_bit(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | pf_bit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);

class Server {
 public:
  struct Stats {
    uint64_t connections = 0;      // accepted and served
    uint64_t refused = 0;          // extra front-ends closed while one was connected
    uint64_t messages = 0;         // handled
    uint64_t bad_messages = 0;     // refused by check_message or a handler
    uint64_t disconnects = 0;
  };

  // Creates the socket at `path` (replacing a stale socket file there, never
  // another kind of file), listens, and serves on `reactor`. Call on the
  // reactor's thread (or before it runs). The device must outlive the server.
  // Errors: kInvalidArgument (path too long / occupied), kIo (socket calls).
  static Result<std::unique_ptr<Server>> listen(rt::Reactor& reactor, virtio::Device& dev, std::string path);
  // Serves an already-connected socket (socketpair, `--fd`); nothing listens,
  // so after a disconnect the server only waits to be destroyed.
  static Result<std::unique_ptr<Server>> adopt(rt::Reactor& reactor, virtio::Device& dev, UniqueFd conn);

  // Best effort when queues still run: asks the device to stop them and keeps
  // their fds and inflight memory alive until it reports back. Prefer
  // shutdown() first. Closes the sockets and unlinks the path.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops every queue, resets the device, closes the connection and the
  // listening socket and unlinks the path; done() runs on the reactor when
  // all of that is finished.
  void shutdown(std::function<void()> done);

  bool connected() const { return conn_.get() >= 0; }
  const std::string& path() const { return path_; }
  const Stats& stats() const { return stats_; }
  // Queues the device currently runs for us (introspection, tests).
  uint32_t running_queues() const;
  // Asynchronous operations in flight or queued (0 = idle).
  size_t pending_ops() const { return ops_.size(); }

  // Reactor callbacks; public so that the fuzz target can drive the server
  // without running the reactor loop.
  void on_listen_readable();
  void on_conn_readable();

 private:
  using Done = std::function<void()>;
  using Op = std::function<void(Done)>;
  struct Vring {
    uint32_t num = 0;
    bool addr_set = false;
    VringAddr addr{};
    uint32_t base = 0;  // split: last_avail_idx; packed: avail | used << 16 (QEMU's encoding)
    std::shared_ptr<UniqueFd> kick, call, err;
    bool kick_set = false;  // SET_VRING_KICK received (fd or polling): the ring is started
    bool enabled = false;   // SET_VRING_ENABLE
    bool running = false;   // the device runs it
    // What the running queue uses; released once the device has stopped it.
    std::shared_ptr<UniqueFd> active_kick, active_call;
    MappingPtr active_inflight;
    hostmem::MemoryMapPtr active_mem;
  };
  // Result of a handler: ack (0) / nack (1) for NEED_REPLY, or the handler
  // already replied or will reply when its asynchronous part finishes.
  enum class Res { kOk, kFail, kReplied, kAsync, kDisconnect };

  Server(rt::Reactor& reactor, virtio::Device& dev);
  Status watch_conn();
  void unwatch_conn();
  void disconnect(const char* why);
  void handle(Message& m);
  Res dispatch(Message& m);

  // --- handlers (server.cc / server_vring.cc) ---
  Res on_get_features(Message& m);
  Res on_set_features(Message& m);
  Res on_get_protocol_features(Message& m);
  Res on_set_protocol_features(Message& m);
  Res on_set_mem_table(Message& m);
  Res on_add_mem_reg(Message& m);
  Res on_rem_mem_reg(Message& m);
  Res on_get_config(Message& m);
  Res on_set_config(Message& m);
  Res on_get_inflight_fd(Message& m);
  Res on_set_inflight_fd(Message& m);
  Res on_reset(Message& m);
  Res on_vring_num(Message& m);
  Res on_vring_addr(Message& m);
  Res on_vring_base(Message& m);
  Res on_get_vring_base(Message& m);
  Res on_vring_file(Message& m);
  Res on_vring_enable(Message& m);

  // --- replies ---
  void reply(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds = {});
  void reply_u64(uint32_t request, uint64_t v) { reply(request, &v, sizeof(v)); }
  void ack(uint32_t request, bool need_reply, bool ok) {
    if (need_reply) reply_u64(request, ok ? 0 : 1);
  }

  // --- asynchronous operations (serialised) ---
  void run_op(Op op);
  void op_finished();
  // Stops ring q if it runs (its base then holds the device's state).
  void stop_ring(uint16_t q, Done then);
  // Stops every running ring, one after the other; `which` receives their
  // indices.
  void stop_all(std::shared_ptr<std::vector<uint16_t>> which, Done then, size_t from = 0);
  // Starts ring q if it is startable; then(status) (ok when not startable).
  void start_ring(uint16_t q, std::function<void(Status)> then);
  // A ring whose configuration changed: restart it if it runs, start it if it
  // became startable. Acks the request when done.
  Res refresh_ring(uint16_t q, uint32_t request, bool need_reply);
  bool startable(const Vring& v) const;
  Result<virtio::QueueConfig> build_config(uint16_t q);
  // The memory table changed: build a new map and hand it to the device.
  Res memory_changed();
  // Back to the state of a fresh connection (memory too when `all`).
  void reset_session(bool all);
  bool protocol_negotiated() const { return features_ & VHOST_USER_F_PROTOCOL_FEATURES; }
  uint64_t offered_features() const;
  Status check_queue_index(uint32_t idx) const;

  rt::Reactor& reactor_;
  virtio::Device& dev_;
  std::string path_;
  UniqueFd listen_;
  UniqueFd conn_;
  bool conn_watched_ = false;
  bool listening_ = false;
  bool adopted_ = false;
  Receiver rx_;
  std::deque<Op> ops_;
  bool op_running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // Session state.
  bool owner_set_ = false;
  uint64_t features_ = 0;           // acked by SET_FEATURES (incl. bit 30)
  bool features_set_ = false;
  uint64_t protocol_features_ = 0;  // acked by SET_PROTOCOL_FEATURES
  MemTable mem_;
  hostmem::MemoryMapPtr map_;
  std::vector<Vring> vrings_;
  InflightArea inflight_;  // kept across connections
  Stats stats_;
};

}  // namespace vdpu::vhost_user
