#include "pci/vuid.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/parse.h"

namespace vdpu::pci {

const char* vuid_type_tag(FunctionType t) {
  switch (t) {
    case FunctionType::kNvme: return "NVME";
    case FunctionType::kVirtioBlk: return "VBLK";
    case FunctionType::kVirtioNet: return "VNET";
  }
  return "NVME";
}

std::string make_vuid(const VuidParts& p) {
  std::string s = p.serial + vuid_type_tag(p.type) + "S" + std::to_string(p.s) + "D" +
                  std::to_string(p.d) + "F" + std::to_string(p.f);
  if (p.vf) s += "VF" + std::to_string(*p.vf);
  return s;
}

Result<VuidParts> parse_vuid(const std::string& v) {
  auto bad = [&v](const char* why) {
    return make_error(Errc::kInvalidArgument, "VUID '" + v + "': " + why);
  };
  VuidParts p;
  size_t pos = std::string::npos;
  for (auto t : {FunctionType::kNvme, FunctionType::kVirtioBlk, FunctionType::kVirtioNet}) {
    // The last occurrence of the tag followed by "S<digit>" ends the serial.
    std::string tag = std::string(vuid_type_tag(t)) + "S";
    for (size_t at = v.find(tag); at != std::string::npos; at = v.find(tag, at + 1))
      if (at + tag.size() < v.size() && std::isdigit(uint8_t(v[at + tag.size()])) &&
          (pos == std::string::npos || at > pos)) {
        pos = at;
        p.type = t;
      }
  }
  if (pos == std::string::npos || pos == 0) return bad("no serial/type");
  p.serial = v.substr(0, pos);
  size_t i = pos + 4;
  auto num = [&](char letter, uint32_t* out) -> bool {
    if (i >= v.size() || v[i] != letter) return false;
    size_t j = ++i;
    while (i < v.size() && std::isdigit(uint8_t(v[i]))) ++i;
    auto n = parse_u64(std::string_view(v).substr(j, i - j));
    if (!n || *n > 0xffff) return false;
    *out = uint32_t(*n);
    return true;
  };
  if (!num('S', &p.s) || !num('D', &p.d) || !num('F', &p.f)) return bad("expected S<n>D<n>F<n>");
  if (i < v.size()) {
    uint32_t vf = 0;
    if (v.compare(i, 2, "VF") != 0) return bad("trailing characters");
    ++i;  // num() consumes the 'F'
    if (!num('F', &vf) || i != v.size()) return bad("bad VF suffix");
    p.vf = vf;
  }
  return p;
}

Result<std::string> load_or_create_serial(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    std::string s;
    std::getline(in, s);
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
    bool ok = !s.empty() && s.size() <= 20;
    for (char c : s) ok &= bool(std::isalnum(uint8_t(c)));
    if (!ok) return make_error(Errc::kInvalidArgument, "VUID serial file " + path + ": malformed content");
    return s;
  }
  uint32_t rnd = 0;
  if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
    return make_error(Errc::kIo, "getrandom failed");
  char buf[16];
  std::snprintf(buf, sizeof(buf), "VDPU%08X", rnd);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return make_error(Errc::kIo, "VUID serial file " + tmp + ": cannot create");
    out << buf << "\n";
    out.flush();
    if (!out) return make_error(Errc::kIo, "VUID serial file " + tmp + ": write error");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error(Errc::kIo, "VUID serial file " + path + ": rename failed");
  }
  return std::string(buf);
}

}  // namespace vdpu::pci
