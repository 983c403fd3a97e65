#include "nvme/subsystem.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "base/log.h"
#include "nvme/controller.h"

namespace vdpu::nvme {

namespace {
bool printable_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool parse_uuid(const std::string& s, std::array<uint8_t, 16>& out) {
  if (s.size() != 36) return false;
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
      ++i;
      continue;
    }
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[j++] = uint8_t(hi << 4 | lo);
    i += 2;
  }
  return j == 16;
}

void copy_padded(char* dst, size_t n, const std::string& s) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, s.data(), std::min(n, s.size()));
}

Namespace::~Namespace() {
  if (desc_) desc_->close();
}

json Namespace::info() const {
  json ctrls = json::array();
  if (ctrl_) ctrls.push_back({{"ctrl_id", ctrl_->name()}});
  return {{"nqn", subsys_->nqn()}, {"nsid", nsid_},     {"bdev", bdev_name_},
          {"uuid", uuid_str_},     {"ready", ready_},   {"controllers", ctrls}};
}

Result<std::unique_ptr<Subsystem>> Subsystem::create(SubsystemOptions o) {
  if (o.nqn.size() < 5 || o.nqn.compare(0, 4, "nqn.") != 0 || o.nqn.size() > 223 ||
      !printable_ascii(o.nqn))
    return make_error(Errc::kInvalidArgument, "invalid NQN '" + o.nqn + "'");
  if (o.serial_number.empty()) {
    std::random_device rd;
    char buf[21];
    snprintf(buf, sizeof(buf), "VDPU%016llx",
             (unsigned long long)((uint64_t(rd()) << 32) | rd()));
    o.serial_number = buf;
  }
  if (o.serial_number.size() > 20 || !printable_ascii(o.serial_number))
    return make_error(Errc::kInvalidArgument, "serial number: at most 20 printable ASCII chars");
  if (o.model_number.empty()) o.model_number = kDefaultModelNumber;
  if (o.model_number.size() > 40 || !printable_ascii(o.model_number))
    return make_error(Errc::kInvalidArgument, "model number: at most 40 printable ASCII chars");
  if (o.nn < 1 || o.nn > 0xfffffffe) return make_error(Errc::kInvalidArgument, "nn out of range");
  if (o.mnan < 1 || o.mnan > 0xfffffffe)
    return make_error(Errc::kInvalidArgument, "mnan out of range");
  return std::unique_ptr<Subsystem>(new Subsystem(std::move(o)));
}

Subsystem::~Subsystem() {
  for (Controller* c : ctrls_)
    VDPU_ERR("nvme subsystem {}: destroyed while controller {} exists", nqn(), c->name());
  ns_.clear();
}

Result<Namespace*> Subsystem::add_namespace(uint32_t nsid, const std::string& bdev_name,
                                            const std::string& uuid) {
  if (nsid == 0 || nsid > o_.nn)
    return make_error(Errc::kInvalidArgument, "nsid must be 1-" + std::to_string(o_.nn));
  if (ns_.count(nsid)) return make_error(Errc::kExists, "nsid " + std::to_string(nsid) + " exists");
  if (ns_.size() >= o_.mnan)
    return make_error(Errc::kInvalidArgument, "subsystem already has mnan namespaces");
  std::array<uint8_t, 16> u{};
  if (!uuid.empty() && !parse_uuid(uuid, u))
    return make_error(Errc::kInvalidArgument, "invalid uuid '" + uuid + "'");
  bdev::Bdev* b = bdev::Manager::get().find(bdev_name);
  if (!b) return make_error(Errc::kNotFound, "bdev " + bdev_name + " not found");
  uint32_t bs = b->block_size();
  if (bs < 512 || (bs & (bs - 1)))
    return make_error(Errc::kInvalidArgument, "bdev block size must be a power of two >= 512");
  auto ns = std::unique_ptr<Namespace>(new Namespace());
  Namespace* raw = ns.get();
  auto d = bdev::Manager::get().open(bdev_name, true, [this, raw](bdev::Desc&) {
    // Backend gone: the namespace stops serving I/O; the service layer
    // decides (detach, destroy). The handle is closed with the namespace.
    raw->ready_ = false;
    if (on_ns_hot_remove) on_ns_hot_remove(*raw);
  });
  if (!d.ok()) return d.error();
  Status c = (*d)->claim("nvme_ns " + o_.nqn + ":" + std::to_string(nsid));
  if (!c.ok()) {
    (*d)->close();
    return c.error();
  }
  ns->subsys_ = this;
  ns->nsid_ = nsid;
  ns->bdev_name_ = b->name();
  ns->desc_ = *d;
  ns->uuid_str_ = uuid.empty() ? b->uuid() : uuid;
  if (!parse_uuid(ns->uuid_str_, ns->uuid_)) std::memset(ns->uuid_.data(), 0, 16);
  // EUI-64 from the UUID (FNV-1a), never all-zero.
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t x : ns->uuid_) h = (h ^ x) * 0x100000001b3ull;
  h |= 1;
  for (int i = 0; i < 8; ++i) ns->eui64_[i] = uint8_t(h >> (56 - 8 * i));
  ns_.emplace(nsid, std::move(ns));
  return raw;
}

Status Subsystem::remove_namespace(uint32_t nsid) {
  auto it = ns_.find(nsid);
  if (it == ns_.end()) return make_error(Errc::kNotFound, "nsid " + std::to_string(nsid) + " not found");
  if (it->second->ctrl_)
    return make_error(Errc::kBusy, "namespace attached to " + it->second->ctrl_->name());
  ns_.erase(it);
  return {};
}

Namespace* Subsystem::find_namespace(uint32_t nsid) const {
  auto it = ns_.find(nsid);
  return it == ns_.end() ? nullptr : it->second.get();
}

std::vector<Namespace*> Subsystem::namespaces() const {
  std::vector<Namespace*> v;
  for (auto& [id, ns] : ns_) v.push_back(ns.get());
  return v;
}

uint16_t Subsystem::alloc_cntlid() {
  for (;;) {
    uint16_t id = next_cntlid_++;
    if (next_cntlid_ >= 0xfff0) next_cntlid_ = 1;
    bool used = false;
    for (Controller* c : ctrls_) used |= c->cntlid() == id;
    if (!used) return id;
  }
}

void Subsystem::remove_controller(Controller* c) {
  ctrls_.erase(std::remove(ctrls_.begin(), ctrls_.end(), c), ctrls_.end());
}

json Subsystem::info() const {
  json ctrls = json::array(), nss = json::array();
  for (Controller* c : ctrls_) ctrls.push_back({{"ctrl_id", c->name()}, {"cntlid", c->cntlid()}});
  for (auto& [id, ns] : ns_) nss.push_back(ns->info());
  return {{"nqn", o_.nqn}, {"sn", o_.serial_number}, {"mn", o_.model_number}, {"nn", o_.nn},
          {"mnan", o_.mnan}, {"controllers", ctrls}, {"namespaces", nss}};
}

}  // namespace vdpu::nvme
