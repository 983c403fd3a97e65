// Framing of vfio-user messages on a unix stream socket, with file
// descriptors passed as SCM_RIGHTS ancillary data. Shared by the server and
// the client library.
//
// Thread: whoever owns the socket. recv_message/send_message block (the
// client); MsgReader never does (the server).
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

// Reads one message, blocking (MsgReader below, waiting in poll() for the
// rest; the socket's SO_RCVTIMEO, if set, bounds each wait).
// Errors: kIo "closed" (EOF before a header), kIo (socket error), kTimeout
// (nothing or only part of a message within the timeout), kProtocol
// (msg_size < 16 or > max_size, more than max_fds fds, truncated control
// data) — after kProtocol the stream cannot be trusted and the peer must be
// dropped.
Status recv_message(int sock, uint32_t max_size, uint32_t max_fds, Message& out);

// Incremental, non-blocking reception of messages on one connection (the
// server side): reads what the socket holds, never waits for the rest of a
// message, and keeps a partial message (header bytes, payload bytes, and any
// fds that came with them) until it is complete. A peer that sends half a
// message and stalls therefore costs nothing but its own buffer.
//
// Limits: msg_size must be within [sizeof(Header), max_size] (checked as
// soon as the header is complete, before the payload is allocated) and at
// most max_fds fds may arrive with one message; anything else is kProtocol
// and the connection must be dropped.
//
// Thread: the socket's owner.
class MsgReader {
 public:
  MsgReader(uint32_t max_size, uint32_t max_fds) : max_size_(max_size), max_fds_(max_fds) {}

  // Reads from `sock` (any mode: every call uses MSG_DONTWAIT) until one
  // message is complete (returns true, `out` holds it) or the socket has no
  // more bytes for now (returns false; call again when it is readable).
  // Reads never go past the end of the current message, so nothing of the
  // next one is consumed. Errors: kIo "closed" (is_eof(): EOF between
  // messages), kIo (EOF inside a message, socket error), kProtocol (bad
  // msg_size, too many fds, truncated control data).
  Result<bool> read(int sock, Message& out);

  // Bytes of the message being received (0 between messages).
  size_t partial_bytes() const { return got_; }
  // Forgets a partial message (closes its fds).
  void reset();

 private:
  Status recv_some(int sock, uint8_t* p, size_t len, size_t* n);

  const uint32_t max_size_, max_fds_;
  Message cur_;
  size_t got_ = 0;  // bytes of cur_ received: header first, then payload
};

// Sends header + the concatenation of parts, with fds attached. Sets
// hdr.msg_size. Errors: kIo.
Status send_message(int sock, Header hdr, std::span<const std::span<const uint8_t>> parts,
                    std::span<const int> fds = {});

// True when the peer closed (EOF) — distinguishes a clean disconnect.
bool is_eof(const Error& e);

}  // namespace vdpu::vfio_user
