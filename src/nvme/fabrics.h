// NVMe over Fabrics command set (NVM Express Base Specification 2.0 §6 and
// §3.1.3 fabrics properties; NVMe over Fabrics 1.1 §3.3 for the Connect
// command and discovery log). Structures are packed, size-checked and
// little-endian like spec.h. Shared by the NVMe/TCP target
// (transport/nvmf_tcp) and the NVMe/TCP initiator (bdev/nvme).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvme/spec.h"

namespace vdpu::nvme {

// Fabrics command opcode (Base 2.0 Figure 28); the command type is in FCTYPE.
constexpr uint8_t kOpcFabrics = 0x7f;
enum FabricsType : uint8_t {
  kFctypePropertySet = 0x00,
  kFctypeConnect = 0x01,
  kFctypePropertyGet = 0x04,
  kFctypeAuthSend = 0x05,
  kFctypeAuthReceive = 0x06,
  kFctypeDisconnect = 0x08,
};

// Fabrics command capsule (SQE layout of a fabrics command, Base 2.0 Figure 89).
struct FabricsCmd {
  uint8_t opc;  // 0x7f
  uint8_t flags;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd5[19];
  uint8_t sgl1[16];
  uint8_t specific[24];
};
static_assert(sizeof(FabricsCmd) == 64);
static_assert(offsetof(FabricsCmd, sgl1) == 24);

// Connect command SQE (Base 2.0 Figure 542 / NVMe-oF 1.1 Figure 19).
#pragma pack(push, 1)
struct ConnectCmd {
  uint8_t opc;
  uint8_t flags;
  uint16_t cid;
  uint8_t fctype;  // 0x01
  uint8_t rsvd5[19];
  uint8_t sgl1[16];
  uint16_t recfmt;  // record format, 0
  uint16_t qid;     // 0: admin queue
  uint16_t sqsize;  // 0's based
  uint8_t cattr;    // connect attributes (priority class; ignored)
  uint8_t rsvd47;
  uint32_t kato;  // keep alive timeout, ms (admin queue), bytes 51:48
  uint8_t rsvd52[12];
};
#pragma pack(pop)
static_assert(sizeof(ConnectCmd) == 64);
static_assert(offsetof(ConnectCmd, recfmt) == 40 && offsetof(ConnectCmd, kato) == 48);

// Connect command data (Base 2.0 Figure 543), 1024 bytes, in the command's data.
struct ConnectData {
  uint8_t hostid[16];
  uint16_t cntlid;  // 0xffff: dynamic controller model; 0xfffe: any (static)
  uint8_t rsvd18[238];
  char subnqn[256];
  char hostnqn[256];
  uint8_t rsvd768[256];
};
static_assert(sizeof(ConnectData) == 1024);
static_assert(offsetof(ConnectData, subnqn) == 256 && offsetof(ConnectData, hostnqn) == 512);
constexpr uint16_t kCntlidDynamic = 0xffff;
constexpr uint16_t kCntlidAnyStatic = 0xfffe;
constexpr uint16_t kCntlidMax = 0xffef;  // valid controller IDs are 0x0001..0xffef

// Connect response DW0 (Base 2.0 Figure 544): the controller ID (bits 15:0)
// on success; on Connect Invalid Parameters, IPO (bits 15:0, the byte offset
// of the bad field) and IATTR (bit 16: 1 = in the Connect data, 0 = in the SQE).
constexpr uint32_t connect_invalid_param(bool in_data, uint16_t offset) {
  return (in_data ? (1u << 16) : 0u) | offset;
}

// Property Set / Get (Base 2.0 Figures 548, 546).
#pragma pack(push, 1)
struct PropertyCmd {
  uint8_t opc;
  uint8_t flags;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd5[19];
  uint8_t sgl1[16];
  uint8_t attrib;  // bits 2:0 size: 0 = 4 bytes, 1 = 8 bytes
  uint8_t rsvd41[3];
  uint32_t ofst;
  uint64_t value;  // Property Set only
  uint8_t rsvd56[8];
};
#pragma pack(pop)
static_assert(sizeof(PropertyCmd) == 64);
static_assert(offsetof(PropertyCmd, ofst) == 44 && offsetof(PropertyCmd, value) == 48);
constexpr uint8_t kPropSize4 = 0, kPropSize8 = 1;

// Fabrics properties (Base 2.0 §3.1.4: the same offsets as the PCIe registers,
// CAP/VS/CC/CSTS/NSSR; 8-byte properties are CAP and the reserved ASQ/ACQ).
constexpr uint32_t kPropCap = kRegCap, kPropVs = kRegVs, kPropCc = kRegCc, kPropCsts = kRegCsts,
                   kPropNssr = kRegNssr;

// Fabrics command status values (SCT 1, Base 2.0 Figure 95 / NVMe-oF 1.1 Figure 13).
namespace sc {
constexpr uint16_t kConnectIncompatibleFormat = status(kSctCommandSpecific, 0x80);
constexpr uint16_t kConnectControllerBusy = status(kSctCommandSpecific, 0x81);
constexpr uint16_t kConnectInvalidParameters = status(kSctCommandSpecific, 0x82);
constexpr uint16_t kConnectRestartDiscovery = status(kSctCommandSpecific, 0x83);
constexpr uint16_t kConnectInvalidHost = status(kSctCommandSpecific, 0x84);
constexpr uint16_t kDiscoverRestart = status(kSctCommandSpecific, 0x90);
constexpr uint16_t kAuthRequired = status(kSctCommandSpecific, 0x91);
// Generic: Transient Transport Error (Base 2.0 Figure 94), e.g. data digest mismatch.
constexpr uint16_t kTransientTransportError = status(kSctGeneric, 0x22);
constexpr uint16_t kCommandInterrupted = status(kSctGeneric, 0x21);
}  // namespace sc

// Discovery (Base 2.0 §5.16.1.23, Figures 261-262).
constexpr const char* kDiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";
constexpr uint8_t kLidDiscovery = 0x70;
constexpr uint8_t kCntrltypeDiscovery = 2, kCntrltypeAdmin = 3;

enum Trtype : uint8_t { kTrtypeRdma = 1, kTrtypeFc = 2, kTrtypeTcp = 3, kTrtypeLoop = 254 };
enum Adrfam : uint8_t { kAdrfamIpv4 = 1, kAdrfamIpv6 = 2, kAdrfamIb = 3, kAdrfamFc = 4 };
enum Subtype : uint8_t {
  kSubtypeDiscoveryReferral = 1,
  kSubtypeNvm = 2,
  kSubtypeCurrentDiscovery = 3
};
// TREQ bits 1:0: 0 not specified, 1 secure channel required, 2 not required.
constexpr uint8_t kTreqNotSpecified = 0, kTreqSecureChannelNotRequired = 2;
// TCP transport specific address subtype (Figure 262 TSAS for TCP): SECTYPE.
constexpr uint8_t kTcpSectypeNone = 0;

struct DiscoveryLogHeader {
  uint64_t genctr;
  uint64_t numrec;
  uint16_t recfmt;
  uint8_t rsvd18[1006];
};
static_assert(sizeof(DiscoveryLogHeader) == 1024);

struct DiscoveryLogEntry {
  uint8_t trtype;
  uint8_t adrfam;
  uint8_t subtype;
  uint8_t treq;
  uint16_t portid;
  uint16_t cntlid;
  uint16_t asqsz;
  uint16_t eflags;
  uint8_t rsvd12[20];
  char trsvcid[32];
  uint8_t rsvd64[192];
  char subnqn[256];
  char traddr[256];
  uint8_t tsas[256];
};
static_assert(sizeof(DiscoveryLogEntry) == 1024);
static_assert(offsetof(DiscoveryLogEntry, trsvcid) == 32 &&
              offsetof(DiscoveryLogEntry, subnqn) == 256 &&
              offsetof(DiscoveryLogEntry, traddr) == 512);

// SGL descriptors used by fabrics (Base 2.0 §4.1.2.x): for NVMe/TCP, data in
// the capsule is a Data Block with subtype Offset (0x01), data moved by
// R2T/C2H is a Transport SGL Data Block (type 5, subtype 0xA).
constexpr uint8_t kSglSubtypeAddress = 0x0, kSglSubtypeOffset = 0x1, kSglSubtypeTransport = 0xa;
constexpr uint8_t sgl_id(uint8_t type, uint8_t subtype) {
  return uint8_t((type << 4) | subtype);
}
constexpr uint8_t kSglIdIncapsule = sgl_id(kSglDataBlock, kSglSubtypeOffset);              // 0x01
constexpr uint8_t kSglIdTransport = sgl_id(kSglTransportDataBlock, kSglSubtypeTransport);  // 0x5a

// Identify Controller NVMe-oF attributes (Base 2.0 Figure 275, bytes 1792..2047).
#pragma pack(push, 1)
struct IdentifyFabricsAttrs {
  uint32_t ioccsz;  // I/O queue command capsule size, 16-byte units
  uint32_t iorcsz;  // I/O queue response capsule size, 16-byte units
  uint16_t icdoff;  // in-capsule data offset, 16-byte units
  uint8_t fcatt;    // bit 0: 1 = static controller model
  uint8_t msdbd;    // max SGL data block descriptors
  uint16_t ofcs;    // optional fabrics commands supported (bit 0: Disconnect)
  uint8_t rsvd[242];
};
#pragma pack(pop)
static_assert(sizeof(IdentifyFabricsAttrs) == 256);

}  // namespace vdpu::nvme
