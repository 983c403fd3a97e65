// JSON-RPC methods of the malloc bdev: SPDK's bdev_malloc_create/delete and
// SNAP's snap_bdev_malloc_* plugin methods (snap-storage.md §12). Parameter
// checks (types, required, ranges) are done by the server from
// src/rpc/schema/bdev.json; the handlers check the rest.
#include <cmath>

#include "bdev/malloc/malloc.h"
#include "rpc/rpc.h"

namespace vdpu::bdev::malloc {
namespace {

using rpc::json;
using rpc::Responder;

std::string str(const json& p, const char* k) { return p.contains(k) ? p[k].get<std::string>() : ""; }

void bdev_malloc_create(const json& p, Responder r) {
  Options o;
  o.name = str(p, "name");
  o.uuid = str(p, "uuid");
  o.num_blocks = p.at("num_blocks").get<uint64_t>();
  o.block_size = uint32_t(p.at("block_size").get<uint64_t>());
  if (p.contains("optimal_io_boundary"))
    o.optimal_io_boundary = uint32_t(p["optimal_io_boundary"].get<uint64_t>());
  auto b = create(o);
  if (!b) return r.error(b.error());
  r.result((*b)->name());
}
VDPU_RPC_REGISTER("bdev_malloc_create", bdev_malloc_create, rpc::kRuntime);

void bdev_malloc_delete(const json& p, Responder r) {
  auto s = destroy(p.at("name").get<std::string>(), [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("bdev_malloc_delete", bdev_malloc_delete, rpc::kRuntime);

// size_mb (MiB) -> blocks; error when not a positive whole number of blocks.
Result<uint64_t> mb_to_blocks(double mb, uint32_t bs) {
  if (!(mb > 0) || !std::isfinite(mb) || bs == 0)
    return make_error(Errc::kInvalidArgument, "size must be greater than 0");
  double blocks = mb * 1024.0 * 1024.0 / bs;
  if (blocks < 1 || blocks > 9.0e18) return make_error(Errc::kInvalidArgument, "size out of range");
  return uint64_t(blocks);
}

// snap_bdev_malloc_create --bdev <name> <size_MB> <block_size> (§12).
void snap_bdev_malloc_create(const json& p, Responder r) {
  Options o;
  o.name = p.at("bdev").get<std::string>();
  o.block_size = uint32_t(p.at("block_size").get<uint64_t>());
  auto nb = mb_to_blocks(p.at("size_mb").get<double>(), o.block_size);
  if (!nb) return r.error(nb.error());
  o.num_blocks = *nb;
  auto b = create(o);
  if (!b) return r.error(b.error());
  r.result((*b)->name());
}
VDPU_RPC_REGISTER("snap_bdev_malloc_create", snap_bdev_malloc_create, rpc::kRuntime);

void snap_bdev_malloc_destroy(const json& p, Responder r) {
  auto s = destroy(p.at("bdev").get<std::string>(), [r]() mutable { r.result(true); });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("snap_bdev_malloc_destroy", snap_bdev_malloc_destroy, rpc::kRuntime);

// snap_bdev_malloc_resize <name> <new_MB>: deletes and recreates the bdev
// with the same name, block size and UUID; the data is lost (§12).
void snap_bdev_malloc_resize(const json& p, Responder r) {
  Bdev* b = Manager::get().find(p.at("bdev").get<std::string>());
  if (!b || b->module() != kModule) return r.error(make_error(Errc::kNotFound, "No such device"));
  Options o;
  o.name = b->name();
  o.uuid = b->uuid();
  o.block_size = b->block_size();
  auto nb = mb_to_blocks(p.at("new_size_mb").get<double>(), o.block_size);
  if (!nb) return r.error(nb.error());
  o.num_blocks = *nb;
  auto s = destroy(o.name, [r, o]() mutable {
    auto nb2 = create(o);
    if (!nb2) return r.error(nb2.error());
    r.result(true);
  });
  if (!s.ok()) r.error(s.error());
}
VDPU_RPC_REGISTER("snap_bdev_malloc_resize", snap_bdev_malloc_resize, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::bdev::malloc
