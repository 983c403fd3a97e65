// The emulated NVMe controller (NVMe over PCIe): BAR0 register file and state
// machine, admin command set, I/O queue placement, namespaces, suspend/resume.
//
// Threads. Everything here runs on the main (control-plane) reactor: MMIO
// from the transport, the admin queue pair (polled on the main reactor every
// `admin_poll_us`, and processed at once when its doorbell is written through
// MMIO), and the service API. Each I/O completion queue is placed on a data
// reactor with Env::pick() when the host creates it; the I/O SQs bound to it
// are polled by that reactor (unlike SPDK, one controller's queues spread
// over all reactors). The controller touches a reactor's queues only by
// message; teardown is ordered: stop fetching -> drain in flight -> free.
//
// Errors. A guest mistake is never fatal to the process: bad register values
// set CSTS.CFS or are ignored, bad commands complete with the spec's status.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "hostmem/hostmem.h"
#include "nvme/env.h"
#include "nvme/queues.h"
#include "nvme/spec.h"
#include "nvme/subsystem.h"

namespace vdpu::pci {
class IrqSink;
}

namespace vdpu::nvme {

constexpr uint32_t kMaxIoQueues = 31;         // SNAP nvme_controller_create num_queues range
constexpr uint32_t kDefaultNumQueues = 1;     // SNAP spec §6.5 default
constexpr uint8_t kDefaultMdts = 7;           // SNAP spec §6.5 default (2^7 * 4 KiB = 512 KiB)
constexpr uint32_t kDefaultMaxQueueEntries = 512;  // CAP.MQES + 1 (DOCA sample: MQES 511)
constexpr uint32_t kBar0Size = 0x4000;        // regs 0x0, doorbells 0x1000 (MSI-X by pci layer)
constexpr uint32_t kDoorbellBytes = 0x1000;   // (kMaxIoQueues + 1) * 2 doorbells of 4 bytes fit

struct ControllerOptions {
  std::string name;                    // "NVMeCtrl1"; required
  uint16_t cntlid = 0;                 // 0: allocated by the subsystem
  uint32_t num_queues = kDefaultNumQueues;  // I/O queue pairs, 1..31 (0 with admin_only)
  uint8_t mdts = kDefaultMdts;         // 1..7
  std::optional<bool> compare;         // unset: enabled if every attached bdev supports it
  std::optional<bool> write_zeroes;    // unset: same rule (SNAP §6.1 optional commands)
  bool compare_write = false;          // accepted; fused commands are not implemented
  bool write_uncor = false;            // accepted; Write Uncorrectable not implemented
  bool admin_only = false;
  bool suspended = false;              // created suspended: CC.EN waits for resume()
  uint32_t quirks = 0;
  uint8_t fw_slots = 4;                // 1..7
  uint32_t num_msix = 0;               // 0: num_queues + 1
  uint32_t max_queue_entries = kDefaultMaxQueueEntries;  // 2..4096
  uint16_t vid = 0x15b3, ssvid = 0x15b3;
  bool sgl = true;                     // advertise and accept SGLs for I/O
  uint64_t admin_poll_us = 100;        // admin SQ doorbell poll period on the main reactor
  std::string firmware_revision = "vdpu0.1";
};

// Controller state (CC/CSTS state machine, Base 2.0 §3.5-3.6).
enum class CtrlState : uint8_t { kDisabled, kEnabled, kFailed, kResetting, kShuttingDown, kShutdown };
const char* ctrl_state_name(CtrlState s);

class Controller {
 public:
  // Validates options (Errc::kInvalidArgument), links to the subsystem.
  static Result<std::unique_ptr<Controller>> create(Subsystem& subsys, ControllerOptions o,
                                                    Env& env);
  // Call destroy() first (and wait for it) when the controller may have queues.
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  const std::string& name() const { return o_.name; }
  uint16_t cntlid() const { return cntlid_; }
  Subsystem& subsystem() const { return subsys_; }
  Env& env() const { return env_; }
  const ControllerOptions& options() const { return o_; }
  CtrlState state() const { return state_; }
  uint32_t num_msix() const { return num_msix_; }

