// JSON-RPC glue of the emulation manager (spec snap-storage §4.1).
#include "rpc/rpc.h"
#include "service/emu/emu_manager.h"
#include "service/emu/params.h"

namespace vdpu::service::emu {
namespace {

// emulation_function_list [-a/--all] (§4.1): every PF with its VFs; the
// `socket` key is our extension (where the host connects).
void function_list(const json& p, rpc::Responder r) {
  auto all = get_flag(p, "all");
  if (!all) return r.error(all.error());
  r.result(manager().list(*all));
}

VDPU_RPC_REGISTER("emulation_function_list", function_list, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::service::emu
