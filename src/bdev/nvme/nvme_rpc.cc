// JSON-RPC methods of the nvme bdev (SPDK's bdev_nvme_attach_controller,
// bdev_nvme_detach_controller, bdev_nvme_get_controllers,
// bdev_nvme_set_options). Types and ranges are checked by the server from
// src/rpc/schema/bdev_nvme.json; the handlers check the rest.
#include <cctype>

#include "bdev/bdev.h"
#include "bdev/nvme/nvme.h"
#include "rpc/rpc.h"

namespace vdpu::bdev::nvme {
namespace {

using rpc::json;
using rpc::Responder;

std::string str(const json& p, const char* k, std::string def = "") {
  return p.contains(k) ? p[k].get<std::string>() : def;
}

void bdev_nvme_attach_controller(const json& p, Responder r) {
  const GlobalOptions& g = global_options();
  AttachOptions o;
  o.name = str(p, "name");
  o.trtype = str(p, "trtype");
  o.traddr = str(p, "traddr");
  o.adrfam = str(p, "adrfam", "ipv4");
  o.trsvcid = str(p, "trsvcid", "4420");
  o.subnqn = str(p, "subnqn", "nqn.2016-06.io.spdk:cnode1");
  o.hostnqn = str(p, "hostnqn");
  o.hostaddr = str(p, "hostaddr");
  o.hostsvcid = str(p, "hostsvcid");
  o.hdgst = p.value("hdgst", false);
  o.ddgst = p.value("ddgst", false);
  o.keep_alive_timeout_ms = g.keep_alive_timeout_ms;
  o.ctrlr_loss_timeout_sec =
      int32_t(p.value("ctrlr_loss_timeout_sec", int64_t(g.ctrlr_loss_timeout_sec)));
  o.reconnect_delay_sec = uint32_t(p.value("reconnect_delay_sec", uint64_t(g.reconnect_delay_sec)));
  o.fast_io_fail_timeout_sec =
      uint32_t(p.value("fast_io_fail_timeout_sec", uint64_t(g.fast_io_fail_timeout_sec)));
  if (p.contains("num_io_queues")) o.num_io_queues = uint32_t(p["num_io_queues"].get<uint64_t>());
  if (g.io_queue_requests) o.io_queue_depth = g.io_queue_requests;
  if (p.contains("io_queue_requests"))
    o.io_queue_depth = uint32_t(p["io_queue_requests"].get<uint64_t>());
  if (p.contains("fabrics_timeout")) o.fabrics_timeout_us = p["fabrics_timeout"].get<uint64_t>();
  if (p.value("prchk_reftag", false) || p.value("prchk_guard", false))
    return r.error(rpc::kInvalidParams, "protection information checking is not supported");
  if (p.contains("psk"))
    return r.error(rpc::error_code(Errc::kUnsupported), "TLS (psk) is not supported");
  if (p.contains("multipath") && p["multipath"] != "disable")
    return r.error(
        rpc::error_code(Errc::kUnsupported),
        "multipath " + p["multipath"].get<std::string>() + " is not supported (only disable)");
  attach(o, [r](Result<std::vector<std::string>> res) mutable {
    if (!res) return r.error(res.error());
    r.result(json(*res));
  });
}
VDPU_RPC_REGISTER("bdev_nvme_attach_controller", bdev_nvme_attach_controller, rpc::kRuntime);

void bdev_nvme_detach_controller(const json& p, Responder r) {
  const std::string name = p.at("name").get<std::string>();
  // The optional trid fields select a path; there is one path per
  // controller, so they must match it.
  json c = controllers_json(name);
  if (!c.empty()) {
    const json& trid = c[0]["ctrlrs"][0]["trid"];
    const json& host = c[0]["ctrlrs"][0]["host"];
    auto differs = [&](const char* k, const json& v) {
      if (!p.contains(k)) return false;
      std::string a = p[k].get<std::string>(), b = v.get<std::string>();
      for (auto* s : {&a, &b})
        for (auto& ch : *s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      return a != b;
    };
    if (differs("trtype", trid["trtype"]) || differs("traddr", trid["traddr"]) ||
        differs("adrfam", trid["adrfam"]) || differs("trsvcid", trid["trsvcid"]) ||
        differs("subnqn", trid["subnqn"]) || differs("hostaddr", host["addr"]) ||
        differs("hostsvcid", host["svcid"]))
      return r.error(rpc::error_code(Errc::kNotFound),
                     "No path of controller " + name + " matches");
  }
  Status s = detach(name, [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("bdev_nvme_detach_controller", bdev_nvme_detach_controller, rpc::kRuntime);

void bdev_nvme_get_controllers(const json& p, Responder r) {
  std::string name = str(p, "name");
  json a = controllers_json(name);
  if (!name.empty() && a.empty())
    return r.error(rpc::error_code(Errc::kNotFound), "Controller " + name + " does not exist");
  r.result(a);
}
VDPU_RPC_REGISTER("bdev_nvme_get_controllers", bdev_nvme_get_controllers, rpc::kRuntime);

void bdev_nvme_set_options(const json& p, Responder r) {
  if (!controllers_json().empty())
    return r.error(rpc::error_code(Errc::kPermission),
                   "RPC not permitted with nvme controllers already attached");
  GlobalOptions g = global_options();
  if (p.contains("action_on_timeout"))
    g.action_on_timeout = p["action_on_timeout"].get<std::string>();
  if (p.contains("timeout_us")) g.timeout_us = p["timeout_us"].get<uint64_t>();
  if (p.contains("timeout_admin_us")) g.timeout_admin_us = p["timeout_admin_us"].get<uint64_t>();
  if (p.contains("keep_alive_timeout_ms"))
    g.keep_alive_timeout_ms = uint32_t(p["keep_alive_timeout_ms"].get<uint64_t>());
  if (p.contains("retry_count"))
    g.transport_retry_count = uint32_t(p["retry_count"].get<uint64_t>());
  if (p.contains("transport_retry_count"))
    g.transport_retry_count = uint32_t(p["transport_retry_count"].get<uint64_t>());
  if (p.contains("bdev_retry_count"))
    g.bdev_retry_count = int32_t(p["bdev_retry_count"].get<int64_t>());
  if (p.contains("nvme_adminq_poll_period_us"))
    g.nvme_adminq_poll_period_us = p["nvme_adminq_poll_period_us"].get<uint64_t>();
  if (p.contains("nvme_ioq_poll_period_us"))
    g.nvme_ioq_poll_period_us = p["nvme_ioq_poll_period_us"].get<uint64_t>();
  if (p.contains("io_queue_requests"))
    g.io_queue_requests = uint32_t(p["io_queue_requests"].get<uint64_t>());
  if (p.contains("delay_cmd_submit")) g.delay_cmd_submit = p["delay_cmd_submit"].get<bool>();
  if (p.contains("transport_ack_timeout"))
    g.transport_ack_timeout = uint32_t(p["transport_ack_timeout"].get<uint64_t>());
  if (p.contains("ctrlr_loss_timeout_sec"))
    g.ctrlr_loss_timeout_sec = int32_t(p["ctrlr_loss_timeout_sec"].get<int64_t>());
  if (p.contains("reconnect_delay_sec"))
    g.reconnect_delay_sec = uint32_t(p["reconnect_delay_sec"].get<uint64_t>());
  if (p.contains("fast_io_fail_timeout_sec"))
    g.fast_io_fail_timeout_sec = uint32_t(p["fast_io_fail_timeout_sec"].get<uint64_t>());
  if (p.contains("tcp_connect_timeout_ms"))
    g.tcp_connect_timeout_ms = uint32_t(p["tcp_connect_timeout_ms"].get<uint64_t>());
  if (g.timeout_admin_us && !g.timeout_us)
    return r.error(rpc::kInvalidParams, "timeout_admin_us requires timeout_us");
  if (Status s = check_reconnect_opts(g.ctrlr_loss_timeout_sec, g.reconnect_delay_sec,
                                      g.fast_io_fail_timeout_sec);
      !s.ok())
    return r.error(s.error());
  global_options() = g;
  r.result(true);
}
VDPU_RPC_REGISTER("bdev_nvme_set_options", bdev_nvme_set_options, rpc::kAny);

struct Hooks {
  Hooks() {
    rpc::register_method_alias("construct_nvme_bdev", "bdev_nvme_attach_controller");
    rpc::register_method_alias("delete_nvme_controller", "bdev_nvme_detach_controller");
    rpc::register_method_alias("get_nvme_controllers", "bdev_nvme_get_controllers");
    rpc::register_method_alias("set_bdev_nvme_options", "bdev_nvme_set_options");
    // save_config: the options first, so that a replay sets them before
    // any bdev_nvme_attach_controller (which they would refuse after).
    Manager::register_module_config([] {
      return json{{"method", "bdev_nvme_set_options"}, {"params", global_options_json()}};
    });
    // Controllers go before the reactors stop: bdevs hot-removed, queues closed.
    rpc::register_shutdown_hook("bdev_nvme", [](rpc::DoneFn done) { detach_all(done); });
  }
} hooks;

}  // namespace
}  // namespace vdpu::bdev::nvme
