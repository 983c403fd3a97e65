// The nvme bdev module: the controller registry, one bdev per namespace and
// its channels (each bound to the I/O queue of its reactor).
#include "bdev/nvme/nvme.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>

#include "base/log.h"
#include "bdev/bdev.h"
#include "bdev/nvme/channel.h"
#include "bdev/nvme/ctrlr.h"
#include "runtime/runtime.h"

namespace vdpu::bdev::nvme {
namespace {

// Runs fn on the main reactor (inline when there is no runtime: tools).
void post_main(rt::Msg fn) {
  if (rt::Runtime* r = rt::Runtime::get())
    r->main().send_blocking(std::move(fn));
  else
    fn();
}

struct Entry {
  std::shared_ptr<Ctrlr> ctrlr;
  std::vector<std::string> bdevs;
  bool attaching = true;
  bool deleting = false;
};
// Main reactor only.
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> m;
  return m;
}

class NsChannel final : public NvmeChannel {
 public:
  NsChannel(Bdev& b, IoQpair* q, NsInfo ns) : NvmeChannel(b), q_(q), ns_(ns) {}

 protected:
  void do_submit(Io& io) noexcept override { q_->submit(io, *this, ns_); }

 private:
  IoQpair* q_;
  NsInfo ns_;
};

class NvmeBdev final : public Bdev {
 public:
  NvmeBdev(std::shared_ptr<Ctrlr> c, const NsData& ns, bool first)
      : Bdev(ns.bdev, kModule, 1u << ns.lba_shift, ns.num_blocks),
        c_(std::move(c)),
        ns_(ns),
        first_(first) {
    product_name_ = "NVMe disk";
    if (!ns.uuid.empty()) set_uuid(ns.uuid);
  }

  bool supports(IoType t) const override {
    switch (t) {
      case IoType::kRead:
      case IoType::kWrite:
      case IoType::kFlush:
        return true;
      case IoType::kUnmap:
        return c_->supports_dsm();
      case IoType::kWriteZeroes:
        return c_->supports_write_zeroes();
      default:
        return false;
    }
  }

  std::unique_ptr<Channel> create_channel() override {
    rt::Reactor* r = rt::this_reactor();
    if (!r) {
      VDPU_ERR("bdev {}: channels must be created on a reactor", name());
      return nullptr;
    }
    IoQpair* q = c_->qpair_for(r);
    if (!q) return nullptr;
    return std::make_unique<NsChannel>(*this, q, NsInfo{ns_.nsid, ns_.lba_shift});
  }

  json driver_specific() const override {
    json info = c_->info()["ctrlrs"][0];
    return {{"nvme", json::array({{{"trid", info["trid"]},
                                   {"ctrlr_data", {{"cntlid", c_->cntlid()}}},
                                   {"ns_data", {{"id", ns_.nsid}}}}})}};
  }

  json write_config() const override {
    if (!first_) return nullptr;  // one attach per controller
    const AttachOptions& o = c_->opts();
    json p = {{"name", o.name},
              {"trtype", "tcp"},
              {"traddr", o.traddr},
              {"adrfam", o.adrfam},
              {"trsvcid", o.trsvcid},
              {"subnqn", o.subnqn},
              {"hostnqn", c_->hostnqn()},
              {"hdgst", o.hdgst},
              {"ddgst", o.ddgst},
              {"num_io_queues", o.num_io_queues},
              {"ctrlr_loss_timeout_sec", o.ctrlr_loss_timeout_sec},
              {"reconnect_delay_sec", o.reconnect_delay_sec},
              {"fast_io_fail_timeout_sec", o.fast_io_fail_timeout_sec}};
    if (!o.hostaddr.empty()) p["hostaddr"] = o.hostaddr;
    if (!o.hostsvcid.empty()) p["hostsvcid"] = o.hostsvcid;
    return {{"method", "bdev_nvme_attach_controller"}, {"params", p}};
  }

