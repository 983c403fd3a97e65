#include "service/vblk/vblk_manager.h"

#include <fstream>
#include <sstream>

#include "base/log.h"
#include "bdev/bdev.h"
#include "runtime/reactor.h"

namespace vdpu::service::vblk {

using nlohmann::json;

Manager::Manager(emu::Manager& emu, BackendFactory factory)
    : emu_(emu), factory_(std::move(factory)) {}

Manager::~Manager() {
  // Shutdown: drop controllers without waiting (the process is exiting).
  for (auto& [n, c] : ctrls_) {
    c->be.reset();
    if (c->desc) c->desc->close();
    if (c->fn) emu_.unbind(*c->fn);
  }
}

Controller* Manager::find(const std::string& name) {
  auto it = ctrls_.find(name);
  return it == ctrls_.end() ? nullptr : it->second.get();
}

Result<Controller*> Manager::get(const std::string& ctrl, bool idle) {
  Controller* c = find(ctrl);
  if (!c) return make_error(Errc::kNotFound, "virtio-blk controller " + ctrl + " not found");
  if (idle && c->busy)
    return make_error(Errc::kBusy, "controller " + ctrl + " has an operation in progress");
  return c;
}

// The next free VblkCtrl<N>; the counter moves only when a controller is
// really created (see create()), so failed creates do not consume names.
std::string Manager::next_name() {
  for (uint32_t id = next_id_;; ++id) {
    std::string n = "VblkCtrl" + std::to_string(id);
    if (!find(n)) return n;
  }
}

Result<bdev::Desc*> Manager::open_bdev(const std::string& ctrl, const std::string& name) {
  auto& bm = bdev::Manager::get();
  // §5.1: the backend bdev MUST exist when the controller is created.
  if (!bm.find(name)) return make_error(Errc::kNotFound, "bdev " + name + " not found");
  auto d = bm.open(name, true, [this](bdev::Desc& d) { on_bdev_removed(d); });
  if (!d) return d.error();
  Status s = (*d)->claim("vblk " + ctrl);
  if (!s) {
    (*d)->close();
    return s.error();
  }
  return *d;
}

void Manager::on_bdev_removed(bdev::Desc& d) {
  for (auto& [n, c] : ctrls_) {
    if (c->desc != &d) continue;
    VDPU_WARN("bdev {} of controller {} was removed: controller detached and suspended",
              c->bdev_name, n);
    std::string name = n;
    c->suspended = true;
    c->busy = true;
    c->be->detach_bdev([this, name] {
      Controller* c = find(name);
      if (!c) return;
      c->busy = false;
      if (c->desc) c->desc->close();
      c->desc = nullptr;
      c->bdev_name.clear();
      changed();
    });
    return;
  }
}

void Manager::release_bdev(Controller& c, std::function<void()> done) {
  if (!c.desc && c.bdev_name.empty()) return done();
  std::string name = c.name;
  c.be->detach_bdev([this, name, done = std::move(done)] {
    if (Controller* c = find(name)) {
      if (c->desc) c->desc->close();
      c->desc = nullptr;
      c->bdev_name.clear();
    }
    done();
  });
}

// ------------------------------------------------------------ create

Result<std::string> Manager::create(const CreateRequest& r) {
  auto fnr = emu_.select(emu::EmuType::kVblk, r.fn);
  if (!fnr) return fnr.error();
  emu::Function& fn = **fnr;
  std::string name = r.ctrl ? *r.ctrl : next_name();
  if (find(name)) return make_error(Errc::kExists, "controller " + name + " already exists");
  // §5.1 / §1.4: one controller per function.
  if (!fn.ctrl_id.empty())
    return make_error(Errc::kExists, "function " + fn.vuid + " already has controller " + fn.ctrl_id);
  CtrlConfig cfg = r.cfg;
  if (cfg.vf_num_msix && !fn.is_vf())
    return make_error(Errc::kInvalidArgument, "vf_num_msix is valid on a VF only (§5.3)");
  if (cfg.dynamic_msix && fn.is_vf())
    return make_error(Errc::kInvalidArgument, "dynamic_msix is valid on a PF only (§5.3)");
  if (cfg.dynamic_msix && fn.vfs.empty())
    return make_error(Errc::kInvalidArgument, "dynamic_msix: PF " + fn.vuid + " has no VFs");

  bdev::Desc* desc = nullptr;
  if (!r.bdev.empty()) {
    auto d = open_bdev(name, r.bdev);
    if (!d) return d.error();
    desc = *d;
  }
  bool took_msix = false;
  auto fail = [&](Error e) -> Result<std::string> {
    if (desc) desc->close();
    if (took_msix) emu_.release_vf_resources(fn);
    return e;
  };
  if (cfg.vf_num_msix) {
    Status s = emu_.take_vf_resources(fn, *cfg.vf_num_msix, cfg.num_queues);
    if (!s) return fail(s.error());
    took_msix = true;
  }
  cfg.num_msix = fn.num_msix;
  auto be = factory_(name, cfg, desc ? desc->bdev().name() : "", r.suspended);
  if (!be) return fail(be.error());
  auto c = std::make_unique<Controller>();
  c->name = name;
  c->fn = &fn;
  c->cfg = cfg;
  c->be = std::move(*be);
  c->bdev_name = desc ? desc->bdev().name() : "";
  c->desc = desc;
  c->user_suspended = r.suspended;
  c->suspended = r.suspended;
  if (fn.state == emu::HotplugState::kPowerOn) {
    Status s = c->be->plug(fn.socket);
    if (!s) {
      c->be.reset();
      return fail(s.error());
    }
  }
  (void)emu_.bind(fn, name);
  VDPU_INFO("virtio-blk controller {} created on {} (bdev {}, {} queues of {}{}{})", name, fn.vuid,
            c->bdev_name.empty() ? "none" : c->bdev_name, cfg.num_queues, cfg.queue_size,
            c->be->plugged() ? ", socket " + fn.socket : "", r.suspended ? ", suspended" : "");
  ctrls_.emplace(name, std::move(c));
  if (!r.ctrl)
    next_id_ = uint32_t(std::stoul(name.substr(8))) + 1;
  changed();
  return name;
}

// ------------------------------------------------------------ destroy

void Manager::destroy(const std::string& ctrl, bool force, bool release_msix, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  // §5.4: a VF controller in use by the host needs --force.
  if (c->fn->is_vf() && c->be->driver_bound() && !force)
    return done(make_error(Errc::kBusy, "VF controller " + ctrl +
                                            " is in use by a host driver: disable the VF "
                                            "(sriov_numvfs) or destroy with force"));
  if (c->fn->hotplugged && c->fn->state == emu::HotplugState::kPowerOn)
    VDPU_WARN("controller {} destroyed while function {} is exposed: the function is faulty "
              "until a new controller is created (§1.4)", ctrl, c->fn->vuid);
  c->busy = true;
  auto finish = [this, ctrl, release_msix, done = std::move(done)] {
    Controller* c = find(ctrl);
    if (!c) return done({});
    release_bdev(*c, [this, ctrl, release_msix, done] {
      Controller* c = find(ctrl);
      if (!c) return done({});
      if (release_msix) emu_.release_vf_resources(*c->fn);
      emu_.unbind(*c->fn);
      ctrls_.erase(ctrl);
      VDPU_INFO("virtio-blk controller {} destroyed", ctrl);
      changed();
      done({});
    });
  };
  if (c->be->plugged())
    c->be->unplug(std::move(finish));
  else
    finish();
}

// ------------------------------------------------------------ suspend/resume

void Manager::suspend(const std::string& ctrl, bool events_only, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  c->busy = true;
  c->be->suspend(events_only, [this, ctrl, done = std::move(done)](Status s) {
    Controller* c = find(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    c->busy = false;
    if (s) {
      c->suspended = c->user_suspended = true;
      VDPU_INFO("virtio-blk controller {} suspended", ctrl);
    }
    done(s);
  });
}

void Manager::resume(const std::string& ctrl, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  if (!c->suspended) return done(make_error(Errc::kState, "controller " + ctrl + " is not suspended"));
  // A refused resume changes nothing: a controller the user suspended stays
  // so through a later bdev_attach (§5.4).
  if (!c->desc && !c->bdev_name.empty())
    return done(make_error(Errc::kState, "controller " + ctrl + " has no bdev: attach one first"));
  c->user_suspended = false;
  c->busy = true;
  c->be->resume([this, ctrl, done = std::move(done)](Status s) {
    Controller* c = find(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    c->busy = false;
    if (s) {
      c->suspended = false;
      VDPU_INFO("virtio-blk controller {} resumed", ctrl);
    }
    done(s);
  });
}

// ------------------------------------------------------------ bdev attach/detach

void Manager::bdev_attach(const std::string& ctrl, const std::string& bdev_in,
                          const std::optional<std::string>& vblk_id, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  std::string bdev = bdev_in == "none" ? "" : bdev_in;
  if (c->desc)
    return done(make_error(Errc::kBusy, "controller " + ctrl + " already has bdev " + c->bdev_name +
                                            ": detach it first"));
  if (vblk_id && vblk_id->size() > 20)
    return done(make_error(Errc::kInvalidArgument, "vblk_id longer than 20 bytes"));
  bdev::Desc* desc = nullptr;
  if (!bdev.empty()) {
    auto d = open_bdev(ctrl, bdev);
    if (!d) return done(d.error());
    desc = *d;
  }
  std::string id = vblk_id ? *vblk_id : c->cfg.vblk_id;
  c->busy = true;
  // §5.4: attach resumes outstanding I/O (unless the user suspended it).
  bool stay = c->user_suspended;
  c->be->attach_bdev(desc, id, stay, [this, ctrl, desc, id, stay, done = std::move(done)](Status s) {
    Controller* c = find(ctrl);
    if (!c) {
      if (desc) desc->close();
      return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    }
    c->busy = false;
    if (!s) {
      if (desc) desc->close();
      return done(s);
    }
    c->desc = desc;
    c->bdev_name = desc ? desc->bdev().name() : "";
    c->cfg.vblk_id = id;
    c->suspended = stay;
    VDPU_INFO("controller {}: bdev {} attached", ctrl, c->bdev_name.empty() ? "none" : c->bdev_name);
    changed();
    done({});
  });
}

void Manager::bdev_detach(const std::string& ctrl, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  if (!c->desc) return done(make_error(Errc::kState, "controller " + ctrl + " has no bdev attached"));
  c->busy = true;
  // §5.4: the controller becomes suspended (in-flight requests finish).
  c->be->suspend(false, [this, ctrl, done = std::move(done)](Status s) {
    Controller* c = find(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
    if (!s) {
      c->busy = false;
      return done(s);
    }
    c->suspended = true;
    std::string old = c->bdev_name;
    release_bdev(*c, [this, ctrl, old, done] {
      if (Controller* c = find(ctrl)) c->busy = false;
      VDPU_INFO("controller {}: bdev {} detached (controller suspended)", ctrl, old);
      changed();
      done({});
    });
  });
}

// ------------------------------------------------------------ list / modify / stats

Result<json> Manager::list(const std::optional<std::string>& ctrl) {
  json a = json::array();
  for (auto& [n, c] : ctrls_) {
    if (ctrl && n != *ctrl) continue;
    const emu::Function& f = *c->fn;
    json j = {{"ctrl_id", n},
              {"vhca_id", f.vhca_id},
              {"vuid", f.vuid},
              {"pf_index", f.pf_index}};
    if (f.is_vf()) j["vf_index"] = f.vf_index;
    j["num_queues"] = c->cfg.num_queues;
    j["queue_size"] = c->cfg.queue_size;
    j["seg_max"] = c->cfg.seg_max;
    j["size_max"] = c->cfg.size_max;
    j["bdev"] = c->bdev_name.empty() ? "none" : c->bdev_name;
    j["plugged"] = c->be->plugged();
    j["suspended"] = c->suspended;
    j["indirect_desc"] = c->cfg.indirect_desc;
    j["read_only"] = c->cfg.read_only;
    j["force_in_order"] = c->cfg.force_in_order;
    j["admin_q"] = c->cfg.admin_q;
    j["dbg_local_optimized"] = c->cfg.dbg_local_optimized;
    j["live_update_listener"] = c->cfg.live_update_listener;
    j["vblk_id"] = c->cfg.vblk_id;
    j["num_msix"] = f.num_msix;
    const emu::MsixPool* pool = f.parent ? &f.parent->pool : nullptr;
    if (f.is_vf() && pool && pool->reclaimed) {
      j["min configurable num_msix"] = pool->vf_min_msix;
      j["max configurable num_msix"] = pool->vf_max_msix;
    } else {
      j["min configurable num_msix"] = f.num_msix;
      j["max configurable num_msix"] = f.num_msix;
    }
    if (!f.is_vf() && (c->cfg.dynamic_msix || f.pool.reclaimed)) {  // §9 PF pool fields
      j["free_msix"] = f.pool.free_msix;
      j["free_queues"] = f.pool.free_queues;
      j["vf_min_msix"] = f.pool.vf_min_msix;
      j["vf_max_msix"] = f.pool.vf_max_msix;
      j["vf_min_queues"] = f.pool.vf_min_queues;
      j["vf_max_queues"] = f.pool.vf_max_queues;
    }
    j["socket"] = f.socket;
    a.push_back(std::move(j));
  }
  if (ctrl && a.empty()) return make_error(Errc::kNotFound, "virtio-blk controller " + *ctrl + " not found");
  return a;
}

void Manager::modify(const std::optional<std::string>& ctrl, std::optional<uint64_t> num_queues,
                     std::optional<uint64_t> num_msix, Done done) {
  // §5.4 (*): a modify that identifies no controller MUST be rejected.
  if (!ctrl) return done(make_error(Errc::kInvalidArgument, "ctrl is required"));
  auto cr = get(*ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  if (!num_queues && !num_msix) return done(make_error(Errc::kInvalidArgument, "nothing to modify"));
  // §5.4: only while the function is idle (no driver).
  if (c->be->driver_bound())
    return done(make_error(Errc::kBusy, "controller " + *ctrl +
                                            " is in use by a host driver: unload it first"));
  if (num_queues) {
    Status s = check_num_queues(*num_queues);
    if (!s) return done(s);
  }
  if (num_msix) {
    if (!c->fn->is_vf())
      return done(make_error(Errc::kInvalidArgument, "num_msix can be modified on a VF controller only"));
    Status s = emu_.take_vf_resources(*c->fn, uint32_t(*num_msix),
                                      uint32_t(num_queues.value_or(c->cfg.num_queues)));
    if (!s) return done(s);
    c->cfg.vf_num_msix = uint32_t(*num_msix);
    c->cfg.num_msix = uint32_t(*num_msix);
  }
  if (!num_queues || *num_queues == c->cfg.num_queues) {
    changed();
    return done({});
  }
  c->busy = true;
  uint16_t n = uint16_t(*num_queues);
  std::string name = *ctrl;
  c->be->set_num_queues(n, [this, name, n, done = std::move(done)](Status s) {
    Controller* c = find(name);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + name + " vanished"));
    c->busy = false;
    if (s) {
      c->cfg.num_queues = n;
      changed();
    }
    done(s);
  });
}

Result<json> Manager::io_stats(const std::string& ctrl) {
  auto cr = get(ctrl, false);
  if (!cr) return cr.error();
  json q = (*cr)->be->io_stats();
  uint64_t r = 0, w = 0, f = 0;
  for (auto& e : q) {
    r += e.value("read_io_count", uint64_t(0));
    w += e.value("write_io_count", uint64_t(0));
    f += e.value("flush_io_count", uint64_t(0));
  }
  // §5.4: totals MUST equal the sum over queues.
  return json{{"ctrl_id", ctrl}, {"queues", q}, {"read_io_count", r}, {"write_io_count", w},
              {"flush_io_count", f}};
}

void Manager::debug_stats(const std::string& ctrl, std::function<void(Result<json>)> done) {
  auto cr = get(ctrl, false);
  if (!cr) return done(cr.error());
  (*cr)->be->debug_stats([ctrl, done = std::move(done)](json q) {
    done(json{{"ctrl_id", ctrl}, {"queues", std::move(q)}});
  });
}

// ------------------------------------------------------------ state save/restore

void Manager::state_save(const std::string& ctrl, const std::string& file, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  if (!c->suspended)
    return done(make_error(Errc::kState, "controller " + ctrl + " must be suspended to save its state"));
  json j = {{"version", 1},
            {"ctrl", ctrl},
            {"vuid", c->fn->vuid},
            {"num_queues", c->cfg.num_queues},
            {"queue_size", c->cfg.queue_size},
            {"bdev", c->bdev_name}};
  c->be->save_state([j = std::move(j), file, done = std::move(done)](Result<json> q) mutable {
    if (!q) return done(q.error());
    j["queues"] = std::move(*q);
    std::ofstream f(file, std::ios::trunc);
    if (!f) return done(make_error(Errc::kIo, "cannot write " + file));
    f << j.dump(2) << "\n";
    f.close();  // flushed before the reply: the caller may read it at once
    if (!f) return done(make_error(Errc::kIo, "cannot write " + file));
    done({});
  });
}

// §5.4: restore the state of a suspended controller: the device continues
// from the saved ring positions (and redoes what was in flight) on resume.
void Manager::state_restore(const std::string& ctrl, const std::string& file, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  if (!c->suspended)
    return done(make_error(Errc::kState, "controller " + ctrl + " must be suspended to restore its state"));
  std::ifstream f(file);
  if (!f) return done(make_error(Errc::kNotFound, "cannot read " + file));
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1 || !j.contains("queues") ||
      !j["queues"].is_array())
    return done(make_error(Errc::kInvalidArgument, file + " is not a virtio-blk controller state file"));
  if (j.value("num_queues", 0) != c->cfg.num_queues || j.value("queue_size", 0) != c->cfg.queue_size)
    return done(make_error(Errc::kInvalidArgument,
                           "state in " + file + " was saved with a different num_queues/queue_size"));
  c->busy = true;
  c->be->restore_state(j["queues"], [this, ctrl, file, done = std::move(done)](Status s) {
    if (Controller* c = find(ctrl)) c->busy = false;
    if (!s) return done(make_error(s.error().code, file + ": " + s.error().message));
    VDPU_INFO("controller {}: state restored from {}", ctrl, file);
    done({});
  });
}

Status Manager::vfs_msix_reclaim(const std::string& ctrl) {
  auto cr = get(ctrl);
  if (!cr) return cr.error();
  Controller* c = *cr;
  if (c->fn->is_vf())
    return make_error(Errc::kInvalidArgument, "vfs_msix_reclaim is valid on a PF controller only");
  return emu_.reclaim_vfs_msix(*c->fn);
}

// ------------------------------------------------------------ hotplug (§4.2)

Result<json> Manager::function_create() {
  auto f = emu_.create_hotplug(emu::EmuType::kVblk);
  if (!f) return f.error();
  return json{{"vhca_id", (*f)->vhca_id}, {"vuid", (*f)->vuid}};
}

Status Manager::function_destroy(const std::string& vuid) {
  emu::Function* f = emu_.find_vuid(vuid);
  if (!f) return make_error(Errc::kNotFound, "no emulation function with vuid " + vuid);
  if (f->type != emu::EmuType::kVblk)
    return make_error(Errc::kInvalidArgument, "function " + vuid + " is not a virtio-blk function");
  if (!f->hotplugged)
    return make_error(Errc::kInvalidArgument, "function " + vuid + " is static, not a hotplug function");
  if (!f->ctrl_id.empty())
    return make_error(Errc::kBusy, "function " + vuid + " has controller " + f->ctrl_id + ": destroy it first");
  if (f->state != emu::HotplugState::kPowerOff)
    return make_error(Errc::kState, "function " + vuid + " is exposed to the host: hot-unplug it first");
  return emu_.destroy_hotplug(vuid);
}

void Manager::wait_connected(const std::string& ctrl, uint64_t deadline_ns, Done done) {
  Controller* c = find(ctrl);
  if (!c) return done(make_error(Errc::kNotFound, "controller " + ctrl + " vanished"));
  if (c->be->connected()) return done({});
  rt::Reactor* r = rt::this_reactor();
  if (!r || rt::now_ns() >= deadline_ns)
    return done(make_error(Errc::kTimeout, "function " + c->fn->vuid + " is plugged (socket " +
                                               c->fn->socket + ") but no host connected in time"));
  r->add_timer(10000, [this, ctrl, deadline_ns, done = std::move(done)] {
    wait_connected(ctrl, deadline_ns, done);
  });
}

void Manager::hotplug(const std::string& ctrl, bool wait, std::optional<uint64_t> timeout_ms, Done done) {
  // §4.2: a controller MUST exist on the function before hotplug.
  Controller* c = find(ctrl);
  if (!c)
    return done(make_error(Errc::kNotFound, "controller " + ctrl +
                                                " not found: create a controller on the function before hotplug"));
  if (c->busy) return done(make_error(Errc::kBusy, "controller " + ctrl + " has an operation in progress"));
  if (timeout_ms && !wait)
    return done(make_error(Errc::kInvalidArgument, "timeout is only valid with wait_for_done"));
  emu::Function& f = *c->fn;
  if (!f.hotplugged)
    return done(make_error(Errc::kInvalidArgument, "function " + f.vuid + " is static (always plugged)"));
  if (f.state == emu::HotplugState::kPowerOn || c->be->plugged())
    return done(make_error(Errc::kState, "function " + f.vuid + " is already plugged"));
  Status s = c->be->plug(f.socket);
  if (!s) return done(s);
  emu_.set_state(f, emu::HotplugState::kPowerOn);
  VDPU_INFO("function {} hot-plugged (controller {}, socket {})", f.vuid, ctrl, f.socket);
  if (!wait) return done({});
  uint64_t ms = timeout_ms.value_or(kDefaultHotplugTimeoutMs);
  wait_connected(ctrl, rt::now_ns() + ms * 1000000ull, std::move(done));
}

void Manager::hotunplug(const std::string& ctrl, bool wait, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Controller* c = *cr;
  emu::Function& f = *c->fn;
  if (!f.hotplugged)
    return done(make_error(Errc::kInvalidArgument, "function " + f.vuid + " is static: it cannot be unplugged"));
  if (f.state == emu::HotplugState::kPowerOff)
    return done(make_error(Errc::kState, "function " + f.vuid + " is not plugged"));
  c->busy = true;
  emu_.set_state(f, emu::HotplugState::kPowerOffPending);
  // Unplugging closes the host connection itself, so the host has let go of
  // the function once unplug completes (wait_for_done needs nothing more).
  c->be->unplug([this, ctrl, done = std::move(done)] {
    Controller* c = find(ctrl);
    if (!c) return done({});
    c->busy = false;
    emu_.set_state(*c->fn, emu::HotplugState::kPowerOff);
    VDPU_INFO("function {} hot-unplugged", c->fn->vuid);
    done({});
  });
}

// ------------------------------------------------------------ legacy (§4.3)

Result<json> Manager::device_attach(uint32_t num_msix) {
  auto f = emu_.create_hotplug(emu::EmuType::kVblk);
  if (!f) return f.error();
  if (num_msix) (*f)->num_msix = num_msix;
  // Legacy attach creates and exposes at once; the endpoint appears when
  // the controller is created (a function without one is faulty, §1.4).
  emu_.set_state(**f, emu::HotplugState::kPowerOn);
  return json{{"vuid", (*f)->vuid}, {"vhca_id", (*f)->vhca_id}};
}

void Manager::detach_prepare(const emu::Selector& sel, const std::optional<std::string>& ctrl, Done done) {
  emu::Function* f = nullptr;
  if (!sel.empty()) {
    emu::Function* by = sel.vuid ? emu_.find_vuid(*sel.vuid) : nullptr;
    if (!by && sel.vhca_id) by = emu_.find_vhca(*sel.vhca_id);
    if (!by) return done(make_error(Errc::kNotFound, "no such emulation function"));
    if (sel.vuid && sel.vhca_id && emu_.find_vhca(*sel.vhca_id) != by)
      return done(make_error(Errc::kInvalidArgument, "vuid and vhca_id designate different functions"));
    f = by;
  }
  if (ctrl) {
    Controller* c = find(*ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "controller " + *ctrl + " not found"));
    if (f && f != c->fn)
      return done(make_error(Errc::kInvalidArgument, "controller " + *ctrl + " is not on that function"));
    f = c->fn;
  }
  if (!f) return done(make_error(Errc::kInvalidArgument, "give vhca_id, vuid or ctrl"));
  if (!f->hotplugged)
    return done(make_error(Errc::kInvalidArgument, "function " + f->vuid + " is static, not hot-plugged"));
  // §4.3: the controller attached to the function MUST exist and be active.
  if (f->ctrl_id.empty())
    return done(make_error(Errc::kState, "function " + f->vuid + " has no controller"));
  if (f->state != emu::HotplugState::kPowerOn)
    return done(make_error(Errc::kState, "function " + f->vuid + " is not plugged"));
  Controller* c = find(f->ctrl_id);
  if (!c) {  // an NVMe (or other) controller: the state change is all we do here
    emu_.set_state(*f, emu::HotplugState::kPowerOffPending);
    return done({});
  }
  if (c->busy) return done(make_error(Errc::kBusy, "controller " + c->name + " has an operation in progress"));
  c->busy = true;
  emu_.set_state(*f, emu::HotplugState::kPowerOffPending);
  std::string name = c->name;
  c->be->unplug([this, name, done = std::move(done)] {
    if (Controller* c = find(name)) c->busy = false;
    done({});
  });
}

Status Manager::device_detach(const emu::Selector& sel, bool force) {
  emu::Function* f = sel.vuid ? emu_.find_vuid(*sel.vuid) : nullptr;
  if (!f && sel.vhca_id) f = emu_.find_vhca(*sel.vhca_id);
  if (sel.empty()) return make_error(Errc::kInvalidArgument, "give vhca_id or vuid");
  if (!f) return make_error(Errc::kNotFound, "no such emulation function");
  if (!f->hotplugged)
    return make_error(Errc::kInvalidArgument, "function " + f->vuid + " is static, not hot-plugged");
  if (!f->ctrl_id.empty())
    return make_error(Errc::kBusy, "function " + f->vuid + " still has controller " + f->ctrl_id +
                                       ": destroy it first");
  if (f->state == emu::HotplugState::kPowerOn && !force)
    return make_error(Errc::kState, "function " + f->vuid +
                                        " was not prepared (emulation_device_detach_prepare); use force");
  return emu_.destroy_hotplug(f->vuid, force);
}

void Manager::shutdown(std::function<void()> done) {
  on_change_ = nullptr;  // the saved configuration must survive a restart
  if (ctrls_.empty()) return done();
  std::string name = ctrls_.begin()->first;
  if (ctrls_.begin()->second->busy) {  // let the running operation finish first
    if (rt::Reactor* r = rt::this_reactor())
      return (void)r->add_timer(1000, [this, done = std::move(done)] { shutdown(done); });
  }
  destroy(name, true, false, [this, name, done = std::move(done)](Status s) {
    if (!s) {
      VDPU_WARN("shutdown: controller {}: {}", name, s.error().message);
      if (Controller* c = find(name)) {  // drop it anyway
        c->be.reset();
        if (c->desc) c->desc->close();
        emu_.unbind(*c->fn);
        ctrls_.erase(name);
      }
    }
    shutdown(done);
  });
}

// ------------------------------------------------------------ config

json Manager::write_config() const {
  json a = json::array();
  for (auto& [n, c] : ctrls_) {
    json p = {{"vuid", c->fn->vuid}, {"ctrl", n}, {"num_queues", c->cfg.num_queues},
              {"queue_size", c->cfg.queue_size}, {"size_max", c->cfg.size_max},
              {"seg_max", c->cfg.seg_max}};
    if (!c->bdev_name.empty()) p["bdev"] = c->bdev_name;
    if (!c->cfg.vblk_id.empty()) p["vblk_id"] = c->cfg.vblk_id;
    for (auto [k, v] : {std::pair{"read_only", c->cfg.read_only},
                        {"force_in_order", c->cfg.force_in_order},
                        {"indirect_desc", c->cfg.indirect_desc},
                        {"admin_q", c->cfg.admin_q},
                        {"dynamic_msix", c->cfg.dynamic_msix},
                        {"suspended", c->user_suspended}})
      if (v) p[k] = true;
    if (c->cfg.vf_num_msix) p["vf_num_msix"] = *c->cfg.vf_num_msix;
    a.push_back({{"method", "virtio_blk_controller_create"}, {"params", p}});
  }
  return a;
}

}  // namespace vdpu::service::vblk
