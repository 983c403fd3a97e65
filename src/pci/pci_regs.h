// PCI / PCI Express configuration-space constants (PCI Local Bus 3.0 §6,
// PCI Express Base 4.0 §7). Names follow the specs (and Linux pci_regs.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace vdpu::pci {

// Type 0 header (PCI 3.0 §6.1).
inline constexpr uint16_t kVendorId = 0x00;
inline constexpr uint16_t kDeviceId = 0x02;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kRevisionId = 0x08;
inline constexpr uint16_t kClassProg = 0x09;  // prog-if, subclass, base class (24 bits)
inline constexpr uint16_t kCacheLineSize = 0x0c;
inline constexpr uint16_t kLatencyTimer = 0x0d;
inline constexpr uint16_t kHeaderType = 0x0e;
inline constexpr uint16_t kBaseAddress0 = 0x10;
inline constexpr uint16_t kSubsystemVendorId = 0x2c;
inline constexpr uint16_t kSubsystemId = 0x2e;
inline constexpr uint16_t kRomAddress = 0x30;
inline constexpr uint16_t kCapabilityList = 0x34;
inline constexpr uint16_t kInterruptLine = 0x3c;
inline constexpr uint16_t kInterruptPin = 0x3d;
inline constexpr uint16_t kStdHeaderSize = 0x40;
inline constexpr uint16_t kConfigSpaceSize = 0x100;
inline constexpr uint16_t kExtConfigSpaceSize = 0x1000;

// Command register bits (PCI 3.0 §6.2.2).
inline constexpr uint16_t kCommandIo = 0x0001;
inline constexpr uint16_t kCommandMemory = 0x0002;
inline constexpr uint16_t kCommandMaster = 0x0004;
inline constexpr uint16_t kCommandParity = 0x0040;
inline constexpr uint16_t kCommandSerr = 0x0100;
inline constexpr uint16_t kCommandIntxDisable = 0x0400;

// Status register bits (PCI 3.0 §6.2.3). Error bits are RW1C.
inline constexpr uint16_t kStatusIntx = 0x0008;
inline constexpr uint16_t kStatusCapList = 0x0010;
inline constexpr uint16_t kStatusParity = 0x0100;          // master data parity error
inline constexpr uint16_t kStatusSigTargetAbort = 0x0800;
inline constexpr uint16_t kStatusRecTargetAbort = 0x1000;
inline constexpr uint16_t kStatusRecMasterAbort = 0x2000;
inline constexpr uint16_t kStatusSigSystemError = 0x4000;
inline constexpr uint16_t kStatusDetectedParity = 0x8000;
inline constexpr uint16_t kStatusRw1cMask = kStatusParity | kStatusSigTargetAbort |
                                            kStatusRecTargetAbort | kStatusRecMasterAbort |
                                            kStatusSigSystemError | kStatusDetectedParity;

// BAR low bits (PCI 3.0 §6.2.5.1).
inline constexpr uint32_t kBarSpaceIo = 0x1;
inline constexpr uint32_t kBarMemType64 = 0x4;
inline constexpr uint32_t kBarMemPrefetch = 0x8;

// Capability IDs (PCI Code and ID Assignment §2).
inline constexpr uint8_t kCapIdPm = 0x01;
inline constexpr uint8_t kCapIdVpd = 0x03;
inline constexpr uint8_t kCapIdMsi = 0x05;
inline constexpr uint8_t kCapIdVendor = 0x09;
inline constexpr uint8_t kCapIdExp = 0x10;
inline constexpr uint8_t kCapIdMsix = 0x11;
// Extended capability IDs (PCIe 4.0 §7.6).
inline constexpr uint16_t kExtCapIdSriov = 0x0010;

// Power management capability (PCI PM 1.2 §3.2): PMC at +2, PMCSR at +4.
inline constexpr uint16_t kPmSizeof = 8;
inline constexpr uint16_t kPmPmc = 2;
inline constexpr uint16_t kPmCtrl = 4;
inline constexpr uint16_t kPmCtrlStateMask = 0x0003;
inline constexpr uint16_t kPmCtrlNoSoftReset = 0x0008;