 private:
  std::shared_ptr<Ctrlr> c_;
  NsData ns_;
  bool first_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// Removes the bdevs (hot remove), then the queues and the controller. st:
// what waiting I/O completes with. Main reactor.
void remove_ctrlr(const std::string& name, IoStatus st, std::function<void()> done) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    if (done) done();
    return;
  }
  Entry& e = it->second;
  e.deleting = true;
  auto c = e.ctrlr;
  if (st == IoStatus::kFailed) c->shutdown_qpairs(st);  // loss: fail now, not at removal
  auto left = std::make_shared<size_t>(0);
  auto finish = [name, c, st, done] {
    c->stop_thread();
    c->shutdown_qpairs(st);
    c->free_qpairs();
    registry().erase(name);
    VDPU_INFO("nvme {}: controller removed", name);
    if (done) done();
  };
  std::vector<std::string> present;
  for (auto& b : e.bdevs)
    if (Manager::get().find(b)) present.push_back(b);
  if (present.empty()) return finish();
  *left = present.size();
  for (auto& b : present)
    Manager::get().hot_remove(b, [left, finish] {
      if (--*left == 0) finish();
    });
}

}  // namespace

GlobalOptions& global_options() {
  static GlobalOptions g;
  return g;
}

json global_options_json() {
  const GlobalOptions& g = global_options();
  return {{"action_on_timeout", g.action_on_timeout},
          {"timeout_us", g.timeout_us},
          {"timeout_admin_us", g.timeout_admin_us},
          {"keep_alive_timeout_ms", g.keep_alive_timeout_ms},
          {"transport_retry_count", g.transport_retry_count},
          {"bdev_retry_count", g.bdev_retry_count},
          {"nvme_adminq_poll_period_us", g.nvme_adminq_poll_period_us},
          {"nvme_ioq_poll_period_us", g.nvme_ioq_poll_period_us},
          {"io_queue_requests", g.io_queue_requests},
          {"delay_cmd_submit", g.delay_cmd_submit},
          {"transport_ack_timeout", g.transport_ack_timeout},
          {"ctrlr_loss_timeout_sec", g.ctrlr_loss_timeout_sec},
          {"reconnect_delay_sec", g.reconnect_delay_sec},
          {"fast_io_fail_timeout_sec", g.fast_io_fail_timeout_sec},
          {"tcp_connect_timeout_ms", g.tcp_connect_timeout_ms}};
}

Status check_reconnect_opts(int32_t loss, uint32_t delay, uint32_t fast) {
  auto bad = [](const char* m) { return make_error(Errc::kInvalidArgument, m); };
  if (loss < -1) return bad("ctrlr_loss_timeout_sec can't be less than -1");
  if (loss == -1) {
    if (delay == 0) return bad("reconnect_delay_sec can't be 0 if ctrlr_loss_timeout_sec is -1");
    if (fast != 0 && fast < delay)
      return bad("reconnect_delay_sec can't be more than fast_io_fail_timeout_sec");
  } else if (loss == 0) {
    if (delay != 0) return bad("reconnect_delay_sec must be 0 if ctrlr_loss_timeout_sec is 0");
    if (fast != 0) return bad("fast_io_fail_timeout_sec must be 0 if ctrlr_loss_timeout_sec is 0");
  } else {
    if (delay == 0) return bad("reconnect_delay_sec can't be 0 if ctrlr_loss_timeout_sec is not 0");
    if (delay > uint32_t(loss))
      return bad("reconnect_delay_sec can't be more than ctrlr_loss_timeout_sec");
    if (fast != 0) {
      if (fast > uint32_t(loss))
        return bad("fast_io_fail_timeout_sec can't be more than ctrlr_loss_timeout_sec");
      if (delay > fast)
        return bad("reconnect_delay_sec can't be more than fast_io_fail_timeout_sec");
    }
  }
  return {};
}

