#include "base/result.h"

namespace vdpu {

const char* errc_name(Errc e) noexcept {
  switch (e) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kExists: return "already exists";
    case Errc::kBusy: return "busy";
    case Errc::kNoMemory: return "out of memory";
    case Errc::kIo: return "I/O error";
    case Errc::kUnsupported: return "not supported";
    case Errc::kState: return "invalid state";
    case Errc::kTimeout: return "timed out";
    case Errc::kProtocol: return "protocol error";
    case Errc::kPermission: return "permission denied";
  }
  return "unknown";
}

}  // namespace vdpu
