// NVMe wire structures and constants (NVM Express Base Specification 2.0,
// NVM Command Set Specification 1.0, NVMe over PCIe Transport 1.0), with the
// spec's names. Every structure is packed and size-checked. The host and the
// guest are little-endian (x86-64/aarch64 LE; static_assert below), so fields
// are plain integers; bit fields are read through the small accessors here.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vdpu::nvme {

static_assert(std::endian::native == std::endian::little,
              "NVMe structures are little-endian; add byte swapping for BE hosts");

// Little-endian loads/stores into byte buffers (unaligned safe).
inline uint16_t le16(const void* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t le32(const void* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t le64(const void* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
inline void put_le16(void* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_le32(void* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_le64(void* p, uint64_t v) { std::memcpy(p, &v, 8); }
// Bits hi:lo of v.
constexpr uint64_t bits(uint64_t v, unsigned hi, unsigned lo) {
  return (v >> lo) & ((hi - lo == 63) ? ~0ull : ((1ull << (hi - lo + 1)) - 1));
}

// ---------------------------------------------------------------- registers (Base 2.0 §3.1.4)
enum Reg : uint32_t {
  kRegCap = 0x00, kRegVs = 0x08, kRegIntms = 0x0c, kRegIntmc = 0x10, kRegCc = 0x14,
  kRegCsts = 0x1c, kRegNssr = 0x20, kRegAqa = 0x24, kRegAsq = 0x28, kRegAcq = 0x30,
  kRegCmbloc = 0x38, kRegCmbsz = 0x3c, kRegBpinfo = 0x40, kRegBprsel = 0x44, kRegBpmbl = 0x48,
  kRegCmbmsc = 0x50, kRegCmbsts = 0x58, kRegPmrcap = 0xe00, kRegPmrctl = 0xe04,
  kRegPmrsts = 0xe08, kRegDoorbellBase = 0x1000,
};
constexpr uint32_t kRegFileSize = 0x1000;

// CAP fields.
constexpr uint64_t cap_mqes(uint64_t c) { return bits(c, 15, 0); }
constexpr uint64_t cap_dstrd(uint64_t c) { return bits(c, 35, 32); }
constexpr uint64_t cap_mpsmin(uint64_t c) { return bits(c, 51, 48); }
constexpr uint64_t cap_mpsmax(uint64_t c) { return bits(c, 55, 52); }
constexpr uint64_t kCapCqr = 1ull << 16;
constexpr unsigned kCapToShift = 24, kCapCssShift = 37, kCapMpsminShift = 48, kCapMpsmaxShift = 52;
constexpr uint64_t kCapCssNvm = 1ull << 0;      // CAP.CSS bit 0: NVM command set
constexpr uint64_t kCapCssNoIo = 1ull << 7;     // CAP.CSS bit 7: no I/O command set
constexpr uint32_t kNvmeVersion14 = 0x00010400;  // VS 1.4.0

// CC fields.
constexpr uint32_t kCcEn = 1u << 0;
constexpr uint32_t cc_css(uint32_t c) { return uint32_t(bits(c, 6, 4)); }
constexpr uint32_t cc_mps(uint32_t c) { return uint32_t(bits(c, 10, 7)); }
constexpr uint32_t cc_ams(uint32_t c) { return uint32_t(bits(c, 13, 11)); }
constexpr uint32_t cc_shn(uint32_t c) { return uint32_t(bits(c, 15, 14)); }
constexpr uint32_t cc_iosqes(uint32_t c) { return uint32_t(bits(c, 19, 16)); }
constexpr uint32_t cc_iocqes(uint32_t c) { return uint32_t(bits(c, 23, 20)); }
constexpr uint32_t kCcCssNvm = 0, kCcCssAllSupported = 6, kCcCssAdminOnly = 7;
constexpr uint32_t kCcShnNone = 0, kCcShnNormal = 1, kCcShnAbrupt = 2;
// Writable CC bits: EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES (CRIME 24 not supported).
constexpr uint32_t kCcWritableMask = 0x00fffff1;

// CSTS fields.
constexpr uint32_t kCstsRdy = 1u << 0, kCstsCfs = 1u << 1, kCstsNssro = 1u << 4, kCstsPp = 1u << 5;
constexpr unsigned kCstsShstShift = 2;
constexpr uint32_t kCstsShstMask = 3u << 2;
constexpr uint32_t kShstNormal = 0, kShstOccurring = 1, kShstComplete = 2;

// AQA fields (0-based sizes).
constexpr uint32_t aqa_asqs(uint32_t a) { return uint32_t(bits(a, 11, 0)); }
constexpr uint32_t aqa_acqs(uint32_t a) { return uint32_t(bits(a, 27, 16)); }
constexpr uint32_t kAqaMask = 0x0fff0fff;
constexpr uint32_t kNssrReset = 0x4e564d65;  // "NVMe"

// ---------------------------------------------------------------- commands (Base 2.0 §4.2)
struct SqEntry {
  uint8_t opc;
  uint8_t flags;  // FUSE 1:0, PSDT 7:6
  uint16_t cid;
  uint32_t nsid;
  uint32_t cdw2, cdw3;
  uint64_t mptr;
  uint64_t prp1;  // or SGL1 bytes 0..7
  uint64_t prp2;  // or SGL1 bytes 8..15
  uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;

  uint32_t fuse() const { return flags & 3u; }
  uint32_t psdt() const { return (flags >> 6) & 3u; }
};
static_assert(sizeof(SqEntry) == 64);
static_assert(offsetof(SqEntry, prp1) == 24 && offsetof(SqEntry, cdw10) == 40);

constexpr uint32_t kPsdtPrp = 0, kPsdtSglMptrContig = 1, kPsdtSglMptrSgl = 2;

struct CqEntry {
  uint32_t dw0;
  uint32_t dw1;
  uint16_t sqhd;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // P bit 0, SC 8:1, SCT 11:9, CRD 13:12, M 14, DNR 15
};
static_assert(sizeof(CqEntry) == 16);

constexpr uint32_t kSqeSizeLog2 = 6, kCqeSizeLog2 = 4;

// Status: SCT in bits 10:8 and SC in bits 7:0 of our 16-bit code; the CQE
// status field is (code << 1) | phase, plus DNR (bit 15 of the field).
enum Sct : uint16_t { kSctGeneric = 0, kSctCommandSpecific = 1, kSctMediaError = 2, kSctPath = 3 };
constexpr uint16_t status(Sct sct, uint8_t sc) { return uint16_t((sct << 8) | sc); }
constexpr uint16_t kStatusDnr = 1u << 14;  // in our code: lands on bit 15 after the shift

namespace sc {  // Generic Command Status (Base 2.0 Figure 94)
constexpr uint16_t kSuccess = status(kSctGeneric, 0x00);
constexpr uint16_t kInvalidOpcode = status(kSctGeneric, 0x01);
constexpr uint16_t kInvalidField = status(kSctGeneric, 0x02);
constexpr uint16_t kCommandIdConflict = status(kSctGeneric, 0x03);
constexpr uint16_t kDataTransferError = status(kSctGeneric, 0x04);
constexpr uint16_t kAbortedPowerLoss = status(kSctGeneric, 0x05);
constexpr uint16_t kInternalError = status(kSctGeneric, 0x06);
constexpr uint16_t kAbortRequested = status(kSctGeneric, 0x07);
constexpr uint16_t kAbortedSqDeletion = status(kSctGeneric, 0x08);
constexpr uint16_t kAbortedFailedFused = status(kSctGeneric, 0x09);
constexpr uint16_t kAbortedMissingFused = status(kSctGeneric, 0x0a);
constexpr uint16_t kInvalidNamespaceOrFormat = status(kSctGeneric, 0x0b);
constexpr uint16_t kCommandSequenceError = status(kSctGeneric, 0x0c);
constexpr uint16_t kInvalidSglSegmentDescriptor = status(kSctGeneric, 0x0d);
constexpr uint16_t kInvalidNumberOfSglDescriptors = status(kSctGeneric, 0x0e);
constexpr uint16_t kDataSglLengthInvalid = status(kSctGeneric, 0x0f);
constexpr uint16_t kMetadataSglLengthInvalid = status(kSctGeneric, 0x10);
constexpr uint16_t kSglDescriptorTypeInvalid = status(kSctGeneric, 0x11);
constexpr uint16_t kInvalidUseOfCmb = status(kSctGeneric, 0x12);
constexpr uint16_t kPrpOffsetInvalid = status(kSctGeneric, 0x13);
constexpr uint16_t kSglOffsetInvalid = status(kSctGeneric, 0x16);
constexpr uint16_t kKeepAliveTimerExpired = status(kSctGeneric, 0x19);
constexpr uint16_t kKeepAliveTimeoutInvalid = status(kSctGeneric, 0x1a);
constexpr uint16_t kLbaOutOfRange = status(kSctGeneric, 0x80);
constexpr uint16_t kCapacityExceeded = status(kSctGeneric, 0x81);
constexpr uint16_t kNamespaceNotReady = status(kSctGeneric, 0x82);
// Command Specific Status (Base 2.0 Figure 95; NVM 1.0 Figure 18)
constexpr uint16_t kCompletionQueueInvalid = status(kSctCommandSpecific, 0x00);
constexpr uint16_t kInvalidQueueIdentifier = status(kSctCommandSpecific, 0x01);
constexpr uint16_t kInvalidQueueSize = status(kSctCommandSpecific, 0x02);
constexpr uint16_t kAbortCommandLimitExceeded = status(kSctCommandSpecific, 0x03);
constexpr uint16_t kAsyncEventRequestLimitExceeded = status(kSctCommandSpecific, 0x05);
constexpr uint16_t kInvalidFirmwareSlot = status(kSctCommandSpecific, 0x06);
constexpr uint16_t kInvalidInterruptVector = status(kSctCommandSpecific, 0x08);
constexpr uint16_t kInvalidLogPage = status(kSctCommandSpecific, 0x09);
constexpr uint16_t kInvalidQueueDeletion = status(kSctCommandSpecific, 0x0c);
constexpr uint16_t kFeatureIdNotSaveable = status(kSctCommandSpecific, 0x0d);
constexpr uint16_t kFeatureNotChangeable = status(kSctCommandSpecific, 0x0e);
constexpr uint16_t kFeatureNotNamespaceSpecific = status(kSctCommandSpecific, 0x0f);
constexpr uint16_t kConflictingAttributes = status(kSctCommandSpecific, 0x80);
// Media and Data Integrity Errors (Base 2.0 Figure 96)
constexpr uint16_t kWriteFault = status(kSctMediaError, 0x80);
constexpr uint16_t kUnrecoveredReadError = status(kSctMediaError, 0x81);
constexpr uint16_t kCompareFailure = status(kSctMediaError, 0x85);
}  // namespace sc

constexpr uint16_t status_sct(uint16_t code) { return (code >> 8) & 7; }
constexpr uint16_t status_sc(uint16_t code) { return code & 0xff; }
// The 15-bit CQE status (without the phase bit) for a status code.
constexpr uint16_t cqe_status(uint16_t code) {
  return uint16_t(((code & 0x7ff) << 1) | ((code & kStatusDnr) ? 0x8000 : 0));
}

// Admin opcodes (Base 2.0 Figure 138).
enum AdminOpc : uint8_t {
  kAdmDeleteIoSq = 0x00, kAdmCreateIoSq = 0x01, kAdmGetLogPage = 0x02, kAdmDeleteIoCq = 0x04,
  kAdmCreateIoCq = 0x05, kAdmIdentify = 0x06, kAdmAbort = 0x08, kAdmSetFeatures = 0x09,
  kAdmGetFeatures = 0x0a, kAdmAsyncEventRequest = 0x0c, kAdmNsManagement = 0x0d,
  kAdmFirmwareCommit = 0x10, kAdmFirmwareDownload = 0x11, kAdmNsAttachment = 0x15,
  kAdmKeepAlive = 0x18, kAdmDoorbellBufferConfig = 0x7c, kAdmFormatNvm = 0x80,
};
// NVM I/O opcodes (NVM 1.0 Figure 16).
enum IoOpc : uint8_t {
  kIoFlush = 0x00, kIoWrite = 0x01, kIoRead = 0x02, kIoWriteUncorrectable = 0x04,
  kIoCompare = 0x05, kIoWriteZeroes = 0x08, kIoDatasetManagement = 0x09, kIoVerify = 0x0c,
};

// Commands Supported and Effects entry bits (Base 2.0 Figure 210).
constexpr uint32_t kCseCsupp = 1u << 0, kCseLbcc = 1u << 1, kCseNcc = 1u << 2,
                   kCseNic = 1u << 3, kCseCcc = 1u << 4;

// Identify CNS values (Base 2.0 Figure 273).
enum Cns : uint8_t {
  kCnsNamespace = 0x00, kCnsController = 0x01, kCnsActiveNsList = 0x02,
  kCnsNsIdDescriptors = 0x03, kCnsCsiNamespace = 0x05, kCnsCsiController = 0x06,
  kCnsCsiActiveNsList = 0x07, kCnsCsIndependentNamespace = 0x08, kCnsIoCommandSetList = 0x1c,
};
constexpr uint8_t kCsiNvm = 0x00;

// Feature identifiers (Base 2.0 Figure 317).
enum Fid : uint8_t {
  kFidArbitration = 0x01, kFidPowerManagement = 0x02, kFidTemperatureThreshold = 0x04,
  kFidErrorRecovery = 0x05, kFidVolatileWriteCache = 0x06, kFidNumberOfQueues = 0x07,
  kFidInterruptCoalescing = 0x08, kFidInterruptVectorConfig = 0x09, kFidWriteAtomicity = 0x0a,
  kFidAsyncEventConfig = 0x0b, kFidKeepAliveTimer = 0x0f,
};
enum Sel : uint8_t { kSelCurrent = 0, kSelDefault = 1, kSelSaved = 2, kSelSupported = 3 };
constexpr uint32_t kFeatCapSaveable = 1u << 0, kFeatCapNsSpecific = 1u << 1,
                   kFeatCapChangeable = 1u << 2;

// Log page identifiers (Base 2.0 Figure 202).
enum Lid : uint8_t {
  kLidErrorInformation = 0x01, kLidSmartHealth = 0x02, kLidFirmwareSlot = 0x03,
  kLidChangedNsList = 0x04, kLidCommandsSupported = 0x05,
};

// Asynchronous events (Base 2.0 §5.2, Figures 146-150).
enum AerType : uint8_t { kAerError = 0, kAerSmart = 1, kAerNotice = 2, kAerIoCmdSet = 6, kAerVendor = 7 };
enum AerInfo : uint8_t {
  kAerErrInvalidDoorbellRegister = 0x00, kAerErrInvalidDoorbellValue = 0x01,
  kAerNoticeNsAttrChanged = 0x00,
};
constexpr uint32_t kAecNsAttrNotices = 1u << 8;  // Async Event Config bit 8
constexpr uint32_t kOaesNsAttrNotices = 1u << 8;

// ---------------------------------------------------------------- SGL (Base 2.0 §4.1.2)
struct SglDescriptor {
  uint64_t addr;
  uint32_t len;
  uint8_t rsvd[3];
  uint8_t id;  // type 7:4, subtype 3:0
  uint32_t type() const { return id >> 4; }
};
static_assert(sizeof(SglDescriptor) == 16);
enum SglType : uint8_t {
  kSglDataBlock = 0, kSglBitBucket = 1, kSglSegment = 2, kSglLastSegment = 3,
  kSglKeyedDataBlock = 4, kSglTransportDataBlock = 5,
};

// ---------------------------------------------------------------- identify structures
struct PowerStateDescriptor {
  uint16_t mp;  // max power, centiwatts
  uint8_t rsvd2;
  uint8_t flags;  // MXPS 0, NOPS 1
  uint32_t enlat, exlat;
  uint8_t rrt, rrl, rwt, rwl;
  uint16_t idlp;
  uint8_t ips_rsvd;
  uint8_t rsvd19;
  uint16_t actp;
  uint8_t apw_aps;
  uint8_t rsvd23[9];
};
static_assert(sizeof(PowerStateDescriptor) == 32);

// Identify Controller data structure (Base 2.0 Figure 275).
#pragma pack(push, 1)
struct IdentifyController {
  uint16_t vid;
  uint16_t ssvid;
  char sn[20];
  char mn[40];
  char fr[8];
  uint8_t rab;
  uint8_t ieee[3];
  uint8_t cmic;
  uint8_t mdts;
  uint16_t cntlid;
  uint32_t ver;
  uint32_t rtd3r;
  uint32_t rtd3e;
  uint32_t oaes;
  uint32_t ctratt;
  uint16_t rrls;
  uint8_t rsvd102[9];
  uint8_t cntrltype;
  uint8_t fguid[16];
  uint16_t crdt[3];
  uint8_t rsvd134[119];
  uint8_t nvmsr;
  uint8_t vwci;
  uint8_t mec;
  uint16_t oacs;
  uint8_t acl;
  uint8_t aerl;
  uint8_t frmw;
  uint8_t lpa;
  uint8_t elpe;
  uint8_t npss;
  uint8_t avscc;
  uint8_t apsta;
  uint16_t wctemp;
  uint16_t cctemp;
  uint16_t mtfa;
  uint32_t hmpre;
  uint32_t hmmin;
  uint8_t tnvmcap[16];
  uint8_t unvmcap[16];
  uint32_t rpmbs;
  uint16_t edstt;
  uint8_t dsto;
  uint8_t fwug;
  uint16_t kas;
  uint16_t hctma;
  uint16_t mntmt;
  uint16_t mxtmt;
  uint32_t sanicap;
  uint32_t hmminds;
  uint16_t hmmaxd;
  uint16_t nsetidmax;
  uint16_t endgidmax;
  uint8_t anatt;
  uint8_t anacap;
  uint32_t anagrpmax;
  uint32_t nanagrpid;
  uint32_t pels;
  uint16_t domainid;
  uint8_t rsvd358[10];
  uint8_t megcap[16];
  uint8_t rsvd384[128];
  uint8_t sqes;
  uint8_t cqes;
  uint16_t maxcmd;
  uint32_t nn;
  uint16_t oncs;
  uint16_t fuses;
  uint8_t fna;
  uint8_t vwc;
  uint16_t awun;
  uint16_t awupf;
  uint8_t icsvscc;
  uint8_t nwpc;
  uint16_t acwu;
  uint16_t cdfs;
  uint32_t sgls;
  uint32_t mnan;
  uint8_t maxdna[16];
  uint32_t maxcna;
  uint8_t rsvd564[204];
  char subnqn[256];
  uint8_t rsvd1024[768];
  uint8_t nvmof[256];
  PowerStateDescriptor psd[32];
  uint8_t vs[1024];
};
#pragma pack(pop)
static_assert(sizeof(IdentifyController) == 4096);
static_assert(offsetof(IdentifyController, mdts) == 77);
static_assert(offsetof(IdentifyController, oaes) == 92);
static_assert(offsetof(IdentifyController, cntrltype) == 111);
static_assert(offsetof(IdentifyController, oacs) == 256);
static_assert(offsetof(IdentifyController, kas) == 320);
static_assert(offsetof(IdentifyController, sqes) == 512);
static_assert(offsetof(IdentifyController, oncs) == 520);
static_assert(offsetof(IdentifyController, vwc) == 525);
static_assert(offsetof(IdentifyController, sgls) == 536);
static_assert(offsetof(IdentifyController, mnan) == 540);
static_assert(offsetof(IdentifyController, subnqn) == 768);
static_assert(offsetof(IdentifyController, psd) == 2048);

constexpr uint16_t kOncsCompare = 1u << 0, kOncsWriteUncorrectable = 1u << 1,
                   kOncsDsm = 1u << 2, kOncsWriteZeroes = 1u << 3, kOncsSaveSelect = 1u << 4;
constexpr uint8_t kLpaCommandEffects = 1u << 1, kLpaExtendedData = 1u << 2;
constexpr uint32_t kSglsSupportedNoAlign = 1u;
constexpr uint8_t kCntrltypeIo = 1;
constexpr uint16_t kFusesCompareWrite = 1u << 0;

// LBA Format (NVM 1.0 Figure 98).
struct LbaFormat {
  uint16_t ms;
  uint8_t lbads;
  uint8_t rp;
};
static_assert(sizeof(LbaFormat) == 4);

// Identify Namespace data structure, NVM Command Set (NVM 1.0 Figure 97).
#pragma pack(push, 1)
struct IdentifyNamespace {
  uint64_t nsze;
  uint64_t ncap;
  uint64_t nuse;
  uint8_t nsfeat;
  uint8_t nlbaf;
  uint8_t flbas;
  uint8_t mc;
  uint8_t dpc;
  uint8_t dps;
  uint8_t nmic;
  uint8_t rescap;
  uint8_t fpi;
  uint8_t dlfeat;
  uint16_t nawun;
  uint16_t nawupf;
  uint16_t nacwu;
  uint16_t nabsn;
  uint16_t nabo;
  uint16_t nabspf;
  uint16_t noiob;
  uint8_t nvmcap[16];
  uint16_t npwg;
  uint16_t npwa;
  uint16_t npdg;
  uint16_t npda;
  uint16_t nows;
  uint16_t mssrl;
  uint32_t mcl;
  uint8_t msrc;
  uint8_t rsvd81;
  uint8_t nulbaf;
  uint8_t rsvd83[9];
  uint32_t anagrpid;
  uint8_t rsvd96[3];
  uint8_t nsattr;
  uint16_t nvmsetid;
  uint16_t endgid;
  uint8_t nguid[16];
  uint8_t eui64[8];
  LbaFormat lbaf[64];
  uint8_t vs[3712];
};
#pragma pack(pop)
static_assert(sizeof(IdentifyNamespace) == 4096);
static_assert(offsetof(IdentifyNamespace, nsfeat) == 24);
static_assert(offsetof(IdentifyNamespace, dlfeat) == 33);
static_assert(offsetof(IdentifyNamespace, anagrpid) == 92);
static_assert(offsetof(IdentifyNamespace, nguid) == 104);
static_assert(offsetof(IdentifyNamespace, lbaf) == 128);

// I/O Command Set specific Identify Controller, NVM (NVM 1.0 Figure 100).
struct IdentifyControllerNvm {
  uint8_t vsl;
  uint8_t wzsl;
  uint8_t wusl;
  uint8_t dmrl;
  uint32_t dmrsl;
  uint64_t dmsl;
  uint8_t rsvd[4080];
};
static_assert(sizeof(IdentifyControllerNvm) == 4096);

// Namespace Identification Descriptor types (Base 2.0 Figure 280).
enum Nidt : uint8_t { kNidtEui64 = 1, kNidtNguid = 2, kNidtUuid = 3, kNidtCsi = 4 };

// ---------------------------------------------------------------- log pages
struct ErrorInformationEntry {  // Base 2.0 Figure 205
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // status field with phase tag in bit 0
  uint16_t param_error_location;
  uint64_t lba;
  uint32_t nsid;
  uint8_t vs;
  uint8_t trtype;
  uint8_t rsvd30[2];
  uint64_t csi;
  uint16_t ttsi;
  uint8_t rsvd42[22];
};
static_assert(sizeof(ErrorInformationEntry) == 64);

#pragma pack(push, 1)
struct SmartHealthLog {  // Base 2.0 Figure 207
  uint8_t critical_warning;
  uint16_t composite_temperature;
  uint8_t available_spare;
  uint8_t available_spare_threshold;
  uint8_t percentage_used;
  uint8_t endurance_group_critical_warning;
  uint8_t rsvd7[25];
  uint64_t data_units_read[2];
  uint64_t data_units_written[2];
  uint64_t host_read_commands[2];
  uint64_t host_write_commands[2];
  uint64_t controller_busy_time[2];
  uint64_t power_cycles[2];
  uint64_t power_on_hours[2];
  uint64_t unsafe_shutdowns[2];
  uint64_t media_errors[2];
  uint64_t num_error_info_log_entries[2];
  uint32_t warning_temp_time;
  uint32_t critical_temp_time;
  uint16_t temp_sensor[8];
  uint32_t thm_temp1_trans_count, thm_temp2_trans_count;
  uint32_t thm_temp1_total_time, thm_temp2_total_time;
  uint8_t rsvd232[280];
};
#pragma pack(pop)
static_assert(sizeof(SmartHealthLog) == 512);
static_assert(offsetof(SmartHealthLog, data_units_read) == 32);
static_assert(offsetof(SmartHealthLog, warning_temp_time) == 192);

struct FirmwareSlotLog {  // Base 2.0 Figure 209
  uint8_t afi;
  uint8_t rsvd1[7];
  char frs[7][8];
  uint8_t rsvd64[448];
};
static_assert(sizeof(FirmwareSlotLog) == 512);

struct CommandsSupportedLog {  // Base 2.0 Figure 210
  uint32_t acs[256];
  uint32_t iocs[256];
  uint8_t rsvd[2048];
};
static_assert(sizeof(CommandsSupportedLog) == 4096);

struct DsmRange {  // NVM 1.0 Figure 39
  uint32_t cattr;
  uint32_t nlb;
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);

}  // namespace vdpu::nvme
