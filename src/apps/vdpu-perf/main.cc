#include <vector>

#include "base/log.h"
#include "perf.h"

namespace vdpu::perf {
namespace {
struct Entry {
  const char* name;
  const char* help;
  Setup setup;
};
std::vector<Entry>& entries() {
  static std::vector<Entry> v;
  return v;
}
}  // namespace

Registrar::Registrar(const char* name, const char* help, Setup setup) {
  entries().push_back({name, help, std::move(setup)});
}

}  // namespace vdpu::perf

int main(int argc, char** argv) {
  vdpu::log::init(2);
  CLI::App app{"vdpu-perf: drive and measure vdpu devices and bdevs"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (auto& e : vdpu::perf::entries()) {
    CLI::App* sub = app.add_subcommand(e.name, e.help);
    runs.emplace_back(sub, e.setup(*sub));
  }
  CLI11_PARSE(app, argc, argv);
  for (auto& [sub, run] : runs)
    if (sub->parsed()) return run();
  return 2;
}