  // ---------------- transport side (main reactor) ----------------
  // The DMA view and interrupt sink; irq may be nullptr (polled host).
  void attach(hostmem::MemoryMapPtr dma, pci::IrqSink* irq);
  // New DMA view: handed to every queue group by message. Queue rings keep
  // the map they were created with alive, so a ring never dangles.
  void dma_changed(hostmem::MemoryMapPtr dma);
  // Doorbell area shared with the guest (mmap-able page of BAR0 at 0x1000),
  // kDoorbellBytes long, 4-byte aligned. Must be called while disabled; the
  // controller uses an internal array otherwise.
  void set_doorbell_memory(volatile uint32_t* db);
  volatile uint32_t* doorbells() const { return db_; }
  // BAR0 accesses (offset < kBar0Size, size 1/2/4/8). Registers are read back
  // as written (reserved bits read 0); doorbell writes through MMIO land in
  // the same doorbell array the reactors poll. Never fails.
  uint64_t mmio_read(uint64_t offset, unsigned size);
  void mmio_write(uint64_t offset, unsigned size, uint64_t value);
  // Function Level Reset: controller reset + registers to their defaults.
  void function_reset(std::function<void()> done);
  // The client went away: like a controller reset (queues freed, RDY=0), and
  // guest memory is no longer touched after done runs.
  void detach(std::function<void()> done);

  // ---------------- service side (main reactor) ----------------
  // Stops fetching new commands (admin and I/O); done runs once nothing is in
  // flight. Pending SQ entries run after resume() (SNAP §6.6).
  void suspend(std::function<void()> done);
  void resume();
  bool suspended() const { return suspended_; }
  // Only while suspended (SNAP §6.1) and for a namespace of this subsystem
  // attached to no other controller. Errors: kState, kNotFound, kBusy.
  // Raises a Namespace Attribute Changed event (Base 2.0 §5.2.1) delivered
  // after resume, and adds the NSID to the Changed Namespace List log.
  Status attach_ns(uint32_t nsid);
  Status detach_ns(uint32_t nsid);
  const std::vector<Namespace*>& attached_namespaces() const { return ns_; }
  // Stops everything (queues freed, namespaces detached); then delete.
  void destroy(std::function<void()> done);

  // nvme_controller_list entry / nvme_controller_dbg_io_stats_get result.
  json info() const;
  json io_stats() const;

  // ---------------- internal (queues.cc / io.cc / admin*.cc) ----------------
  // Any reactor: reports an error asynchronous event (AER type Error).
  void report_error_event(uint8_t info);

 private:
  friend struct AdminOps;
  Controller(Subsystem& s, ControllerOptions o, Env& env, uint16_t cntlid);

  // regs / state machine (regs.cc, controller.cc)
  void reset_registers();
  void on_cc_write(uint32_t cc);
  void evaluate_cc();
  void enable();
  void fail(const char* why);
  void reset_flow(bool drop, std::function<void()> done);
  void shutdown_flow(bool abrupt);
  void quiesce_all(bool drop, bool admin, std::function<void()> done);
  void destroy_io_groups(std::function<void()> done);
  void run_deferred();
  void ring_admin_doorbell();
  // Posts fn to the main reactor; dropped if this controller is gone by then.
  void post_main(std::function<void()> fn);
  GroupConfig io_group_config() const;
  QueueGroup& group_on(uint32_t reactor);

