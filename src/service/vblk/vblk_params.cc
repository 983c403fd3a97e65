#include "service/vblk/vblk_params.h"

#include "service/emu/params.h"

namespace vdpu::service::vblk {

Status check_num_queues(uint64_t n) {
  if (n < 1 || n > kMaxQueues)
    return make_error(Errc::kInvalidArgument,
                      "num_queues " + std::to_string(n) + " out of range [1, 64]");
  return {};
}

Status check_queue_size(uint64_t n) {
  if (n < 1 || n > kMaxQueueSize)
    return make_error(Errc::kInvalidArgument,
                      "queue_size " + std::to_string(n) + " out of range [1, 256]");
  // virtio 1.2 §2.7: a split virtqueue's size is a power of 2.
  if (n & (n - 1))
    return make_error(Errc::kInvalidArgument, "queue_size " + std::to_string(n) +
                                                  " is not a power of two (split virtqueues "
                                                  "require one: 1, 2, 4 ... 256)");
  return {};
}

Status check_seg_max(uint64_t seg_max, uint32_t queue_size) {
  // §5.3 (r?): 1 to queue_size - 2 (a request also needs its header and
  // status descriptors); at least 1 for tiny queues.
  uint64_t hi = queue_size > 3 ? queue_size - 2 : 1;
  if (seg_max < 1 || seg_max > hi)
    return make_error(Errc::kInvalidArgument, "seg_max " + std::to_string(seg_max) +
                                                  " out of range [1, " + std::to_string(hi) +
                                                  "] for queue_size " + std::to_string(queue_size));
  return {};
}

Status check_ctrl_name(const std::string& n) {
  if (n.empty() || n.size() > 64)
    return make_error(Errc::kInvalidArgument, "ctrl name must have 1 to 64 characters");
  for (char c : n)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return make_error(Errc::kInvalidArgument,
                        "ctrl name '" + n + "' may contain only letters, digits, '_', '-' and '.'");
  return {};
}

Result<CreateRequest> parse_create(const nlohmann::json& p) {
  CreateRequest r;
  auto sel = get_selector(p);
  if (!sel) return sel.error();
  r.fn = *sel;
  auto ctrl = get_str(p, "ctrl");
  if (!ctrl) return ctrl.error();
  r.ctrl = *ctrl;
  if (r.ctrl) VDPU_TRY(check_ctrl_name(*r.ctrl));

  auto nq = get_uint(p, "num_queues");
  if (!nq) return nq.error();
  if (*nq) VDPU_TRY(check_num_queues(**nq));
  r.cfg.num_queues = uint16_t(nq->value_or(1));
  auto qs = get_uint(p, "queue_size");
  if (!qs) return qs.error();
  if (*qs) VDPU_TRY(check_queue_size(**qs));
  r.cfg.queue_size = uint16_t(qs->value_or(256));
  auto sm = get_uint(p, "size_max", 1, UINT32_MAX);
  if (!sm) return sm.error();
  r.cfg.size_max = uint32_t(sm->value_or(4096));
  auto sg = get_uint(p, "seg_max");
  if (!sg) return sg.error();
  r.cfg.seg_max = uint32_t(sg->value_or(1));
  VDPU_TRY(check_seg_max(r.cfg.seg_max, r.cfg.queue_size));

  auto bdev = get_str(p, "bdev");
  if (!bdev) return bdev.error();
  r.bdev = bdev->value_or("");
  if (r.bdev == "none") r.bdev.clear();
  auto id = get_str(p, "vblk_id");
  if (!id) return id.error();
  r.cfg.vblk_id = id->value_or("");
  // virtio 1.2 §5.2.6: GET_ID returns at most 20 bytes.
  if (r.cfg.vblk_id.size() > 20)
    return make_error(Errc::kInvalidArgument, "vblk_id longer than 20 bytes (virtio-blk GET_ID limit)");
  auto dbt = get_str(p, "dbg_bdev_type");  // §5.3: N/A, accepted
  if (!dbt) return dbt.error();

  struct F {
    const char* key;
    bool* dst;
  } flags[] = {{"read_only", &r.cfg.read_only},         {"force_in_order", &r.cfg.force_in_order},
               {"indirect_desc", &r.cfg.indirect_desc}, {"admin_q", &r.cfg.admin_q},
               {"dynamic_msix", &r.cfg.dynamic_msix},   {"suspended", &r.suspended},
               {"live_update_listener", &r.cfg.live_update_listener},
               {"dbg_local_optimized", &r.cfg.dbg_local_optimized}};
  for (auto& f : flags) {
    auto v = get_flag(p, f.key);
    if (!v) return v.error();
    *f.dst = *v;
  }
  // §5.6: the source also spells the admin queue flag dbg_admin_q.
  auto daq = get_flag(p, "dbg_admin_q");
  if (!daq) return daq.error();
  r.cfg.admin_q = r.cfg.admin_q || *daq;
  auto vfm = get_uint(p, "vf_num_msix", 0, 4095);
  if (!vfm) return vfm.error();
  if (*vfm) r.cfg.vf_num_msix = uint32_t(**vfm);
  return r;
}

}  // namespace vdpu::service::vblk
