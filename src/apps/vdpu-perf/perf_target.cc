// See perf_target.h.
#include "perf_target.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>

#include "base/parse.h"
#include "bdev/malloc/malloc.h"
#include "bdev/null/null.h"
#include "runtime/runtime.h"

namespace vdpu::perf {

void add_target_options(CLI::App& app, TargetOptions& o, const char* socket_help) {
  app.add_option("--socket", o.socket, socket_help)->required();
  app.add_option("--bdev", o.bdev, "null | malloc")
      ->check(CLI::IsMember({"null", "malloc"}))
      ->capture_default_str();
  app.add_option("--size-mib", o.size_mib, "bdev size")->capture_default_str();
  app.add_option("--block-size", o.block_size, "bdev block size")->capture_default_str();
  app.add_option("-m,--cpumask", o.cpumask, "data reactor cores")->capture_default_str();
  app.add_flag("--event-mode", o.event_mode, "reactors sleep when idle");
}

int run_target(const char* name, const TargetOptions& o, const std::string& bdev_name, TargetHooks h) {
  auto cores = parse_cpumask(o.cpumask);
  if (!cores || cores->empty()) {
    std::fprintf(stderr, "%s: bad --cpumask\n", name);
    return 2;
  }
  // SIGINT/SIGTERM arrive on a signalfd watched by the main reactor; blocked
  // before the reactor threads start, so that they inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

  rt::Options ro;
  ro.cores = *cores;
  ro.event_mode = o.event_mode;
  rt::Runtime runtime(ro);
  if (auto st = runtime.start(); !st) {
    std::fprintf(stderr, "%s: %s\n", name, st.error().message.c_str());
    close(sfd);
    return 1;
  }
  int rc = 0;
  runtime.main().send_blocking([&] {
    auto fail = [&](const std::string& m) {
      std::fprintf(stderr, "%s: %s\n", name, m.c_str());
      rc = 1;
      runtime.stop();
    };
    const uint64_t blocks = uint64_t(o.size_mib * 1024 * 1024) / o.block_size;
    Result<bdev::Bdev*> b = o.bdev == "malloc" ? bdev::malloc::create({bdev_name, blocks, o.block_size, "", 0})
                                               : bdev::null::create({bdev_name, blocks, o.block_size, ""});
    if (!b) return fail("bdev: " + b.error().message);
    if (auto st = h.start(runtime); !st) return fail(st.error().message);
    std::fflush(stdout);
    (void)runtime.main().add_fd(sfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      [[maybe_unused]] ssize_t r = read(sfd, &si, sizeof(si));
      runtime.main().remove_fd(sfd);
      h.stop([&] { runtime.stop(); });
    });
  });
  runtime.run_main();
  if (h.release) h.release();
  close(sfd);
  return rc;
}

}  // namespace vdpu::perf
