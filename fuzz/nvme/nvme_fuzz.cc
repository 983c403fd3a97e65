// libFuzzer target for NVMe command parsing: admin and I/O commands (opcodes,
// queue ids, sizes, NSIDs, LBA ranges, PRP/SGL data pointers, features, log
// offsets) and register writes, fed to a controller driven by the in-process
// test host (deterministic ManualEnv, RAM bdev).
//
// Input: [flags][len lo][len hi][len bytes of guest data][records...]
//   flags bit0: doorbells through MMIO; bit1: asynchronous bdev.
//   guest data is copied into a 32 KiB guest area D that data pointers can
//   be steered into; each record is 66 bytes: [target][fixup][64-byte SQE]
//   target bit7: admin SQ, else I/O SQ 1 + (target & 1); bit6: run now.
//   fixup bit0/1: PRP1/PRP2 = D + value % 32 KiB; bit2: NSID = 1;
//   bit3: also write register (cdw15 & 0x3c) with cdw14.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstring>

#include "test_host.h"

using namespace vdpu::nvme;
using namespace vdpu::nvme::test;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool once = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)once;
  if (size < 3) return 0;
  TestHost::Options o;
  o.mem_bytes = 4u << 20;
  o.namespaces = {{1, 1024}};
  o.ctrl.num_queues = 2;
  o.ctrl.compare = true;
  o.mmio_doorbells = data[0] & 1;
  TestHost h(o);
  h.bdev(1).async = data[0] & 2;
  if (!(h.enable() & kCstsRdy) || !h.create_io_queues(2, 32)) return 0;
  uint64_t area = h.alloc(32768);
  size_t len = std::min<size_t>(size_t(data[1]) | (size_t(data[2]) << 8), size - 3);
  std::memcpy(h.hva(area), data + 3, std::min<size_t>(len, 32768));
  size_t pos = 3 + len;
  while (pos + 66 <= size) {
    uint8_t target = data[pos], fix = data[pos + 1];
    SqEntry c;
    std::memcpy(&c, data + pos + 2, 64);
    pos += 66;
    if (fix & 1) c.prp1 = area + (c.prp1 % 32768);
    if (fix & 2) c.prp2 = area + (c.prp2 % 32768);
    if (fix & 4) c.nsid = 1;
    if (fix & 8) h.wr32(c.cdw15 & 0x3c, c.cdw14);
    if (h.ctrl().state() != CtrlState::kEnabled) break;
    if (target & 0x80) {
      h.admin_submit(c);
    } else {
      uint16_t qid = 1 + (target & 1);
      if (h.q(qid).sq_size == 0) continue;  // deleted by an earlier record
      h.submit(qid, c);
    }
    if (target & 0x40) h.run();
  }
  h.run();
  // Reap what completed (phase-tag walk): must terminate.
  if (h.ctrl().state() == CtrlState::kEnabled) {
    for (int i = 0; i < 64 && h.admin_reap(); ++i) {
    }
  }
  return 0;
}