// PCI Express capability, endpoint (PCIe 4.0 §7.5.3), v2 layout 0x3c bytes.
inline constexpr uint16_t kExpSizeof = 0x3c;
inline constexpr uint16_t kExpFlags = 0x02;
inline constexpr uint16_t kExpDevCap = 0x04;
inline constexpr uint16_t kExpDevCtl = 0x08;
inline constexpr uint16_t kExpDevSta = 0x0a;
inline constexpr uint16_t kExpLnkCap = 0x0c;
inline constexpr uint16_t kExpLnkCtl = 0x10;
inline constexpr uint16_t kExpLnkSta = 0x12;
inline constexpr uint16_t kExpDevCap2 = 0x24;
inline constexpr uint16_t kExpDevCtl2 = 0x28;
inline constexpr uint16_t kExpFlagsVersion2 = 0x0002;
inline constexpr uint16_t kExpTypeEndpoint = 0x0 << 4;
inline constexpr uint32_t kExpDevCapFlr = 1u << 28;         // Function Level Reset Capability
inline constexpr uint16_t kExpDevCtlBcrFlr = 0x8000;        // Initiate Function Level Reset
inline constexpr uint16_t kExpDevStaRw1cMask = 0x000f;      // CED, NFED, FED, URD

// MSI-X capability (PCI 3.0 §6.8.2): Message Control at +2, Table at +4, PBA at +8.
inline constexpr uint16_t kMsixSizeof = 12;
inline constexpr uint16_t kMsixFlags = 2;
inline constexpr uint16_t kMsixTable = 4;
inline constexpr uint16_t kMsixPba = 8;
inline constexpr uint16_t kMsixFlagsQsize = 0x07ff;   // Table Size, N-1
inline constexpr uint16_t kMsixFlagsMaskAll = 0x4000;  // Function Mask
inline constexpr uint16_t kMsixFlagsEnable = 0x8000;   // MSI-X Enable
inline constexpr uint32_t kMsixBirMask = 0x7;
// MSI-X table entry (PCI 3.0 §6.8.2.6): addr lo, addr hi, data, vector control.
inline constexpr uint32_t kMsixEntrySize = 16;
inline constexpr uint32_t kMsixEntryVectorCtrl = 12;
inline constexpr uint32_t kMsixEntryCtrlMaskbit = 0x1;

// VPD capability (PCI 3.0 §6.4, Appendix I): address at +2 (bit 15 = F), data at +4.
inline constexpr uint16_t kVpdSizeof = 8;
inline constexpr uint16_t kVpdAddr = 2;
inline constexpr uint16_t kVpdData = 4;
inline constexpr uint16_t kVpdAddrF = 0x8000;

// SR-IOV extended capability (PCIe 4.0 §9.3.3), 0x40 bytes.
inline constexpr uint16_t kSriovSizeof = 0x40;
inline constexpr uint16_t kSriovCap = 0x04;
inline constexpr uint16_t kSriovCtrl = 0x08;
inline constexpr uint16_t kSriovStatus = 0x0a;
inline constexpr uint16_t kSriovInitialVf = 0x0c;
inline constexpr uint16_t kSriovTotalVf = 0x0e;
inline constexpr uint16_t kSriovNumVf = 0x10;
inline constexpr uint16_t kSriovFuncLink = 0x12;
inline constexpr uint16_t kSriovVfOffset = 0x14;
inline constexpr uint16_t kSriovVfStride = 0x16;
inline constexpr uint16_t kSriovVfDid = 0x1a;
inline constexpr uint16_t kSriovSupPgsize = 0x1c;
inline constexpr uint16_t kSriovSysPgsize = 0x20;
inline constexpr uint16_t kSriovBar0 = 0x24;
inline constexpr uint16_t kSriovCtrlVfe = 0x0001;  // VF Enable
inline constexpr uint16_t kSriovCtrlMse = 0x0008;  // VF Memory Space Enable

// Little-endian accessors for byte buffers holding spec structures.
inline uint16_t le16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t le32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t le64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
inline void put_le16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_le32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_le64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vdpu assumes a little-endian host");

}  // namespace vdpu::pci
