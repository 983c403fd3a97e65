#include "bdev/malloc/malloc.h"

#include <sys/mman.h>

#include <cstring>

#include "base/log.h"

namespace vdpu::bdev::malloc {
namespace {

class MallocBdev final : public Bdev {
 public:
  MallocBdev(const Options& o, unsigned char* mem, size_t bytes)
      : Bdev(o.name, kModule, o.block_size, o.num_blocks), opts_(o), mem_(mem), bytes_(bytes) {
    product_name_ = "Malloc disk";
  }
  ~MallocBdev() override { munmap(mem_, bytes_); }

  bool supports(IoType t) const override {
    return t == IoType::kRead || t == IoType::kWrite || t == IoType::kFlush ||
           t == IoType::kUnmap || t == IoType::kWriteZeroes || t == IoType::kReset ||
           t == IoType::kCompare;
  }
  std::unique_ptr<Channel> create_channel() override;
  json write_config() const override {
    json p = {{"name", name()}, {"num_blocks", num_blocks()}, {"block_size", block_size()},
              {"uuid", uuid()}};
    if (opts_.optimal_io_boundary) p["optimal_io_boundary"] = opts_.optimal_io_boundary;
    return {{"method", "bdev_malloc_create"}, {"params", std::move(p)}};
  }
  unsigned char* mem() const { return mem_; }

 private:
  Options opts_;
  unsigned char* mem_;
  size_t bytes_;
};

class MallocChannel final : public Channel {
 public:
  explicit MallocChannel(MallocBdev& b) : Channel(b), mem_(b.mem()), bs_(b.block_size()) {}

 protected:
  void do_submit(Io& io) noexcept override {
    unsigned char* p = mem_ + io.offset_blocks * bs_;
    size_t len = io.num_blocks * bs_;
    switch (io.type) {
      case IoType::kRead:
        for (uint32_t i = 0; i < io.iovcnt; ++i) {
          memcpy(io.iov[i].iov_base, p, io.iov[i].iov_len);
          p += io.iov[i].iov_len;
        }
        break;
      case IoType::kWrite:
        for (uint32_t i = 0; i < io.iovcnt; ++i) {
          memcpy(p, io.iov[i].iov_base, io.iov[i].iov_len);
          p += io.iov[i].iov_len;
        }
        break;
      case IoType::kCompare:
        for (uint32_t i = 0; i < io.iovcnt; ++i) {
          if (memcmp(p, io.iov[i].iov_base, io.iov[i].iov_len) != 0) {
            complete(io, IoStatus::kMiscompare);
            return;
          }
          p += io.iov[i].iov_len;
        }
        break;
      case IoType::kUnmap:  // reads after unmap return zeroes, as SPDK's malloc
      case IoType::kWriteZeroes:
        memset(p, 0, len);
        break;
      default:  // flush, reset: nothing to do for RAM
        break;
    }
    complete(io, IoStatus::kSuccess);
  }

 private:
  unsigned char* mem_;
  uint32_t bs_;
};

std::unique_ptr<Channel> MallocBdev::create_channel() {
  return std::make_unique<MallocChannel>(*this);
}

uint32_t g_next_index = 0;

}  // namespace

Result<Bdev*> create(const Options& in) {
  Options o = in;
  if (o.block_size == 0 || o.block_size % 512 != 0)
    return make_error(Errc::kInvalidArgument,
                      "Data block size " + std::to_string(o.block_size) + " is not a multiple of 512");
  if (o.num_blocks == 0)
    return make_error(Errc::kInvalidArgument, "Disk num_blocks must be greater than 0");
  if (o.num_blocks > SIZE_MAX / o.block_size)
    return make_error(Errc::kInvalidArgument, "Disk size overflows");
  if (!o.uuid.empty() && !valid_uuid(o.uuid))
    return make_error(Errc::kInvalidArgument, "Failed to parse bdev UUID");
  if (o.name.empty()) {
    do o.name = "Malloc" + std::to_string(g_next_index++);
    while (Manager::get().find(o.name));
  }
  if (Manager::get().find(o.name))
    return make_error(Errc::kExists, "bdev " + o.name + " already exists");
  size_t bytes = size_t(o.num_blocks) * o.block_size;
  // Anonymous memory is zero-filled; MAP_POPULATE commits it now, so that a
  // too-large request fails here rather than at the first write.
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED)
    return make_error(Errc::kNoMemory, "Cannot allocate " + std::to_string(bytes) + " bytes");
  auto b = std::make_unique<MallocBdev>(o, static_cast<unsigned char*>(mem), bytes);
  if (!o.uuid.empty()) b->set_uuid(o.uuid);
  Bdev* raw = b.get();
  VDPU_TRY(Manager::get().add(std::move(b)));
  return raw;
}

Status destroy(const std::string& name, std::function<void()> done) {
  return remove_module_bdev(name, kModule, std::move(done));
}

}  // namespace vdpu::bdev::malloc
