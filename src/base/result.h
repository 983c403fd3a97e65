// Errors as values. Every fallible API in vdpu returns Result<T> (or Status =
// Result<void>); exceptions never cross the data path.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace vdpu {

// One error enum for the whole project; modules give the detail in the message.
enum class Errc : int {
  kOk = 0,
  kInvalidArgument,  // a parameter from outside is malformed or out of range
  kNotFound,         // named object does not exist
  kExists,           // named object already exists
  kBusy,             // object in use (claimed, open, attached, driver bound)
  kNoMemory,         // allocation or pool exhausted
  kIo,               // backend or system I/O error
  kUnsupported,      // valid request the implementation does not support
  kState,            // request not valid in the object's current state
  kTimeout,          // an asynchronous operation did not finish in time
  kProtocol,         // a peer violated its protocol
  kPermission,       // caller not allowed
};

const char* errc_name(Errc e) noexcept;

struct Error {
  Errc code = Errc::kOk;
  std::string message;
};

// Result<T>: a T or an Error. Kept minimal on purpose.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                          // NOLINT
  Result(Error e) : v_(std::move(e)) {}                      // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)) {}  // NOLINT
  bool ok() const noexcept { return err_.code == Errc::kOk; }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
};

using Status = Result<void>;

inline Error make_error(Errc c, std::string msg) { return Error{c, std::move(msg)}; }

}  // namespace vdpu

// Propagate an error from an expression returning Result<...>.
#define VDPU_TRY(expr)                                    \
  do {                                                    \
    auto _vdpu_r = (expr);                                \
    if (!_vdpu_r.ok()) return _vdpu_r.error();            \
  } while (0)
