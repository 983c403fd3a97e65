// Framing of vfio-user messages on a unix stream socket, with file
// descriptors passed as SCM_RIGHTS ancillary data. Shared by the server and
// the client library.
//
// Thread: whoever owns the socket. Blocking calls (the socket may carry a
// receive timeout).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "transport/vfio_user/protocol.h"

namespace vdpu::vfio_user {

// A received message. Owns its fds: those not take()n are closed when the
// message dies, so an unexpected fd is never leaked.
struct Message {
  Header hdr{};
  std::vector<uint8_t> payload;
  std::vector<int> fds;

  Message() = default;
  Message(Message&& o) noexcept;
  Message& operator=(Message&& o) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message() { close_fds(); }
  // Moves fd i out (the caller closes it). -1 if absent.
  int take_fd(size_t i);
  void close_fds();
};

// Reads one message: header first (with any fds), then msg_size - 16 bytes.
// Errors: kIo "closed" (EOF before a header), kIo (socket error), kTimeout
// (receive timeout inside a message), kProtocol (msg_size < 16 or > max_size,
// more than max_fds fds, truncated control data) — after kProtocol the stream
// cannot be trusted and the peer must be dropped.
Status recv_message(int sock, uint32_t max_size, uint32_t max_fds, Message& out);

// Sends header + the concatenation of parts, with fds attached. Sets
// hdr.msg_size. Errors: kIo.
Status send_message(int sock, Header hdr, std::span<const std::span<const uint8_t>> parts,
                    std::span<const int> fds = {});

// True when the peer closed (EOF) — distinguishes a clean disconnect.
bool is_eof(const Error& e);

}  // namespace vdpu::vfio_user
