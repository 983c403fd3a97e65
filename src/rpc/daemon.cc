#include "rpc/daemon.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "rpc/framework.h"

namespace vdpu::rpc {
namespace {
constexpr uint64_t kShutdownTimeoutUs = 10'000'000;
}  // namespace

Result<int> block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return make_error(Errc::kIo, std::string("signalfd: ") + strerror(errno));
  return fd;
}

Status Daemon::watch_signals(int sigfd) {
  return rt_.main().add_fd(sigfd, EPOLLIN, [this, sigfd](uint32_t) {
    signalfd_siginfo si;
    while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
      VDPU_INFO("Received signal {}", strsignal(int(si.ssi_signo)));
      shutdown(0);
    }
  });
}

void Daemon::shutdown(int code) {
  if (code) exit_code_ = code;
  if (shutting_down_) return;
  shutting_down_ = true;
  VDPU_INFO("{}: shutting down (exit code {})", name_, exit_code_);
  if (server_) server_->stop_listening();
  auto finished = std::make_shared<bool>(false);
  auto finish = [this, finished] {
    if (*finished) return;
    *finished = true;
    if (server_) server_->close_all();
    rt_.stop();
  };
  rt_.main().add_timer(kShutdownTimeoutUs, [finish] {
    VDPU_WARN("shutdown hooks did not finish in time; stopping anyway");
    finish();
  });
  run_shutdown_hooks(finish);
}

}  // namespace vdpu::rpc
