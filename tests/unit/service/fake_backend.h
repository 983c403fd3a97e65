// A virtio-blk backend for manager tests: records what the manager asks,
// completes every asynchronous call inline.
#pragma once

#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "service/vblk/backend.h"

namespace vdpu::service::vblk::test {

struct FakeState {
  bool plugged = false, connected = false, driver_bound = false, suspended = false;
  std::string socket;
  bdev::Desc* desc = nullptr;
  std::string vblk_id;
  uint16_t num_queues = 0;
  json restored;
  std::vector<std::string> calls;
};

class FakeBackend : public Backend {
 public:
  FakeBackend(FakeState* s, const CtrlConfig& c, bdev::Desc* d, bool suspended) : s_(s) {
    s_->num_queues = c.num_queues;
    s_->desc = d;
    s_->vblk_id = c.vblk_id;
    s_->suspended = suspended;
  }
  Status plug(const std::string& socket) override {
    s_->calls.push_back("plug");
    s_->plugged = true;
    s_->socket = socket;
    return {};
  }
  void unplug(std::function<void()> done) override {
    s_->calls.push_back("unplug");
    s_->plugged = s_->connected = s_->driver_bound = false;
    done();
  }
  bool plugged() const override { return s_->plugged; }
  bool connected() const override { return s_->connected; }
  bool driver_bound() const override { return s_->driver_bound; }
  void suspend(bool, std::function<void(Status)> done) override {
    s_->calls.push_back("suspend");
    s_->suspended = true;
    done({});
  }
  void resume(std::function<void(Status)> done) override {
    s_->calls.push_back("resume");
    s_->suspended = false;
    done({});
  }
  void attach_bdev(bdev::Desc* d, const std::string& id, bool stay,
                   std::function<void(Status)> done) override {
    s_->calls.push_back("attach");
    s_->desc = d;
    s_->vblk_id = id;
    s_->suspended = stay;
    done({});
  }
  void detach_bdev(std::function<void()> done) override {
    s_->calls.push_back("detach");
    s_->desc = nullptr;
    done();
  }
  void set_num_queues(uint16_t n, std::function<void(Status)> done) override {
    s_->num_queues = n;
    done({});
  }
  json io_stats() const override {
    json a = json::array();
    for (uint16_t q = 0; q < s_->num_queues; ++q)
      a.push_back({{"queue_id", q}, {"core_id", 0}, {"read_io_count", 10 + q},
                   {"write_io_count", 20 + q}, {"flush_io_count", q}});
    return a;
  }
  void debug_stats(std::function<void(json)> done) override {
    json a = json::array();
    for (uint16_t q = 0; q < s_->num_queues; ++q) a.push_back({{"qid", q}, {"state", "RUNNING"}});
    done(a);
  }
  void save_state(std::function<void(Result<json>)> done) override {
    json a = json::array();
    for (uint16_t q = 0; q < s_->num_queues; ++q)
      a.push_back({{"qid", q}, {"last_avail_idx", 7 * q}, {"last_used_idx", 7 * q}});
    done(a);
  }
  void restore_state(const json& q, std::function<void(Status)> done) override {
    s_->restored = q;
    done({});
  }

 private:
  FakeState* s_;
};

// A bdev that completes nothing: the manager never submits I/O.
class IdleBdev : public bdev::Bdev {
 public:
  IdleBdev(std::string name, uint32_t bs = 512, uint64_t n = 1024)
      : Bdev(std::move(name), "test", bs, n) {}
  bool supports(bdev::IoType) const override { return true; }
  std::unique_ptr<bdev::Channel> create_channel() override { return nullptr; }
};

}  // namespace vdpu::service::vblk::test
