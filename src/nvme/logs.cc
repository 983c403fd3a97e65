// Get Log Page (Base 2.0 §5.16): Error Information, SMART / Health
// Information, Firmware Slot Information, Changed Namespace List, Commands
// Supported and Effects. Offsets (LPOL/LPOU) and extended NUMD (NUMDL/NUMDU)
// are supported (LPA bit 2); a read returns min(requested, rest of the log).
// Runs on the main reactor.
#include <cstring>

#include "nvme/controller.h"

namespace vdpu::nvme {

uint32_t admin_effects(uint8_t opc);

namespace {
void put_u128(uint64_t dst[2], uint64_t v) {
  dst[0] = v;
  dst[1] = 0;
}
}  // namespace

std::vector<uint8_t> Controller::build_log(uint8_t lid, bool rae) {
  std::vector<uint8_t> out;
  switch (lid) {
    case kLidErrorInformation: {
      out.assign(4 * sizeof(ErrorInformationEntry), 0);  // ELPE + 1 entries
      size_t i = 0;
      for (const auto& e : errors_) std::memcpy(out.data() + 64 * i++, &e, sizeof(e));
      if (!rae) masked_types_ &= uint8_t(~(1u << kAerError));
      break;
    }
    case kLidSmartHealth: {
      SmartHealthLog s{};
      s.composite_temperature = 0x0143;  // 323 K
      s.available_spare = 100;
      s.available_spare_threshold = 10;
      uint64_t rb = 0, wb = 0, rc = 0, wc = 0;
      for (auto& sq : sqs_) {
        if (!sq) continue;
        auto& st = sq->stats();
        rb += st.read_bytes.load(std::memory_order_relaxed);
        wb += st.write_bytes.load(std::memory_order_relaxed);
        rc += st.read_ios.load(std::memory_order_relaxed);
        wc += st.write_ios.load(std::memory_order_relaxed);
      }
      // Data units: thousands of 512-byte units, rounded up (Figure 207).
      put_u128(s.data_units_read, (rb / 512 + 999) / 1000);
      put_u128(s.data_units_written, (wb / 512 + 999) / 1000);
      put_u128(s.host_read_commands, rc);
      put_u128(s.host_write_commands, wc);
      put_u128(s.power_cycles, 1);
      put_u128(s.num_error_info_log_entries, error_count_);
      out.resize(sizeof(s));
      std::memcpy(out.data(), &s, sizeof(s));
      if (!rae) masked_types_ &= uint8_t(~(1u << kAerSmart));
      break;
    }
    case kLidFirmwareSlot: {
      FirmwareSlotLog f{};
      f.afi = 1;  // slot 1 active
      copy_padded(f.frs[0], 8, o_.firmware_revision);
      out.resize(sizeof(f));
      std::memcpy(out.data(), &f, sizeof(f));
      break;
    }
    case kLidChangedNsList: {
      out.assign(4096, 0);
      if (changed_ns_overflow_) {
        put_le32(out.data(), 0xffffffff);  // more than 1024 changed
      } else {
        for (size_t i = 0; i < changed_ns_.size(); ++i) put_le32(out.data() + 4 * i, changed_ns_[i]);
      }
      if (!rae) {
        changed_ns_.clear();
        changed_ns_overflow_ = false;
        masked_types_ &= uint8_t(~(1u << kAerNotice));
      }
      break;
    }
    case kLidCommandsSupported: {
      CommandsSupportedLog l{};
      for (unsigned op = 0; op < 256; ++op) {
        l.acs[op] = admin_effects(uint8_t(op));
        if (!o_.admin_only) l.iocs[op] = io_effects(uint8_t(op), io_group_config());
      }
      out.resize(sizeof(l));
      std::memcpy(out.data(), &l, sizeof(l));
      break;
    }
    default:
      break;
  }
  return out;
}

void Controller::adm_get_log_page(Request& r) {
  const SqEntry& c = r.cmd;
  uint8_t lid = uint8_t(c.cdw10 & 0xff);
  bool rae = c.cdw10 & (1u << 15);
  uint64_t numd = ((uint64_t(c.cdw11 & 0xffff) << 16) | (c.cdw10 >> 16)) + 1;
  uint64_t len = numd * 4;
  uint64_t off = uint64_t(c.cdw12) | (uint64_t(c.cdw13) << 32);
  bool index_offset = c.cdw14 & (1u << 23);  // OT: no log supports index offsets
  // Base 2.0 §5.16: the offset is dword aligned; unsupported LIDs and index
  // offsets are Invalid Field in Command.
  if ((off & 3) || index_offset) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (o_.mdts && len > (uint64_t(1) << o_.mdts) * 4096)
    return admin_complete(r, sc::kInvalidField | kStatusDnr);
  std::vector<uint8_t> log = build_log(lid, rae);
  if (log.empty()) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (off >= log.size()) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  uint64_t n = std::min<uint64_t>(len, log.size() - off);
  // Map the whole requested buffer (validates the data pointer), fill what
  // the log has.
  uint16_t st = copy_to_host(r, log.data() + off, n);
  if (st == sc::kSuccess) deliver_events();  // a read may have unmasked an event type
  admin_complete(r, st);
}

}  // namespace vdpu::nvme
