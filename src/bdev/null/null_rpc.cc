// JSON-RPC methods of the null bdev: SPDK's bdev_null_create/delete and SNAP's
// snap_bdev_null_*_dbg plugin methods (snap-storage.md §12). Parameter checks
// (types, required, ranges) come from src/rpc/schema/bdev.json.
#include <cmath>

#include "bdev/null/null.h"
#include "rpc/rpc.h"

namespace vdpu::bdev::null {
namespace {

using rpc::json;
using rpc::Responder;

void bdev_null_create(const json& p, Responder r) {
  Options o;
  o.name = p.at("name").get<std::string>();
  if (p.contains("uuid")) o.uuid = p["uuid"].get<std::string>();
  o.num_blocks = p.at("num_blocks").get<uint64_t>();
  o.block_size = uint32_t(p.at("block_size").get<uint64_t>());
  auto b = create(o);
  if (!b) return r.error(b.error());
  r.result((*b)->name());
}
VDPU_RPC_REGISTER("bdev_null_create", bdev_null_create, rpc::kRuntime);

void bdev_null_delete(const json& p, Responder r) {
  auto s = destroy(p.at("name").get<std::string>(), [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("bdev_null_delete", bdev_null_delete, rpc::kRuntime);

// snap_bdev_null_create_dbg <name> <size_MB> <block_size> (§12).
void snap_bdev_null_create_dbg(const json& p, Responder r) {
  Options o;
  o.name = p.at("bdev").get<std::string>();
  o.block_size = uint32_t(p.at("block_size").get<uint64_t>());
  double mb = p.at("size_mb").get<double>();
  double blocks = o.block_size ? mb * 1024.0 * 1024.0 / o.block_size : 0;
  if (!std::isfinite(blocks) || blocks < 1 || blocks > 9.0e18)
    return r.error(make_error(Errc::kInvalidArgument, "size must be at least one block"));
  o.num_blocks = uint64_t(blocks);
  auto b = create(o);
  if (!b) return r.error(b.error());
  r.result((*b)->name());
}
VDPU_RPC_REGISTER("snap_bdev_null_create_dbg", snap_bdev_null_create_dbg, rpc::kRuntime);

void snap_bdev_null_destroy_dbg(const json& p, Responder r) {
  auto s = destroy(p.at("bdev").get<std::string>(), [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("snap_bdev_null_destroy_dbg", snap_bdev_null_destroy_dbg, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::bdev::null
