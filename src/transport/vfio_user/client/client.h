// vfio-user client (the driver side, like QEMU's vfio-user-pci): connects to
// a server socket, negotiates, maps DMA memory, reads/writes config and BAR
// regions, mmaps sparse BAR areas (doorbells) and sets MSI-X eventfds. Used by
// tests and by `vdpu-perf nvme`.
//
// Thread: one thread at a time; every request blocks until its reply.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "transport/vfio_user/msg_io.h"
#include "transport/vfio_user/protocol.h"

namespace vdpu::vfio_user {

// Shared memory for DMA (a memfd mapped here; its fd goes to the server).
class DmaBuffer {
 public:
  // Errors: kIo.
  static Result<std::unique_ptr<DmaBuffer>> create(size_t size);
  ~DmaBuffer();
  uint8_t* data() const { return p_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  DmaBuffer() = default;
  int fd_ = -1;
  uint8_t* p_ = nullptr;
  size_t size_ = 0;
};

struct ClientRegion {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t size = 0;
  uint64_t fd_offset = 0;
  int fd = -1;  // owned by the Client (closed with it)
  std::vector<std::pair<uint64_t, uint64_t>> sparse;  // (offset, size)
};

class Client {
 public:
  // Connects (no negotiation). Errors: kIo.
  static Result<std::unique_ptr<Client>> connect(const std::string& socket_path);
  ~Client();

  // Raw request: sends and waits for the reply with the same id. The reply
  // is returned even when it carries the Error flag (check reply.hdr).
  // Errors: kIo (socket), kProtocol (bad reply framing / id mismatch).
  Result<Message> request(uint16_t command, std::span<const uint8_t> payload,
                          std::span<const int> fds = {}, uint32_t flags = 0);
  // Sends without waiting (NO_REPLY when no_reply is set; else the reply must
  // be read with read_reply()).
  Status send(uint16_t command, std::span<const uint8_t> payload, std::span<const int> fds = {},
              uint32_t flags = 0);

  // Typed helpers. A server error reply becomes Error{kIo, "... errno N"} and
  // last_errno() returns N.
  Status negotiate(const std::string& json =
                       R"({"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"pgsizes":4096}})");
  const std::string& server_caps() const { return server_caps_; }
  Result<DeviceInfo> device_info();
  Result<ClientRegion> region_info(uint32_t index);
  Result<IrqInfo> irq_info(uint32_t index);
  Status dma_map(uint64_t iova, uint64_t size, int fd, uint64_t fd_offset,
                 uint32_t flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE);
  Status dma_unmap(uint64_t iova, uint64_t size, uint32_t flags = 0);
  Status set_irq_eventfds(uint32_t index, uint32_t start, std::span<const int> fds);
  Status disable_irqs(uint32_t index);
  Status irq_action(uint32_t index, uint32_t start, uint32_t count, uint32_t action);
  Status region_read(uint32_t region, uint64_t offset, std::span<uint8_t> out);
  Status region_write(uint32_t region, uint64_t offset, std::span<const uint8_t> in);
  Status reset();

  // Convenience accessors for the config region (index 7) and BARs.
  Result<uint32_t> read32(uint32_t region, uint64_t offset);
  Result<uint64_t> read64(uint32_t region, uint64_t offset);
  Status write32(uint32_t region, uint64_t offset, uint32_t v);
  Status write64(uint32_t region, uint64_t offset, uint64_t v);

  // Maps a sparse mmap area of a region (after region_info). Returns the
  // address of region offset `area_offset`. Unmapped with the client.
  // Errors: kInvalidArgument (not an advertised area), kIo (mmap).
  Result<uint8_t*> mmap_area(uint32_t region, uint64_t area_offset);

  int last_errno() const { return last_errno_; }
  int socket() const { return sock_; }

 private:
  Client() = default;
  Status check(const Result<Message>& r, const char* what, Message* out = nullptr);

  int sock_ = -1;
  uint16_t next_id_ = 1;
  int last_errno_ = 0;
  std::string server_caps_;
  std::vector<ClientRegion> regions_;
  std::vector<std::pair<void*, size_t>> maps_;
};

}  // namespace vdpu::vfio_user
