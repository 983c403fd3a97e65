// High availability (virtio-net spec §11; software mapping: the HA process
// keeps the critical resources and restarts the emulation process).
//
// `vdpu-virtnet` runs as two processes, like virtio_net_controller with
// virtio_net_emu + virtio_net_ha:
//  - the supervisor (this file): forks + execs the worker with one end of a
//    SOCK_SEQPACKET socketpair (`--worker --ha-fd N`), holds one detached
//    queue fd of every TAP representor the worker creates (so a representor
//    — with its bridge port, addresses and ifindex — survives a worker
//    crash or restart), and restarts the worker when it dies, when it asks
//    for a fast restart (`virtnet restart`, §4.11) or a live update
//    (`virtnet update -s`, §4.10: the binary is exec'd again from disk, so a
//    newly installed version takes over);
//  - the worker (worker.cc): the controller itself. It restores its devices
//    from the recovery files (§13) at every start, re-listens on the same
//    vhost-user sockets (front-ends with reconnect come back) and re-attaches
//    to the held TAPs.
//
// The link carries one request per datagram from the worker and one reply
// per request from the supervisor:
//   "hold <ifname>" / "release <ifname>" / "ready" / "restart" / "update" /
//   "update-status"  ->  "ok" | "err <reason>" | JSON (update-status)
//
// Threads: the supervisor is single-threaded; HaLink is used on the
// worker's main reactor (blocking calls with a short timeout).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::virtnet_app {

// Runs the supervisor until the worker exits for good; returns the exit code.
// worker_args: argv for the worker (without the program), exe: the binary.
int run_supervisor(const std::string& exe, const std::vector<std::string>& worker_args);

// The worker's end of the link.
class HaLink {
 public:
  explicit HaLink(int fd) : fd_(fd) {}
  bool active() const { return fd_ >= 0; }
  // Sends a request and waits (up to timeout_s) for the reply.
  // Errors: kIo (link closed), kTimeout, kState (no supervisor).
  Result<std::string> call(const std::string& req, double timeout_s = 5.0);

 private:
  int fd_;
};

}  // namespace vdpu::virtnet_app
