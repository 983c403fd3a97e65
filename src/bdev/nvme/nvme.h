// NVMe-oF/TCP initiator bdev (SPDK's bdev_nvme for trtype tcp).
//
// bdev_nvme_attach_controller connects to a remote NVMe/TCP subsystem: an
// admin queue (ICReq/ICResp, Connect, Property Get/Set to enable the
// controller, Identify, Set Features Number of Queues, Keep Alive at the
// negotiated KATO) and one I/O queue per reactor that opens a channel on one
// of its bdevs (a TCP connection each, polled on that reactor). Every active
// namespace becomes a bdev "<name>n<nsid>".
//
// When the target goes away the controller reconnects every
// reconnect_delay_sec; I/O is queued meanwhile, failed after
// fast_io_fail_timeout_sec (if not 0), and the controller with its bdevs is
// deleted after ctrlr_loss_timeout_sec (-1: never).
//
// Threads: every function here runs on the main (control-plane) reactor.
// Each controller has a control thread of its own for the blocking admin
// work (connect, keep-alive, reconnect); the data path never blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::bdev::nvme {

using json = nlohmann::json;

inline constexpr const char* kModule = "nvme";

// bdev_nvme_set_options (start-up defaults for later attaches).
struct GlobalOptions {
  uint32_t keep_alive_timeout_ms = 10000;  // 0: no keep-alive
  uint32_t io_queue_requests = 0;          // 0: the queue depth (128, capped by CAP.MQES)
  int32_t ctrlr_loss_timeout_sec = 0;
  uint32_t reconnect_delay_sec = 0;
  uint32_t fast_io_fail_timeout_sec = 0;
  uint32_t transport_ack_timeout = 0;
  uint64_t timeout_us = 0, timeout_admin_us = 0;
  std::string action_on_timeout = "none";
  int32_t bdev_retry_count = 3;
  uint32_t transport_retry_count = 4;
  uint64_t nvme_adminq_poll_period_us = 10000, nvme_ioq_poll_period_us = 0;
  bool delay_cmd_submit = true;
  uint32_t tcp_connect_timeout_ms = 0;  // 0: 10 s
};
GlobalOptions& global_options();
json global_options_json();

// bdev_nvme_attach_controller.
struct AttachOptions {
  std::string name;
  std::string trtype = "tcp";
  std::string traddr;
  std::string adrfam = "ipv4";
  std::string trsvcid = "4420";
  std::string subnqn = "nqn.2016-06.io.spdk:cnode1";
  std::string hostnqn;  // empty: nqn.2014-08.org.nvmexpress:uuid:<uuid>
  std::string hostaddr, hostsvcid;
  bool hdgst = false, ddgst = false;
  uint32_t num_io_queues = 1024;  // asked of the controller (Set Features)
  uint32_t io_queue_depth = 128;  // per I/O queue (capped by CAP.MQES+1)
  int32_t ctrlr_loss_timeout_sec = 0;
  uint32_t reconnect_delay_sec = 0;
  uint32_t fast_io_fail_timeout_sec = 0;
  uint64_t fabrics_timeout_us = 0;  // connect / admin command timeout; 0: 10 s
  uint32_t keep_alive_timeout_ms = 10000;
};

// Validates the reconnect triple as SPDK does (bdev_nvme_check_io_error /
// ctrlr loss rules). Errors: kInvalidArgument naming the rule.
Status check_reconnect_opts(int32_t ctrlr_loss_timeout_sec, uint32_t reconnect_delay_sec,
                            uint32_t fast_io_fail_timeout_sec);

// Connects and creates the bdevs; done receives the bdev names or an error
// (kExists duplicate name, kIo unreachable target, kPermission/kProtocol
// Connect refused with its status, kTimeout ...). Main reactor; done runs
// there too.
void attach(const AttachOptions& o, std::function<void(Result<std::vector<std::string>>)> done);

// Removes the bdevs (hot remove), closes every queue and deletes the
// controller. kNotFound when there is none by that name. Main reactor.
Status detach(const std::string& name, std::function<void()> done);

// bdev_nvme_get_controllers entries (all, or the one named; null if none).
json controllers_json(const std::string& name = "");

// Detaches every controller (shutdown), calling done at the end.
void detach_all(std::function<void()> done);

}  // namespace vdpu::bdev::nvme
