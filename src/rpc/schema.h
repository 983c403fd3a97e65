// The RPC method schemas (src/rpc/schema/*.json, format in docs/rpc-schema.md):
// the parsed model, and the validation the server applies to every request.
// The CLI (vdpu_rpc_cli) builds its flags from the same model.
//
// Threads: Registry::get() parses the embedded files once (thread-safe static
// init); afterwards the registry is read-only except add_file(), which is for
// start-up and tests (main thread, before the server runs).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vdpu::rpc::schema {

using json = nlohmann::json;

enum class Type { kString, kInt, kUint, kNumber, kBool, kArray, kObject, kAny };
const char* type_name(Type t);

struct Param {
  std::string name;      // JSON key
  std::string help;
  Type type = Type::kString;
  bool required = false;
  json default_value;    // null: no default
  json min, max;         // null: unbounded (numbers only)
  std::vector<json> enum_values;
  std::vector<std::string> aliases;  // other accepted JSON keys
  std::string short_opt;             // CLI short option without the dash ("b", "sn")
  bool positional = false;           // CLI positional argument
  std::string cli_name;              // CLI long option when it differs from name
  bool cli_store_false = false;      // bool: the bare CLI flag sends false (rpc.py store_false)
};

// State bits as in rpc.h (kStartup = 1, kRuntime = 2).
// The service a schema file describes (its top-level "service" field): which
// daemon serves its methods and which CLI offers them. Method names are
// unique across all services (Registry::add_file refuses a duplicate), so
// a generic virtnet name can never shadow an SPDK/SNAP one.
inline constexpr const char* kServiceSnap = "snap";        // vdpu-snap; spdk_rpc / snap_rpc
inline constexpr const char* kServiceVirtnet = "virtnet";  // vdpu-virtnet; virtnet CLI

struct Method {
  std::string name;
  std::string help;
  std::string file;  // schema file it came from
  std::string service = kServiceSnap;
  uint32_t states = 2;
  std::vector<std::string> aliases;  // other method names (CLI lookup, docs)
  std::vector<Param> params;
  // CLI-only part.
  std::vector<Param> cli_extra;
  std::string cli_transform;
  std::vector<std::string> cli_positionals;  // explicit positional order (optional)

  const Param* find_param(std::string_view name) const;
};

// Parses one schema file. Errors: kInvalidArgument naming the file, method and
// field.
Result<std::vector<Method>> parse_file(std::string_view file, std::string_view text);

// Validates request params against m: params must be null (no params) or an
// object. Renames aliases to their canonical key, converts 0/1 to bool for
// bool params (spec snap-storage §2), integral doubles to integers, applies
// defaults, and refuses unknown, missing, mistyped, out-of-range or
// non-enumerated parameters. Returns the normalized params object.
// Errors: kInvalidArgument with a message naming the parameter.
Result<json> validate(const Method& m, const json& params);

// Checks one value against a parameter's type/min/max/enum and normalizes it.
Result<json> check_value(const Param& p, const json& v);

class Registry {
 public:
  // The registry of the embedded schema files.
  static Registry& get();

  // Adds the methods of one file (start-up / tests). Duplicate method names
  // are errors.
  Status add_file(std::string_view file, std::string_view text);
  // Method by name or method alias, or nullptr.
  const Method* find(std::string_view name) const;
  // The same, only among the methods of one service (kServiceSnap ...).
  const Method* find(std::string_view name, std::string_view service) const;
  const std::vector<Method>& methods() const { return methods_; }
  // Problems found while loading the embedded files (empty when all is well).
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<Method> methods_;
  std::vector<std::string> errors_;
};

}  // namespace vdpu::rpc::schema
