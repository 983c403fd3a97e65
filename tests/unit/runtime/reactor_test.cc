#include "runtime/reactor.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "runtime/runtime.h"

namespace vdpu::rt {
namespace {

TEST(Reactor, MessagesRunOnReactorThread) {
  Reactor r(0, -1, false);
  ASSERT_TRUE(r.start_thread().ok());
  std::atomic<int> n{0};
  std::atomic<bool> on_thread{true};
  for (int i = 0; i < 1000; ++i)
    r.send_blocking([&] {
      if (this_reactor() != &r) on_thread = false;
      n++;
    });
  while (n < 1000) std::this_thread::yield();
  EXPECT_TRUE(on_thread);
  r.request_stop();
  r.join();
}

TEST(Reactor, PollersTimersAndRemoval) {
  Reactor r(0, -1, false);
  std::atomic<int> polls{0}, timer_runs{0}, periodic{0};
  std::atomic<bool> done{false};
  r.send_blocking([&] {
    PollerId id = 0;
    id = r.add_poller("count", [&, pid = &id] {
      if (++polls == 100) r.remove_poller(*pid);
      return Poll::kBusy;
    });
    r.add_timer(1000, [&] { timer_runs++; });
    r.add_poller("periodic", [&] { periodic++; return Poll::kIdle; }, 500);
    r.add_timer(20000, [&] { done = true; r.request_stop(); });
  });
  ASSERT_TRUE(r.start_thread().ok());
  r.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(polls, 100) << "a removed poller must not run again";
  EXPECT_EQ(timer_runs, 1) << "a one-shot timer runs once";
  EXPECT_GT(periodic, 2);
}

TEST(Reactor, EventModeSleepsAndWakesOnMessageAndFd) {
  Reactor r(0, -1, true);
  int efd = eventfd(0, EFD_NONBLOCK);
  std::atomic<int> drained{0};
  r.send_blocking([&] {
    r.add_poller("kick", [&] {
      uint64_t v;
      if (read(efd, &v, sizeof(v)) == sizeof(v)) {
        drained++;
        return Poll::kBusy;
      }
      return Poll::kIdle;
    }, 0, [] { return true; });
    ASSERT_TRUE(r.add_wake_fd(efd).ok());
  });
  ASSERT_TRUE(r.start_thread().ok());
  // Let it fall asleep.
  for (int i = 0; i < 200 && r.stats().sleeps.load() == 0; ++i) usleep(1000);
  EXPECT_GT(r.stats().sleeps.load(), 0u);
  uint64_t idle_before = r.stats().idle_iterations.load();
  usleep(50000);
  // Asleep: it must not spin (a handful of wake-ups at most).
  EXPECT_LT(r.stats().idle_iterations.load() - idle_before, 100000u);
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  for (int i = 0; i < 2000 && drained == 0; ++i) usleep(1000);
  EXPECT_EQ(drained, 1) << "a kick eventfd must wake a sleeping reactor";
  std::atomic<bool> got{false};
  r.send_blocking([&] { got = true; });
  for (int i = 0; i < 2000 && !got; ++i) usleep(1000);
  EXPECT_TRUE(got) << "a message must wake a sleeping reactor";
  r.request_stop();
  r.join();
  close(efd);
}

TEST(Runtime, CallAndRoundRobin) {
  Options o;
  o.cores = {0, 0};
  o.pin = false;
  Runtime rt(o);
  ASSERT_TRUE(rt.start().ok());
  EXPECT_EQ(rt.call(0, [] { return this_reactor()->index(); }), 0u);
  EXPECT_EQ(rt.call(1, [] { return this_reactor()->index(); }), 1u);
  EXPECT_NE(rt.pick(), rt.pick());
  std::thread t([&] { rt.run_main(); });
  rt.stop();
  t.join();
}

}  // namespace
}  // namespace vdpu::rt