  // admin (admin.cc, identify.cc, features.cc, logs.cc)
  static void admin_dispatch(QueueGroup& g, Request& r);
  void admin_complete(Request& r, uint16_t status, uint32_t cdw0 = 0);
  void adm_create_cq(Request& r);
  void adm_create_sq(Request& r);
  void adm_delete_sq(Request& r);
  void adm_delete_cq(Request& r);
  void adm_identify(Request& r);
  void adm_get_log_page(Request& r);
  void adm_set_features(Request& r);
  void adm_get_features(Request& r);
  void adm_async_event(Request& r);
  void adm_abort(Request& r);
  void adm_keep_alive(Request& r);
  uint16_t copy_to_host(Request& r, const void* data, size_t len);
  uint16_t copy_from_host(Request& r, void* data, size_t len);
  void build_identify_ctrl(IdentifyController& id) const;
  void build_identify_ns(const Namespace& ns, IdentifyNamespace& id) const;
  uint16_t effective_oncs() const;
  void add_event(uint8_t type, uint8_t info, uint8_t lid);
  void note_ns_changed(uint32_t nsid);
  void deliver_events();
  void record_error(uint16_t sqid, uint16_t cid, uint16_t status);
  void reset_features();
  void check_keep_alive();
  uint32_t feature_value(uint8_t fid, uint32_t cdw11, bool dflt) const;
  void apply_coalescing();
  std::vector<uint8_t> build_log(uint8_t lid, bool rae);

  Subsystem& subsys_;
  ControllerOptions o_;
  Env& env_;
  uint16_t cntlid_;
  uint32_t num_msix_;

  // register file (Base 2.0 §3.1.4)
  uint64_t cap_ = 0;
  uint32_t vs_ = kNvmeVersion14, intms_ = 0, cc_ = 0, csts_ = 0, aqa_ = 0;
  uint64_t asq_ = 0, acq_ = 0;
  CtrlState state_ = CtrlState::kDisabled;
  bool busy_ = false;  // an asynchronous flow (reset/shutdown/suspend) runs
  bool suspended_ = false;
  uint64_t gen_ = 1;   // bumped at every reset; stale async replies are dropped
  std::vector<std::function<void()>> deferred_;

  // transport
  hostmem::MemoryMapPtr dma_;
  pci::IrqSink* irq_ = nullptr;
  volatile uint32_t* db_ = nullptr;
  std::unique_ptr<uint32_t[]> own_db_;

  // queues (bookkeeping on the main reactor; objects used by their group)
  std::unique_ptr<QueueGroup> admin_group_;
  std::unique_ptr<Cq> admin_cq_;
  std::unique_ptr<Sq> admin_sq_;
  std::vector<std::unique_ptr<QueueGroup>> groups_;  // by data reactor index
  std::array<std::unique_ptr<Sq>, kMaxIoQueues + 1> sqs_;
  std::array<std::unique_ptr<Cq>, kMaxIoQueues + 1> cqs_;
  std::array<hostmem::MemoryMapPtr, 2 * (kMaxIoQueues + 1)> ring_maps_;
  GroupConfig io_cfg_;
  uint32_t page_size_ = 4096;

  // namespaces attached to this controller
  std::vector<Namespace*> ns_;
  std::vector<uint32_t> changed_ns_;
  bool changed_ns_overflow_ = false;

  // features (Base 2.0 §5.27.1)
  struct Features {
    uint32_t arbitration = 0;
    uint32_t power_mgmt = 0;
    uint16_t temp_over = 0x0157, temp_under = 0;
    uint32_t error_recovery = 0;
    bool wce = true;
    uint32_t coalescing = 0;
    std::vector<uint8_t> vector_cd;
    uint32_t aec = 0;
    uint32_t kato = 0;
    uint32_t write_atomicity = 0;
  } feat_;
  uint64_t last_keep_alive_ns_ = 0;
  uint64_t ka_poller_ = 0;

  // asynchronous events (Base 2.0 §5.2)
  std::vector<Request*> aers_;
  std::deque<uint32_t> events_;   // pending completion DW0s
  uint8_t masked_types_ = 0;      // bit per AER type awaiting its log page read
  // error information log (newest first)
  std::deque<ErrorInformationEntry> errors_;
  uint64_t error_count_ = 0;
  uint64_t created_ns_ = 0;
  bool io_queues_created_ = false;  // since the last reset (Number of Queues rule)
  std::array<bool, kMaxIoQueues + 1> sq_deleting_{}, cq_deleting_{};
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

// Effects bits of an admin opcode (0: not supported); the dispatch table.
uint32_t admin_effects(uint8_t opc);

}  // namespace vdpu::nvme
