// A vhost-user FRONT-END (the driver side, QEMU's role): guest memory in a
// memfd, and the control channel that negotiates features, hands the memory
// table and the vrings to a back-end, and reads its config. Used by unit tests
// (against our Server) and by `vdpu-perf blk` (against any vhost-user-blk
// back-end, e.g. qemu-storage-daemon).
//
// Threads: a Frontend and a GuestMemory belong to the thread that uses them;
// every request blocks until its reply (with a timeout).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "transport/vhost_user/message.h"
#include "transport/vhost_user/protocol.h"

namespace vdpu::vhost_user::fe {

// "Guest" memory shared with the back-end: one memfd mapped here, given a
// guest-physical base. Allocation is a bump allocator (zeroed memory).
class GuestMemory {
 public:
  // size: bytes (rounded up to 2 MiB); gpa: guest-physical base address.
  // hugepages: back it with MFD_HUGETLB (fails without reserved hugepages).
  // Errors: kIo (memfd/mmap).
  static Result<std::unique_ptr<GuestMemory>> create(uint64_t size, uint64_t gpa = 0x40000000,
                                                     bool hugepages = false);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  uint64_t gpa_base() const { return gpa_; }
  // Guest-physical and front-end virtual ("user") address of p.
  uint64_t gpa(const void* p) const { return gpa_ + uint64_t(static_cast<const uint8_t*>(p) - base_); }
  uint64_t uva(const void* p) const { return reinterpret_cast<uint64_t>(p); }
  // Zeroed bytes, aligned (power of two); nullptr when full.
  void* alloc(uint64_t len, uint64_t align = 64);
  // The SET_MEM_TABLE entry describing all of it.
  MemRegion region() const { return {gpa_, size_, uva(base_), 0}; }

 private:
  GuestMemory() = default;
  UniqueFd fd_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t gpa_ = 0;
  uint64_t used_ = 0;
};

// A received reply.
struct Reply {
  Header hdr{};
  std::vector<uint8_t> payload;
  std::vector<UniqueFd> fds;
  uint64_t u64() const;
};

class Frontend {
 public:
  // Connects to a back-end listening at path (retrying until timeout_ms, so
  // a back-end that is still starting is fine). Errors: kIo, kTimeout.
  static Result<std::unique_ptr<Frontend>> connect(const std::string& path, int timeout_ms = 5000);
  explicit Frontend(UniqueFd fd) : fd_(std::move(fd)), rx_(/*replies=*/true) {}

  int fd() const { return fd_.get(); }
  // Reply timeout for every request (default 5 s).
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }

  // --- raw access (negative tests) ---
  Status send(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds = {},
              uint32_t flags = VHOST_USER_VERSION);
  // Sends arbitrary bytes (+ fds) as they are.
  Status send_bytes(const void* data, size_t len, std::span<const int> fds = {});
  // Waits for one reply. Errors: kTimeout, kIo (closed), kProtocol.
  Result<Reply> recv(int timeout_ms = -1);
  // True if the back-end closed the connection (waits up to timeout_ms).
  bool peer_closed(int timeout_ms);

  // --- typed requests. When REPLY_ACK is negotiated (set_protocol_features)
  // requests without a reply body are sent with NEED_REPLY and the ack is
  // checked: errors are kProtocol "back-end refused …". ---
  Result<uint64_t> get_features();
  Status set_features(uint64_t f);
  Result<uint64_t> get_protocol_features();
  Status set_protocol_features(uint64_t f);
  Status set_owner();
  Status reset_device();
  Result<uint64_t> get_queue_num();
  Result<uint64_t> get_max_mem_slots();
  Status set_mem_table(std::span<const MemRegion> regions, std::span<const int> fds);
  Status add_mem_reg(const MemRegion& r, int fd);
  Status rem_mem_reg(const MemRegion& r);
  Status set_vring_num(uint32_t q, uint32_t num);
  Status set_vring_base(uint32_t q, uint32_t base);
  Status set_vring_addr(uint32_t q, uint64_t desc, uint64_t used, uint64_t avail);
  // fd < 0: the NOFD flag (polling).
  Status set_vring_kick(uint32_t q, int fd);
  Status set_vring_call(uint32_t q, int fd);
  Status set_vring_err(uint32_t q, int fd);
  Status set_vring_enable(uint32_t q, bool on);
  // Waits for the back-end to stop the ring; returns its base.
  Result<uint32_t> get_vring_base(uint32_t q);
  // Errors: kProtocol when the back-end answers with an empty payload.
  Result<std::vector<uint8_t>> get_config(uint32_t offset, uint32_t size);
  Status set_config(uint32_t offset, std::span<const uint8_t> data, uint32_t flags = 0);
  Result<InflightDesc> get_inflight_fd(uint16_t num_queues, uint16_t queue_size, UniqueFd* fd);
  Status set_inflight_fd(const InflightDesc& d, int fd);

  uint64_t protocol_features() const { return protocol_features_; }
  bool reply_ack() const { return protocol_features_ & pf_bit(VHOST_USER_PROTOCOL_F_REPLY_ACK); }

 private:
  // A request with no reply body: sends, and checks the ack if negotiated.
  Status simple(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds = {});
  Result<Reply> request(uint32_t request, const void* payload, uint32_t size, std::span<const int> fds = {});
  Status vring_file(uint32_t request, uint32_t q, int fd);

  UniqueFd fd_;
  Receiver rx_;
  int timeout_ms_ = 5000;
  uint64_t protocol_features_ = 0;
};

}  // namespace vdpu::vhost_user::fe