void attach(const AttachOptions& in, std::function<void(Result<std::vector<std::string>>)> done) {
  AttachOptions o = in;
  auto fail = [&](Errc c, const std::string& m) { done(make_error(c, m)); };
  if (o.name.empty()) return fail(Errc::kInvalidArgument, "controller name must not be empty");
  std::string tr = lower(o.trtype);
  if (tr == "rdma" || tr == "pcie" || tr == "fc")
    return fail(Errc::kUnsupported, "trtype " + o.trtype + " is not supported (only tcp)");
  if (tr != "tcp" && tr != "nvda_tcp")
    return fail(Errc::kInvalidArgument, "unknown trtype " + o.trtype);
  o.trtype = "tcp";
  o.adrfam = lower(o.adrfam.empty() ? "ipv4" : o.adrfam);
  if (o.adrfam != "ipv4" && o.adrfam != "ipv6")
    return fail(Errc::kInvalidArgument,
                "adrfam " + in.adrfam + " is not valid for tcp (ipv4 or ipv6)");
  if (o.traddr.empty()) return fail(Errc::kInvalidArgument, "traddr must not be empty");
  if (o.trsvcid.empty()) o.trsvcid = "4420";
  if (o.trsvcid.find_first_not_of("0123456789") != std::string::npos || o.trsvcid.size() > 5 ||
      std::stoul(o.trsvcid) == 0 || std::stoul(o.trsvcid) > 65535)
    return fail(Errc::kInvalidArgument, "trsvcid " + o.trsvcid + " is not a TCP port");
  if (o.subnqn.empty() || o.subnqn.size() > 223)
    return fail(Errc::kInvalidArgument, "subnqn must be 1..223 characters");
  if (o.hostnqn.size() > 223)
    return fail(Errc::kInvalidArgument, "hostnqn must be at most 223 characters");
  if (o.io_queue_depth == 0)
    return fail(Errc::kInvalidArgument, "io_queue_requests must be at least 1");
  if (o.num_io_queues == 0) return fail(Errc::kInvalidArgument, "num_io_queues must be at least 1");
  if (Status s = check_reconnect_opts(o.ctrlr_loss_timeout_sec, o.reconnect_delay_sec,
                                      o.fast_io_fail_timeout_sec);
      !s.ok())
    return done(s.error());
  if (registry().count(o.name))
    return fail(Errc::kExists, "A controller named " + o.name + " already exists");

  auto c = std::make_shared<Ctrlr>(o);
  registry()[o.name] = Entry{c, {}, true, false};
  const std::string name = o.name;
  c->on_lost = [name] { post_main([name] { remove_ctrlr(name, IoStatus::kFailed, nullptr); }); };
  c->start([c, name, done](Status st) {
    post_main([c, name, done, st] {
      auto it = registry().find(name);
      if (!st.ok()) {
        c->stop_thread();
        if (it != registry().end() && it->second.ctrlr == c) registry().erase(it);
        VDPU_ERR("bdev_nvme_attach_controller {}: {}", name, st.error().message);
        return done(st.error());
      }
      std::vector<std::string> names;
      auto ns = c->namespaces();
      for (size_t i = 0; i < ns.size(); ++i) {
        auto b = std::make_unique<NvmeBdev>(c, ns[i], i == 0);
        if (Status s = Manager::get().add(std::move(b)); !s.ok()) {
          VDPU_WARN("nvme {}: namespace {} not exposed: {}", name, ns[i].nsid, s.error().message);
          continue;
        }
        names.push_back(ns[i].bdev);
      }
      if (it != registry().end()) {
        it->second.bdevs = names;
        it->second.attaching = false;
      }
      done(names);
    });
  });
}

Status detach(const std::string& name, std::function<void()> done) {
  auto it = registry().find(name);
  if (it == registry().end()) return make_error(Errc::kNotFound, "No controller named " + name);
  if (it->second.attaching)
    return make_error(Errc::kBusy, "Controller " + name + " is still being attached");
  if (it->second.deleting)
    return make_error(Errc::kBusy, "Controller " + name + " is already being detached");
  remove_ctrlr(name, IoStatus::kAborted, std::move(done));
  return {};
}

json controllers_json(const std::string& name) {
  json a = json::array();
  for (auto& [n, e] : registry()) {
    if (!name.empty() && n != name) continue;
    if (e.attaching) continue;
    a.push_back(e.ctrlr->info());
  }
  return a;
}

void detach_all(std::function<void()> done) {
  std::vector<std::string> names;
  for (auto& [n, e] : registry())
    if (!e.deleting && !e.attaching) names.push_back(n);
  if (names.empty()) return done();
  auto left = std::make_shared<size_t>(names.size());
  for (auto& n : names)
    remove_ctrlr(n, IoStatus::kAborted, [left, done] {
      if (--*left == 0) done();
    });
}

}  // namespace vdpu::bdev::nvme
