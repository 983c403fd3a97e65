#include "pci/function_base.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"

namespace vdpu::pci {

ConfigOptions nvme_config_options(const Identity& id, uint16_t msix_vectors, std::string vuid) {
  ConfigOptions o;
  o.id = id;
  o.bars[0] = BarDesc{kNvmeBar0Size, true, false, false};
  o.msix = MsixLayout{msix_vectors, 0, kNvmeMsixTableOffset, 0, kNvmeMsixPbaOffset};
  o.vuid = std::move(vuid);
  return o;
}

Status PciFunctionBase::check(const FunctionOptions& opts) {
  if (auto err = ConfigSpace::validate(opts.config))
    return make_error(Errc::kInvalidArgument, "pci function " + opts.name + ": " + *err);
  return {};
}

PciFunctionBase::PciFunctionBase(FunctionOptions opts)
    : opts_(std::move(opts)), config_(opts_.config), msix_(opts_.config.msix.vectors) {
  config_.on_msix_control = [this](bool en, bool masked) { msix_.set_control(en, masked); };
  config_.on_flr = [this] { on_flr(); };
  config_.on_command = [this](uint16_t c) { on_command(c); };
  config_.on_sriov = [this](bool en, uint16_t n) { on_sriov(en, n); };
}

PciFunctionBase::~PciFunctionBase() {
  for (Bar& b : bars_) {
    if (b.mem) munmap(b.mem, opts_.config.bars[&b - bars_.data()].size);
    if (b.memfd >= 0) close(b.memfd);
  }
}

Status PciFunctionBase::set_bar_handler(int bar, BarHandler h) {
  if (bar < 0 || bar > 5 || !opts_.config.bars[bar].size)
    return make_error(Errc::kInvalidArgument, "BAR" + std::to_string(bar) + " not implemented");
  bars_[bar].handler = std::move(h);
  return {};
}

Result<uint8_t*> PciFunctionBase::add_mmap_area(int bar, uint64_t offset, uint64_t size) {
  if (bar < 0 || bar > 5) return make_error(Errc::kInvalidArgument, "bad BAR index");
  const BarDesc& d = opts_.config.bars[bar];
  const uint64_t page = 4096;
  if (!d.size || d.io || d.size < page)
    return make_error(Errc::kInvalidArgument, "BAR cannot hold an mmap area");
  if (!size || offset % page || size % page || offset > d.size || size > d.size - offset)
    return make_error(Errc::kInvalidArgument, "mmap area not page aligned or outside the BAR");
  const MsixLayout& m = opts_.config.msix;
  auto hit = [&](uint64_t o, uint64_t l) { return o < offset + size && offset < o + l; };
  if (m.vectors && ((m.table_bar == bar && hit(m.table_offset, msix_.table_bytes())) ||
                    (m.pba_bar == bar && hit(m.pba_offset, msix_.pba_bytes()))))
    return make_error(Errc::kInvalidArgument, "mmap area overlaps the MSI-X table/PBA");
  Bar& b = bars_[bar];
  for (const Area& a : b.areas)
    if (hit(a.offset, a.size)) return make_error(Errc::kInvalidArgument, "mmap areas overlap");
  if (b.memfd < 0) {
    int fd = memfd_create(("vdpu-bar" + std::to_string(bar)).c_str(), MFD_CLOEXEC);
    if (fd < 0) return make_error(Errc::kIo, std::string("memfd_create: ") + strerror(errno));
    if (ftruncate(fd, off_t(d.size)) != 0) {
      close(fd);
      return make_error(Errc::kIo, std::string("ftruncate: ") + strerror(errno));
    }
    void* p = mmap(nullptr, d.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      return make_error(Errc::kIo, std::string("mmap: ") + strerror(errno));
    }
    b.memfd = fd;
    b.mem = static_cast<uint8_t*>(p);
  }
  b.areas.push_back({offset, size});
  return b.mem + offset;
}

RegionInfo PciFunctionBase::region_info(RegionIndex idx) const {
  RegionInfo ri;
  uint32_t i = static_cast<uint32_t>(idx);
  if (idx == RegionIndex::kConfig) {
    ri.size = 4096;
  } else if (i < 6) {
    const BarDesc& d = opts_.config.bars[i];
    ri.size = d.size;
    const Bar& b = bars_[i];
    if (b.memfd >= 0) {
      ri.mmappable = true;
      for (const Area& a : b.areas) ri.mmap_areas.emplace_back(a.offset, a.size);
      ri.mmap_fd = b.memfd;
      ri.mmap_fd_offset = 0;
    }
  } else {
    ri.size = 0;
    ri.readable = ri.writable = false;
  }
  if (!ri.size) ri.readable = ri.writable = false;
  return ri;
}

Result<size_t> PciFunctionBase::bar_access(int bar, uint64_t offset, uint8_t* buf, size_t len,
                                           bool write) {
  const BarDesc& d = opts_.config.bars[bar];
  if (!d.size || offset > d.size || len > d.size - offset)
    return make_error(Errc::kInvalidArgument, "access outside BAR" + std::to_string(bar));
  const MsixLayout& m = opts_.config.msix;
  Bar& b = bars_[bar];
  size_t done = 0;
  while (done < len) {
    uint64_t o = offset + done;
    size_t rest = len - done;
    // Which segment holds o, and where does the next special segment start?
    uint64_t next = d.size;
    auto seg = [&](uint64_t start, uint64_t size) {
      if (o >= start && o < start + size) return true;
      if (start > o) next = std::min(next, start);
      return false;
    };
    size_t n;
    if (m.vectors && m.table_bar == bar && seg(m.table_offset, msix_.table_bytes())) {
      n = std::min<uint64_t>(rest, m.table_offset + msix_.table_bytes() - o);
      if (write)
        msix_.table_write(o - m.table_offset, {buf + done, n});
      else
        msix_.table_read(o - m.table_offset, {buf + done, n});
    } else if (m.vectors && m.pba_bar == bar && seg(m.pba_offset, msix_.pba_bytes())) {
      n = std::min<uint64_t>(rest, m.pba_offset + msix_.pba_bytes() - o);
      if (!write) msix_.pba_read(o - m.pba_offset, {buf + done, n});  // PBA is read-only
    } else {
      const Area* area = nullptr;
      for (const Area& a : b.areas)
        if (seg(a.offset, a.size)) area = &a;
      if (area) {
        n = std::min<uint64_t>(rest, area->offset + area->size - o);
        if (write) {
          std::memcpy(b.mem + o, buf + done, n);
          if (b.handler.area_written) b.handler.area_written(o, n);
        } else {
          std::memcpy(buf + done, b.mem + o, n);
        }
      } else {
        n = std::min<uint64_t>(rest, next - o);
        if (write && b.handler.write) {
          auto r = b.handler.write(o, {buf + done, n});
          if (!r) return r.error();
        } else if (!write && b.handler.read) {
          auto r = b.handler.read(o, {buf + done, n});
          if (!r) return r.error();
        } else if (!write) {
          std::memset(buf + done, 0, n);  // unimplemented registers read 0
        }
      }
    }
    done += n;
  }
  return len;
}

Result<size_t> PciFunctionBase::region_read(RegionIndex idx, uint64_t offset, std::span<uint8_t> out) {
  uint32_t i = static_cast<uint32_t>(idx);
  if (idx == RegionIndex::kConfig) {
    if (offset > 4096 || out.size() > 4096 - offset)
      return make_error(Errc::kInvalidArgument, "config access out of range");
    config_.read(uint32_t(offset), out);
    return out.size();
  }
  if (i < 6) return bar_access(int(i), offset, out.data(), out.size(), false);
  return make_error(Errc::kInvalidArgument, "region not implemented");
}

Result<size_t> PciFunctionBase::region_write(RegionIndex idx, uint64_t offset,
                                             std::span<const uint8_t> in) {
  uint32_t i = static_cast<uint32_t>(idx);
  if (idx == RegionIndex::kConfig) {
    if (offset > 4096 || in.size() > 4096 - offset)
      return make_error(Errc::kInvalidArgument, "config access out of range");
    config_.write(uint32_t(offset), in);
    return in.size();
  }
  if (i < 6) return bar_access(int(i), offset, const_cast<uint8_t*>(in.data()), in.size(), true);
  return make_error(Errc::kInvalidArgument, "region not implemented");
}

void PciFunctionBase::attach(hostmem::MemoryMapPtr dma, IrqSink* irq) {
  dma_ = std::move(dma);
  attached_ = true;
  msix_.set_sink(irq);
  on_attach(dma_);
}

void PciFunctionBase::dma_changed(hostmem::MemoryMapPtr dma) {
  dma_ = std::move(dma);
  on_dma_changed(dma_);
}

void PciFunctionBase::reset(std::function<void()> done) {
  on_reset([this, done = std::move(done)] {
    config_.reset();
    msix_.reset();
    for (Bar& b : bars_)
      for (const Area& a : b.areas) std::memset(b.mem + a.offset, 0, a.size);
    if (done) done();
  });
}

void PciFunctionBase::on_flr() {
  VDPU_INFO("pci function {}: function level reset", opts_.name);
  reset(nullptr);
}

void PciFunctionBase::detach(std::function<void()> done) {
  on_detach([this, done = std::move(done)] {
    msix_.set_sink(nullptr);
    dma_.reset();
    attached_ = false;
    if (done) done();
  });
}

}  // namespace vdpu::pci
