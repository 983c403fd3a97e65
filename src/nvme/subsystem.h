// NVMe subsystem and namespace objects (SNAP storage spec §6.1): a Subsystem
// (NQN, SN, MN, nn, mnan) owns Namespaces (nsid -> bdev, opened and claimed)
// and knows the Controllers linked to it. No shared namespaces: a namespace is
// attached to at most one controller.
//
// Threads: control plane (main reactor) only. Errors: Errc::kInvalidArgument
// (bad parameters), kExists (duplicate NQN field / NSID), kNotFound, kBusy
// (namespace attached, bdev claimed).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "bdev/bdev.h"

namespace vdpu::nvme {

using json = nlohmann::json;
class Controller;
class Subsystem;

class Namespace {
 public:
  ~Namespace();
  uint32_t nsid() const { return nsid_; }
  bdev::Bdev& bdev() const { return desc_->bdev(); }
  const std::string& bdev_name() const { return bdev_name_; }
  const std::string& uuid_str() const { return uuid_str_; }
  const std::array<uint8_t, 16>& uuid() const { return uuid_; }
  // NGUID = the UUID bytes; EUI-64 = a stable 64-bit hash of the UUID with
  // the locally-administered bit pattern (no IEEE OUI of ours).
  const std::array<uint8_t, 16>& nguid() const { return uuid_; }
  const std::array<uint8_t, 8>& eui64() const { return eui64_; }
  Subsystem& subsystem() const { return *subsys_; }
  // The controller this namespace is attached to, or nullptr.
  Controller* controller() const { return ctrl_; }
  // False after the bdev was hot-removed (I/O fails with Namespace Not Ready).
  bool ready() const { return ready_; }
  // nvme_namespace_list entry (SNAP field names).
  json info() const;

 private:
  friend class Subsystem;
  friend class Controller;
  Namespace() = default;
  Subsystem* subsys_ = nullptr;
  uint32_t nsid_ = 0;
  std::string bdev_name_;
  bdev::Desc* desc_ = nullptr;
  std::string uuid_str_;
  std::array<uint8_t, 16> uuid_{};
  std::array<uint8_t, 8> eui64_{};
  Controller* ctrl_ = nullptr;
  bool ready_ = true;
};

struct SubsystemOptions {
  std::string nqn;            // required, "nqn." prefix, <= 223 bytes
  std::string serial_number;  // <= 20 printable ASCII; generated when empty
  std::string model_number;   // <= 40 printable ASCII; default below
  uint32_t nn = 0xfffffffe;   // max NSID, 1..0xfffffffe
  uint32_t mnan = 1024;       // max namespaces, 1..0xfffffffe
};
constexpr const char* kDefaultModelNumber = "vdpu NVMe Controller";

class Subsystem {
 public:
  // Validates options (see SubsystemOptions).
  static Result<std::unique_ptr<Subsystem>> create(SubsystemOptions o);
  ~Subsystem();
  Subsystem(const Subsystem&) = delete;
  Subsystem& operator=(const Subsystem&) = delete;

  const std::string& nqn() const { return o_.nqn; }
  const std::string& serial_number() const { return o_.serial_number; }
  const std::string& model_number() const { return o_.model_number; }
  uint32_t nn() const { return o_.nn; }
  uint32_t mnan() const { return o_.mnan; }

  // Opens and claims the bdev ("nvme_ns <nqn>:<nsid>"). uuid empty: the
  // bdev's UUID. Errors: nsid 0 or > nn or count >= mnan (kInvalidArgument),
  // nsid in use (kExists), bdev missing (kNotFound) or claimed (kBusy).
  Result<Namespace*> add_namespace(uint32_t nsid, const std::string& bdev_name,
                                   const std::string& uuid = "");
  // Errors: kNotFound; kBusy while attached to a controller.
  Status remove_namespace(uint32_t nsid);
  Namespace* find_namespace(uint32_t nsid) const;
  std::vector<Namespace*> namespaces() const;

  // Controllers register themselves (Controller::create / destructor).
  uint16_t alloc_cntlid();
  void add_controller(Controller* c) { ctrls_.push_back(c); }
  void remove_controller(Controller* c);
  const std::vector<Controller*>& controllers() const { return ctrls_; }

  // Called when a namespace's bdev is hot-removed (set by the service layer).
  std::function<void(Namespace&)> on_ns_hot_remove;

  // nvme_subsystem_list entry.
  json info() const;

 private:
  explicit Subsystem(SubsystemOptions o) : o_(std::move(o)) {}
  SubsystemOptions o_;
  std::map<uint32_t, std::unique_ptr<Namespace>> ns_;
  std::vector<Controller*> ctrls_;
  uint16_t next_cntlid_ = 1;
};

// Parses "8-4-4-4-12" into 16 bytes (RFC 4122 byte order). False if malformed.
bool parse_uuid(const std::string& s, std::array<uint8_t, 16>& out);
// Copies s into a fixed ASCII field, padded with spaces (Base 2.0 §1.5: ASCII
// strings are left-justified and padded with 20h).
void copy_padded(char* dst, size_t n, const std::string& s);

}  // namespace vdpu::nvme
