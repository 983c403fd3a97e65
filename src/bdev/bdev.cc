#include "bdev/bdev.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "base/log.h"

namespace vdpu::bdev {

const char* io_type_name(IoType t) {
  static const char* kNames[] = {"read", "write", "flush", "unmap", "write_zeroes", "reset", "compare"};
  return t < IoType::kCount ? kNames[size_t(t)] : "unknown";
}

const char* io_status_name(IoStatus s) {
  switch (s) {
    case IoStatus::kSuccess: return "success";
    case IoStatus::kFailed: return "failed";
    case IoStatus::kNoMem: return "nomem";
    case IoStatus::kAborted: return "aborted";
    case IoStatus::kMiscompare: return "miscompare";
    case IoStatus::kOutOfRange: return "out of range";
    case IoStatus::kUnsupported: return "unsupported";
  }
  return "unknown";
}

uint64_t tick_rate() {
#if defined(__x86_64__)
  static const uint64_t rate = [] {
    using clk = std::chrono::steady_clock;
    auto t0 = clk::now();
    uint64_t c0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t1 = clk::now();
    uint64_t c1 = ticks();
    double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    return uint64_t(double(c1 - c0) * 1e9 / ns);
  }();
  return rate;
#else
  return 1000000000ull;
#endif
}

namespace {
// Single writer: relaxed load+store instead of a locked RMW.
inline void bump(std::atomic<uint64_t>& a, uint64_t v) {
  a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}
inline void set_max(std::atomic<uint64_t>& a, uint64_t v) {
  if (v > a.load(std::memory_order_relaxed)) a.store(v, std::memory_order_relaxed);
}
inline void set_min(std::atomic<uint64_t>& a, uint64_t v) {
  if (v < a.load(std::memory_order_relaxed)) a.store(v, std::memory_order_relaxed);
}
uint64_t ld(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
}  // namespace

void IoStats::add(const Io& io, IoStatus st, uint32_t block_size, uint64_t latency) noexcept {
  if (st != IoStatus::kSuccess) {
    bump(io_errors, 1);
    return;
  }
  uint64_t bytes = io.num_blocks * block_size;
  switch (io.type) {
    case IoType::kRead:
      bump(num_read_ops, 1);
      bump(bytes_read, bytes);
      bump(read_latency_ticks, latency);
      set_max(max_read_latency_ticks, latency);
      set_min(min_read_latency_ticks, latency);
      break;
    case IoType::kWrite:
      bump(num_write_ops, 1);
      bump(bytes_written, bytes);
      bump(write_latency_ticks, latency);
      set_max(max_write_latency_ticks, latency);
      set_min(min_write_latency_ticks, latency);
      break;
    case IoType::kUnmap:
      bump(num_unmap_ops, 1);
      bump(bytes_unmapped, bytes);
      bump(unmap_latency_ticks, latency);
      break;
    case IoType::kFlush: bump(num_flush_ops, 1); break;
    case IoType::kWriteZeroes: bump(num_write_zeroes_ops, 1); break;
    default: break;
  }
}

void IoStats::merge(const IoStats& o) noexcept {
  bump(bytes_read, ld(o.bytes_read));
  bump(num_read_ops, ld(o.num_read_ops));
  bump(bytes_written, ld(o.bytes_written));
  bump(num_write_ops, ld(o.num_write_ops));
  bump(bytes_unmapped, ld(o.bytes_unmapped));
  bump(num_unmap_ops, ld(o.num_unmap_ops));
  bump(num_flush_ops, ld(o.num_flush_ops));
  bump(num_write_zeroes_ops, ld(o.num_write_zeroes_ops));
  bump(read_latency_ticks, ld(o.read_latency_ticks));
  bump(write_latency_ticks, ld(o.write_latency_ticks));
  bump(unmap_latency_ticks, ld(o.unmap_latency_ticks));
  set_max(max_read_latency_ticks, ld(o.max_read_latency_ticks));
  set_min(min_read_latency_ticks, ld(o.min_read_latency_ticks));
  set_max(max_write_latency_ticks, ld(o.max_write_latency_ticks));
  set_min(min_write_latency_ticks, ld(o.min_write_latency_ticks));
  bump(io_errors, ld(o.io_errors));
}

// ---------------------------------------------------------------- Channel

Channel::Channel(Bdev& bdev)
    : bdev_(bdev), block_size_(bdev.block_size()), num_blocks_(bdev.num_blocks()),
      stats_(bdev.new_channel_stats()) {
  for (uint32_t t = 0; t < uint32_t(IoType::kCount); ++t)
    if (bdev.supports(IoType(t))) supported_mask_ |= 1u << t;
  stats_raw_ = stats_.get();
}
Channel::~Channel() { bdev_.retire_channel_stats(stats_); }

void Channel::submit(Io& io) noexcept {
  io.submit_tsc = ticks();
  if (io.type >= IoType::kCount || !(supported_mask_ & (1u << uint32_t(io.type)))) {
    complete(io, IoStatus::kUnsupported);
    return;
  }
  if (io.type != IoType::kFlush && io.type != IoType::kReset) {
    uint64_t nb = num_blocks_;
    if (io.num_blocks > nb || io.offset_blocks > nb - io.num_blocks) {
      complete(io, IoStatus::kOutOfRange);
      return;
    }
  }
  if (io.type == IoType::kRead || io.type == IoType::kWrite || io.type == IoType::kCompare) {
    // Multiplication cannot overflow: num_blocks <= bdev size in blocks.
    if (io.iovcnt == 0 || iov_bytes(io.iov, io.iovcnt) != io.num_blocks * block_size_) {
      complete(io, IoStatus::kFailed);
      return;
    }
  }
  do_submit(io);
}

void Channel::complete(Io& io, IoStatus st) noexcept {
  stats_raw_->add(io, st, block_size_, ticks() - io.submit_tsc);
  io.cb(io, st);
}

// ---------------------------------------------------------------- Bdev

Bdev::Bdev(std::string name, std::string module, uint32_t block_size, uint64_t num_blocks)
    : name_(std::move(name)), module_(std::move(module)), block_size_(block_size),
      num_blocks_(num_blocks), uuid_(generate_uuid()) {}

Bdev::~Bdev() = default;

std::shared_ptr<IoStats> Bdev::new_channel_stats() {
  auto s = std::make_shared<IoStats>();
  std::lock_guard lk(stats_mu_);
  channel_stats_.push_back(s);
  return s;
}

void Bdev::retire_channel_stats(const std::shared_ptr<IoStats>& s) {
  std::lock_guard lk(stats_mu_);
  retired_stats_.merge(*s);
  auto& v = channel_stats_;
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
}

json Bdev::info() const {
  json j = {
      {"name", name_},
      {"aliases", json::array()},
      {"product_name", product_name_},
      {"block_size", block_size_},
      {"num_blocks", num_blocks_},
      {"uuid", uuid_},
      {"assigned_rate_limits",
       {{"rw_ios_per_sec", 0}, {"rw_mbytes_per_sec", 0}, {"r_mbytes_per_sec", 0}, {"w_mbytes_per_sec", 0}}},
      {"claimed", !claim_module_.empty()},
      {"zoned", false},
      {"supported_io_types",
       {{"read", supports(IoType::kRead)},
        {"write", supports(IoType::kWrite)},
        {"unmap", supports(IoType::kUnmap)},
        {"write_zeroes", supports(IoType::kWriteZeroes)},
        {"flush", supports(IoType::kFlush)},
        {"reset", supports(IoType::kReset)},
        {"compare", supports(IoType::kCompare)},
        {"compare_and_write", false},
        {"abort", false},
        {"nvme_admin", false},
        {"nvme_io", false}}},
      {"driver_specific", driver_specific()},
  };
  if (!claim_module_.empty()) j["claim_type"] = "exclusive_write", j["claimed_by"] = claim_module_;
  return j;
}

json Bdev::iostat() const {
  IoStats t;
  {
    std::lock_guard lk(stats_mu_);
    t.merge(retired_stats_);
    for (auto& s : channel_stats_) t.merge(*s);
  }
  auto mn = [](uint64_t v) { return v == UINT64_MAX ? 0 : v; };
  // SPDK field names (spdk_bdev_dump_io_stat_json); num_flush_ops and
  // num_write_zeroes_ops are ours.
  return {{"name", name_},
          {"bytes_read", ld(t.bytes_read)},
          {"num_read_ops", ld(t.num_read_ops)},
          {"bytes_written", ld(t.bytes_written)},
          {"num_write_ops", ld(t.num_write_ops)},
          {"bytes_unmapped", ld(t.bytes_unmapped)},
          {"num_unmap_ops", ld(t.num_unmap_ops)},
          {"bytes_copied", 0},
          {"num_copy_ops", 0},
          {"read_latency_ticks", ld(t.read_latency_ticks)},
          {"max_read_latency_ticks", ld(t.max_read_latency_ticks)},
          {"min_read_latency_ticks", mn(ld(t.min_read_latency_ticks))},
          {"write_latency_ticks", ld(t.write_latency_ticks)},
          {"max_write_latency_ticks", ld(t.max_write_latency_ticks)},
          {"min_write_latency_ticks", mn(ld(t.min_write_latency_ticks))},
          {"unmap_latency_ticks", ld(t.unmap_latency_ticks)},
          {"copy_latency_ticks", 0},
          {"num_flush_ops", ld(t.num_flush_ops)},
          {"num_write_zeroes_ops", ld(t.num_write_zeroes_ops)},
          {"io_error", ld(t.io_errors)}};
}

// ---------------------------------------------------------------- Desc

Status Desc::claim(const std::string& module) {
  if (!bdev_->claim_module_.empty())
    return make_error(Errc::kBusy, "bdev " + bdev_->name() + " already claimed by " + bdev_->claim_module_);
  bdev_->claim_module_ = module;
  claimed_ = true;
  return {};
}

void Desc::close() { Manager::get().close(this); }

// ---------------------------------------------------------------- Manager

Manager& Manager::get() {
  static Manager m;
  return m;
}

Status Manager::add(std::unique_ptr<Bdev> b) {
  if (b->name().empty()) return make_error(Errc::kInvalidArgument, "bdev name must not be empty");
  if (bdevs_.count(b->name())) return make_error(Errc::kExists, "bdev " + b->name() + " already exists");
  for (auto& [n, other] : bdevs_)
    if (other->uuid() == b->uuid())
      return make_error(Errc::kExists, "bdev with uuid " + b->uuid() + " already exists");
  VDPU_INFO("bdev {} created ({} blocks of {} bytes, module {})", b->name(), b->num_blocks(),
            b->block_size(), b->module());
  bdevs_.emplace(b->name(), std::move(b));
  return {};
}

Bdev* Manager::find(const std::string& name) const {
  auto it = bdevs_.find(name);
  if (it != bdevs_.end()) return it->second.get();
  for (auto& [n, b] : bdevs_)  // SPDK also finds a bdev by its UUID
    if (b->uuid() == name) return b.get();
  return nullptr;
}

std::vector<Bdev*> Manager::list() const {
  std::vector<Bdev*> v;
  for (auto& [n, b] : bdevs_) v.push_back(b.get());
  return v;
}

Result<Desc*> Manager::open(const std::string& name, bool writable, HotRemoveCb on_remove) {
  Bdev* b = find(name);
  if (!b) return make_error(Errc::kNotFound, "bdev " + name + " not found");
  if (removing_.count(b)) return make_error(Errc::kState, "bdev " + name + " is being removed");
  auto* d = new Desc(b, writable, std::move(on_remove));
  b->descs_.push_back(d);
  return d;
}

void Manager::close(Desc* d) {
  Bdev* b = d->bdev_;
  if (d->claimed_) b->claim_module_.clear();
  auto& v = b->descs_;
  v.erase(std::remove(v.begin(), v.end(), d), v.end());
  delete d;
  maybe_finish_remove(b);
}

void Manager::maybe_finish_remove(Bdev* b) {
  auto it = removing_.find(b);
  if (it == removing_.end() || !b->descs_.empty()) return;
  auto cbs = std::move(it->second);
  removing_.erase(it);
  VDPU_INFO("bdev {} deleted", b->name());
  bdevs_.erase(b->name());
  for (auto& cb : cbs)
    if (cb) cb();
}

Status Manager::remove(const std::string& name, std::function<void()> done) {
  Bdev* b = find(name);
  if (!b) return make_error(Errc::kNotFound, "bdev " + name + " not found");
  if (!b->claim_module_.empty())
    return make_error(Errc::kBusy, "bdev " + b->name() + " is claimed by " + b->claim_module_);
  hot_remove(b->name(), std::move(done));
  return {};
}

void Manager::hot_remove(const std::string& name, std::function<void()> done) {
  Bdev* b = find(name);
  if (!b) {
    if (done) done();
    return;
  }
  bool first = !removing_.count(b);
  removing_[b].push_back(std::move(done));
  if (first) {
    // Copy: callbacks close descs, which edits the list.
    auto descs = b->descs_;
    for (Desc* d : descs)
      if (d->on_remove_) d->on_remove_(*d);
  }
  maybe_finish_remove(b);
}

namespace {
std::vector<std::function<json()>>& module_configs() {
  static std::vector<std::function<json()>> v;
  return v;
}
}  // namespace

void Manager::register_module_config(std::function<json()> fn) { module_configs().push_back(std::move(fn)); }

json Manager::write_config() const {
  json a = json::array();
  for (auto& fn : module_configs()) {
    json c = fn();
    if (!c.is_null()) a.push_back(std::move(c));
  }
  for (auto& [n, b] : bdevs_) {
    json c = b->write_config();
    if (!c.is_null()) a.push_back(std::move(c));
  }
  return a;
}

void Manager::clear() {
  std::vector<std::string> names;
  for (auto& [n, b] : bdevs_) names.push_back(n);
  for (auto& n : names) hot_remove(n);
}

Status remove_module_bdev(const std::string& name, const std::string& module,
                          std::function<void()> done) {
  Bdev* b = Manager::get().find(name);
  // SPDK answers -ENODEV "No such device" for both cases.
  if (!b || b->module() != module) return make_error(Errc::kNotFound, "No such device");
  return Manager::get().remove(b->name(), std::move(done));
}

// ---------------------------------------------------------------- uuid

std::string generate_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 10
  char s[37];
  snprintf(s, sizeof(s), "%08x-%04x-%04x-%04x-%012llx", uint32_t(a >> 32), uint32_t(a >> 16) & 0xffff,
           uint32_t(a) & 0xffff, uint32_t(b >> 48), (unsigned long long)(b & 0xffffffffffffull));
  return s;
}

bool valid_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

}  // namespace vdpu::bdev
