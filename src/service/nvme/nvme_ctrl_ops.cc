// NVMe manager: controller operations beyond create/destroy (spec
// snap-storage §6.6, §9) and the legacy function attach (§4.3).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "nvme/spec.h"
#include "service/nvme/nvme_manager.h"

namespace vdpu::service::nvme {

void Manager::controller_modify(const std::optional<std::string>& ctrl_opt,
                                std::optional<uint32_t> num_queues, std::optional<uint32_t> num_msix,
                                Done done) {
  std::string ctrl;
  if (ctrl_opt) {
    ctrl = *ctrl_opt;
  } else if (ctrls_.size() == 1) {
    ctrl = ctrls_.begin()->first;
  } else {
    return done(make_error(Errc::kInvalidArgument, "give ctrl (more than one controller exists)"));
  }
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Ctrl* c = *cr;
  if (!num_queues && !num_msix)
    return done(make_error(Errc::kInvalidArgument, "nothing to modify: give num_queues or num_msix"));
  if (num_queues && (*num_queues < 1 || *num_queues > nv::kMaxIoQueues))
    return done(make_error(Errc::kInvalidArgument, "num_queues must be 1-31"));
  // §6.6: only while the function is idle (no driver: CC.EN = 0).
  if (c->ctrl->state() != nv::CtrlState::kDisabled)
    return done(make_error(Errc::kState, "controller " + ctrl + " is in use by a host driver (CC.EN=1)"));
  emu::Function& fn = *c->fn;
  if (num_msix) {
    if (!fn.is_vf())
      return done(make_error(Errc::kInvalidArgument, "num_msix is valid on a VF controller only"));
    if (c->ep->connected())
      return done(make_error(Errc::kBusy, "function " + fn.vuid + " has a connected host: its MSI-X "
                                          "table size cannot change under it"));
    // §9 validation: range and availability in the PF pool.
    Status st = emu_.take_vf_resources(fn, *num_msix, num_queues.value_or(c->params.num_queues));
    if (!st) return done(st);
  }
  CtrlParams np = c->params;
  if (num_queues) np.num_queues = *num_queues;
  if (num_msix) np.vf_num_msix = *num_msix;
  uint16_t msix = uint16_t(std::min<uint32_t>(num_msix.value_or(c->num_msix), 256));
  Subsys* s = find_subsys(c->nqn);
  // The options of an nvme::Controller are fixed: build a new one (created
  // suspended) and move the namespaces over.
  auto nc = make_controller(*s->s, np, ctrl, msix, true);
  if (!nc) return done(nc.error());
  auto holder = std::make_shared<std::unique_ptr<nv::Controller>>(std::move(*nc));
  c->busy = true;
  // Disabled: the suspend completes at once (or after a running reset).
  c->ctrl->suspend([this, ctrl, np, msix, holder, resize = bool(num_msix), done] {
    Ctrl* c = find_ctrl(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    std::vector<uint32_t> nsids;
    for (nv::Namespace* ns : c->ctrl->attached_namespaces()) nsids.push_back(ns->nsid());
    for (uint32_t id : nsids) (void)c->ctrl->detach_ns(id);
    for (uint32_t id : nsids)
      if (Status st = (*holder)->attach_ns(id); !st)
        VDPU_WARN("modify {}: namespace {}: {}", ctrl, id, st.error().message);
    c->ep->unbind();
    std::shared_ptr<nv::Controller> old(c->ctrl.release());
    c->ctrl = std::move(*holder);
    c->params = np;
    c->num_msix = msix;
    Status st;
    if (resize) {
      // A new MSI-X table size needs a new function; nobody is connected.
      bool plugged = c->ep->plugged();
      c->ep.reset();
      auto ep = make_endpoint(*c);
      if (!ep) {
        st = ep.error();
      } else {
        c->ep = std::move(*ep);
        if (Status b = c->ep->bind(c->ctrl.get()); !b) st = b;
        else if (plugged) st = c->ep->plug(c->fn->socket);
      }
    } else {
      st = c->ep->bind(c->ctrl.get());
    }
    if (!c->user_suspended) c->ctrl->resume();
    c->busy = false;
    // The old controller has no queues (disabled): free it on a fresh turn.
    old->destroy([this, old] { env_.post(nv::kMainReactor, [old] {}); });
    VDPU_INFO("NVMe controller {} modified ({} I/O queues, {} MSI-X)", ctrl, np.num_queues, msix);
    done(st);
  });
}

Status Manager::controller_vfs_msix_reclaim(const std::string& ctrl) {
  auto cr = get(ctrl);
  if (!cr) return cr.error();
  Ctrl* c = *cr;
  if (c->fn->is_vf())
    return make_error(Errc::kInvalidArgument, "vfs_msix_reclaim is valid on a PF controller only (§9)");
  // §9: only while no VF is enabled (sriov_numvfs = 0) — checked by emu.
  return emu_.reclaim_vfs_msix(*c->fn);
}

Result<json> Manager::controller_io_stats(const std::string& ctrl) const {
  auto cr = get(ctrl, false);
  if (!cr) return cr.error();
  json s = (*cr)->ctrl->io_stats();
  // Same shape as virtio_blk_controller_dbg_io_stats_get (§6.6) plus the
  // NVMe byte counters; totals are the sum over queues.
  json qs = json::array();
  uint64_t r = 0, w = 0, f = 0, rb = 0, wb = 0, e = 0;
  for (auto& q : s["queues"]) {
    json j = q;
    j["queue_id"] = q["qid"];
    j["read_io_count"] = q["read_ios"];
    j["write_io_count"] = q["write_ios"];
    j["flush_io_count"] = q["flush_ios"];
    r += q.value("read_ios", uint64_t(0));
    w += q.value("write_ios", uint64_t(0));
    f += q.value("flush_ios", uint64_t(0));
    rb += q.value("read_bytes", uint64_t(0));
    wb += q.value("write_bytes", uint64_t(0));
    e += q.value("errors", uint64_t(0));
    qs.push_back(std::move(j));
  }
  return json{{"ctrl_id", ctrl},       {"queues", qs},        {"read_io_count", r},
              {"write_io_count", w},   {"flush_io_count", f}, {"read_bytes", rb},
              {"write_bytes", wb},     {"io_errors", e}};
}

Status Manager::controller_snapshot_get(const std::string& ctrl, const std::string& file) const {
  auto cr = get(ctrl);
  if (!cr) return cr.error();
  const Ctrl& c = **cr;
  // §6.6: call only while suspended.
  if (!c.ctrl->suspended())
    return make_error(Errc::kState, "controller " + ctrl + " must be suspended for a snapshot");
  json ns = json::array();
  for (nv::Namespace* n : c.ctrl->attached_namespaces())
    ns.push_back({{"nsid", n->nsid()}, {"bdev", n->bdev_name()}, {"uuid", n->uuid_str()}});
  nv::Controller& k = *c.ctrl;
  json regs = {{"cap", k.mmio_read(nv::kRegCap, 8)},   {"vs", k.mmio_read(nv::kRegVs, 4)},
               {"cc", k.mmio_read(nv::kRegCc, 4)},     {"csts", k.mmio_read(nv::kRegCsts, 4)},
               {"aqa", k.mmio_read(nv::kRegAqa, 4)},   {"asq", k.mmio_read(nv::kRegAsq, 8)},
               {"acq", k.mmio_read(nv::kRegAcq, 8)}};
  json j = {{"version", 1},
            {"ctrl_id", ctrl},
            {"vuid", c.fn->vuid},
            {"params", c.params.to_json(c.fn->vuid, ctrl)},
            {"namespaces", ns},
            {"registers", regs},
            {"state", nv::ctrl_state_name(k.state())}};
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return make_error(Errc::kIo, "cannot write " + tmp);
    out << j.dump(2) << "\n";
    if (!out.flush()) return make_error(Errc::kIo, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) return make_error(Errc::kIo, "cannot rename to " + file);
  return {};
}

Result<CtrlParams> load_snapshot(const std::string& file) {
  std::ifstream in(file);
  if (!in) return make_error(Errc::kNotFound, "snapshot file " + file + " not found");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("params") || !j["params"].is_object())
    return make_error(Errc::kInvalidArgument, "snapshot file " + file + " is malformed");
  return parse_ctrl_params(j["params"]);
}

void Manager::with_suspended(const std::string& ctrl, std::function<Status(Ctrl&)> fn, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Ctrl* c = *cr;
  if (c->ctrl->suspended()) return done(fn(*c));
  c->busy = true;
  c->ctrl->suspend([this, ctrl, fn, done] {
    Ctrl* c = find_ctrl(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    Status st = fn(*c);
    c->busy = false;
    if (!c->user_suspended) c->ctrl->resume();
    done(st);
  });
}

// ------------------------------------------------------------ legacy (§4.3)

Result<json> Manager::emulation_device_attach(uint32_t num_msix) {
  auto f = emu_.create_hotplug(emu::EmuType::kNvme);
  if (!f) return f.error();
  if (num_msix) (*f)->num_msix = num_msix;
  // Legacy attach creates and exposes at once; the socket appears with the
  // controller (a function without one is faulty, §1.4).
  emu_.set_state(**f, emu::HotplugState::kPowerOn);
  return json{{"vuid", (*f)->vuid}, {"vhca_id", (*f)->vhca_id}};
}

}  // namespace vdpu::service::nvme
