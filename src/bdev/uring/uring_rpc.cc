// JSON-RPC methods of the uring bdev (SPDK's bdev_uring_create/delete).
// Parameter checks come from src/rpc/schema/bdev.json.
#include "bdev/uring/uring.h"
#include "rpc/rpc.h"

namespace vdpu::bdev::uring {
namespace {

using rpc::json;
using rpc::Responder;

void bdev_uring_create(const json& p, Responder r) {
  Options o;
  o.name = p.at("name").get<std::string>();
  o.filename = p.at("filename").get<std::string>();
  if (p.contains("block_size")) o.block_size = uint32_t(p["block_size"].get<uint64_t>());
  if (p.contains("uuid")) o.uuid = p["uuid"].get<std::string>();
  auto b = create(o);
  if (!b) return r.error(b.error());
  r.result((*b)->name());
}
VDPU_RPC_REGISTER("bdev_uring_create", bdev_uring_create, rpc::kRuntime);

void bdev_uring_delete(const json& p, Responder r) {
  auto s = destroy(p.at("name").get<std::string>(), [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("bdev_uring_delete", bdev_uring_delete, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::bdev::uring
