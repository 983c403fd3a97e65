#include "bdev/null/null.h"

namespace vdpu::bdev::null {
namespace {

class NullBdev final : public Bdev {
 public:
  explicit NullBdev(const Options& o) : Bdev(o.name, kModule, o.block_size, o.num_blocks) {
    product_name_ = "Null disk";
  }
  bool supports(IoType t) const override {
    return t == IoType::kRead || t == IoType::kWrite || t == IoType::kFlush ||
           t == IoType::kUnmap || t == IoType::kWriteZeroes || t == IoType::kReset;
  }
  std::unique_ptr<Channel> create_channel() override;
  json write_config() const override {
    return {{"method", "bdev_null_create"},
            {"params",
             {{"name", name()}, {"num_blocks", num_blocks()}, {"block_size", block_size()},
              {"uuid", uuid()}}}};
  }
};

class NullChannel final : public Channel {
 public:
  explicit NullChannel(NullBdev& b) : Channel(b) {}

 protected:
  void do_submit(Io& io) noexcept override { complete(io, IoStatus::kSuccess); }
};

std::unique_ptr<Channel> NullBdev::create_channel() { return std::make_unique<NullChannel>(*this); }

}  // namespace

Result<Bdev*> create(const Options& o) {
  if (o.name.empty()) return make_error(Errc::kInvalidArgument, "bdev name must not be empty");
  if (o.block_size == 0 || o.block_size % 512 != 0)
    return make_error(Errc::kInvalidArgument,
                      "Data block size " + std::to_string(o.block_size) + " is not a multiple of 512");
  if (o.num_blocks == 0)
    return make_error(Errc::kInvalidArgument, "Disk num_blocks must be greater than 0");
  if (o.num_blocks > UINT64_MAX / o.block_size)
    return make_error(Errc::kInvalidArgument, "Disk size overflows");
  if (!o.uuid.empty() && !valid_uuid(o.uuid))
    return make_error(Errc::kInvalidArgument, "Failed to parse bdev UUID");
  auto b = std::make_unique<NullBdev>(o);
  if (!o.uuid.empty()) b->set_uuid(o.uuid);
  Bdev* raw = b.get();
  VDPU_TRY(Manager::get().add(std::move(b)));
  return raw;
}

Status destroy(const std::string& name, std::function<void()> done) {
  return remove_module_bdev(name, kModule, std::move(done));
}

}  // namespace vdpu::bdev::null
