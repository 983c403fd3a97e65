#include "apps/vdpu-virtnet/ha.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace vdpu::virtnet_app {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxFastFailures = 5;     // worker deaths before "ready" in a row
constexpr int kCrashRespawnMs = 200;    // pause before restarting a crashed worker

class Supervisor {
 public:
  Supervisor(std::string exe, std::vector<std::string> args) : exe_(std::move(exe)), args_(std::move(args)) {}

  int run() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    sigfd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd_ < 0) {
      VDPU_ERR("virtnet HA: signalfd: {}", strerror(errno));
      return 1;
    }
    if (!spawn()) return 1;
    while (true) {
      pollfd p[2] = {{sigfd_, POLLIN, 0}, {link_, POLLIN, 0}};
      int timeout = respawn_at_ ? std::max<int>(0, int(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           *respawn_at_ - Clock::now()).count()))
                                : -1;
      int n = ::poll(p, link_ >= 0 ? 2 : 1, timeout);
      if (n < 0 && errno != EINTR) return 1;
      if (respawn_at_ && Clock::now() >= *respawn_at_) {
        respawn_at_.reset();
        if (!spawn()) return 1;
        continue;
      }
      if (link_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) on_link();
      if (p[0].revents & POLLIN) {
        if (auto rc = on_signals(); rc) return *rc;
      }
    }
  }

 private:
  bool spawn() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
      VDPU_ERR("virtnet HA: socketpair: {}", strerror(errno));
      return false;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      VDPU_ERR("virtnet HA: fork: {}", strerror(errno));
      ::close(sv[0]);
      ::close(sv[1]);
      return false;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::fcntl(sv[1], F_SETFD, 0);  // inherited across exec
      std::vector<std::string> a = {exe_};
      a.insert(a.end(), args_.begin(), args_.end());
      for (std::string x : {std::string("--worker"), std::string("--ha-fd"), std::to_string(sv[1]),
                            std::string("--exe"), exe_})
        a.push_back(x);
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(exe_.c_str(), argv.data());
      _exit(127);
    }
    ::close(sv[1]);
    if (link_ >= 0) ::close(link_);
    link_ = sv[0];
    ::fcntl(link_, F_SETFL, O_NONBLOCK);
    worker_ = pid;
    ready_ = false;
    restart_ = false;
    VDPU_INFO("virtnet HA: worker {} started", pid);
    return true;
  }

  void reply(const std::string& s) { (void)::send(link_, s.data(), s.size(), MSG_NOSIGNAL); }

  void on_link() {
    char buf[512];
    while (true) {
      ssize_t n = ::recv(link_, buf, sizeof(buf), 0);
      if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(link_);
          link_ = -1;  // the worker went away; SIGCHLD follows
        }
        return;
      }
      std::string msg(buf, size_t(n));
      std::string cmd = msg.substr(0, msg.find(' '));
      std::string arg = msg.find(' ') == std::string::npos ? "" : msg.substr(msg.find(' ') + 1);
      if (cmd == "hold") reply(hold(arg));
      else if (cmd == "release") reply(release(arg));
      else if (cmd == "ready") {
        ready_ = true;
        ever_ready_ = true;
        fast_failures_ = 0;
        if (update_active_) {
          update_active_ = false;
          last_update_ = "success";
          update_time_ = std::chrono::duration<double>(Clock::now() - update_start_).count();
          VDPU_INFO("virtnet HA: live update finished in {:.3f} s", update_time_);
        }
        reply("ok");
      } else if (cmd == "restart") {
        restart_ = true;
        reply("ok");
      } else if (cmd == "update") {
        restart_ = true;
        update_active_ = true;
        update_start_ = Clock::now();
        reply("ok");
      } else if (cmd == "update-status") {
        nlohmann::json j = {{"status", update_active_ ? "active" : "inactive"},
                            {"last live update status", last_update_},
                            {"time_used (s)", update_time_}};
        reply(j.dump());
      } else {
        reply("err unknown request");
      }
    }
  }

  // Keeps the TAP alive: one more queue fd, detached so that the kernel
  // steers no packet to it (tun: a detached queue still holds the netdev).
  std::string hold(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) return "err bad name";
    if (taps_.count(ifname)) return "ok";
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return std::string("err /dev/net/tun: ") + strerror(errno);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
      std::string e = std::string("err TUNSETIFF: ") + strerror(errno);
      ::close(fd);
      return e;
    }
    ifr.ifr_flags = IFF_DETACH_QUEUE;
    if (::ioctl(fd, TUNSETQUEUE, &ifr) < 0) {
      std::string e = std::string("err TUNSETQUEUE: ") + strerror(errno);
      ::close(fd);
      return e;
    }
    taps_[ifname] = fd;
    VDPU_INFO("virtnet HA: holding representor {}", ifname);
    return "ok";
  }

  std::string release(const std::string& ifname) {
    auto it = taps_.find(ifname);
    if (it != taps_.end()) {
      ::close(it->second);
      taps_.erase(it);
      VDPU_INFO("virtnet HA: released representor {}", ifname);
    }
    return "ok";
  }

  void release_all() {
    for (auto& [n, fd] : taps_) ::close(fd);
    taps_.clear();
  }

  std::optional<int> on_signals() {
    signalfd_siginfo si;
    while (::read(sigfd_, &si, sizeof(si)) == sizeof(si)) {
      if (si.ssi_signo == SIGCHLD) {
        int st = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &st, WNOHANG)) > 0) {
          if (pid != worker_) continue;
          if (auto rc = on_worker_exit(st); rc) return rc;
        }
      } else {
        VDPU_INFO("virtnet HA: {}: stopping", strsignal(int(si.ssi_signo)));
        stopping_ = true;
        respawn_at_.reset();
        if (worker_ > 0) ::kill(worker_, SIGTERM);
        else return finish(0);
      }
    }
    return std::nullopt;
  }

  std::optional<int> finish(int rc) {
    release_all();
    if (link_ >= 0) ::close(link_);
    link_ = -1;
    return rc;
  }

  std::optional<int> on_worker_exit(int st) {
    worker_ = -1;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (stopping_) return finish(code);
    if (restart_) {
      VDPU_INFO("virtnet HA: worker exited for a {}; starting it again", update_active_ ? "live update" : "restart");
      if (!spawn()) return finish(1);
      return std::nullopt;
    }
    if (WIFEXITED(st) && code == 0) return finish(0);  // shut down on request (spdk_kill_instance)
    if (!ready_) {
      if (update_active_) {
        update_active_ = false;
        last_update_ = "failed";
      }
      if (++fast_failures_ >= kMaxFastFailures || !ever_ready_) {
        VDPU_ERR("virtnet HA: worker failed before it was ready (status {}); giving up", code);
        return finish(code ? code : 1);
      }
    }
    VDPU_WARN("virtnet HA: worker died (status {}); restarting it, {} representor(s) held", code, taps_.size());
    respawn_at_ = Clock::now() + std::chrono::milliseconds(kCrashRespawnMs);
    return std::nullopt;
  }

  std::string exe_;
  std::vector<std::string> args_;
  int sigfd_ = -1;
  int link_ = -1;
  pid_t worker_ = -1;
  bool ready_ = false, ever_ready_ = false, restart_ = false, stopping_ = false;
  int fast_failures_ = 0;
  std::optional<Clock::time_point> respawn_at_;
  std::map<std::string, int> taps_;
  bool update_active_ = false;
  Clock::time_point update_start_;
  std::string last_update_ = "N/A";
  double update_time_ = 0;
};

}  // namespace

int run_supervisor(const std::string& exe, const std::vector<std::string>& worker_args) {
  Supervisor s(exe, worker_args);
  return s.run();
}

Result<std::string> HaLink::call(const std::string& req, double timeout_s) {
  if (fd_ < 0) return make_error(Errc::kState, "no HA supervisor");
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) < 0)
    return make_error(Errc::kIo, std::string("HA link: ") + strerror(errno));
  pollfd p{fd_, POLLIN, 0};
  int n = ::poll(&p, 1, int(timeout_s * 1000));
  if (n == 0) return make_error(Errc::kTimeout, "HA link: no reply to " + req);
  char buf[4096];
  ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
  if (r <= 0) return make_error(Errc::kIo, "HA link closed");
  return std::string(buf, size_t(r));
}

}  // namespace vdpu::virtnet_app
