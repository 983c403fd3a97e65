#include "rpc/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "rpc/client.h"
#include "rpc/dispatch.h"
#include "test_methods.h"

namespace vdpu::rpc {
namespace {

// A reactor thread running the server, as the daemon's main reactor does.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_test_methods();
    Dispatcher::get().reset_for_test();
    Dispatcher::get().set_state(kRuntime);
    path_ = "/tmp/vdpu_rpc_test_" + std::to_string(getpid()) + ".sock";
    reactor_ = std::make_unique<rt::Reactor>(0, -1, /*event_mode=*/true);
    ASSERT_TRUE(reactor_->start_thread().ok());
    start_server();
  }
  void TearDown() override {
    on_reactor([&] { server_.reset(); });
    reactor_->request_stop();
    reactor_->join();
    unlink(path_.c_str());
  }
  void start_server(size_t max_request = 4u << 20) {
    on_reactor([&] {
      ServerOptions o;
      o.path = path_;
      o.max_request = max_request;
      auto s = Server::start(*reactor_, o);
      ASSERT_TRUE(s.ok()) << s.error().message;
      server_ = std::move(*s);
    });
  }
  template <class F>
  void on_reactor(F fn) {
    std::promise<void> p;
    reactor_->send_blocking([&] {
      fn();
      p.set_value();
    });
    p.get_future().wait();
  }
  Client connect() {
    Client c;
    EXPECT_TRUE(c.connect(path_).ok());
    return c;
  }
  static std::string req(const std::string& method, int id, json params = nullptr) {
    json r = {{"jsonrpc", "2.0"}, {"method", method}, {"id", id}};
    if (!params.is_null()) r["params"] = params;
    return r.dump();
  }
  // True when the server closed the connection (EOF).
  static bool closed_by_peer(Client& c) {
    auto r = c.receive(5);
    return !r.ok() && r.error().code == Errc::kIo;
  }

  std::string path_;
  std::unique_ptr<rt::Reactor> reactor_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, RequestResponse) {
  Client c = connect();
  auto r = c.call("t_echo", {{"value", 42}}, 5, 9);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["id"], 9);
  EXPECT_EQ((*r)["result"]["value"], 42);
}

TEST_F(ServerTest, TwoRequestsInOneWrite) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw(req("t_any", 1) + req("t_echo", 2, {{"value", "x"}}), 5).ok());
  auto a = c.receive(5), b = c.receive(5);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)["id"], 1);
  EXPECT_EQ((*b)["id"], 2);
  EXPECT_EQ((*b)["result"]["value"], "x");
}

TEST_F(ServerTest, PartialWrites) {
  Client c = connect();
  std::string r = req("t_echo", 3, {{"value", "split}{"}});
  for (char ch : r) ASSERT_TRUE(c.send_raw(std::string_view(&ch, 1), 5).ok());
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["result"]["value"], "split}{");
}

TEST_F(ServerTest, ParseErrorAnsweredThenClosed) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw("{\"jsonrpc\": \"2.0\", \"method\": ,}", 5).ok());
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["error"]["code"], kParseError);
  EXPECT_TRUE((*a)["id"].is_null());
  EXPECT_TRUE(closed_by_peer(c));
}

TEST_F(ServerTest, GarbageAnsweredThenClosed) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw("not json at all", 5).ok());
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["error"]["code"], kParseError);
  EXPECT_TRUE(closed_by_peer(c));
}

TEST_F(ServerTest, OversizedRequestRefusedAndClosed) {
  on_reactor([&] { server_.reset(); });
  start_server(/*max_request=*/1024);
  Client c = connect();
  std::string big = req("t_echo", 1, {{"value", std::string(4096, 'a')}});
  (void)c.send_raw(big, 5);  // the server may close before reading everything
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)["error"]["code"], kInvalidRequest);
  EXPECT_NE((*a)["error"]["message"].get<std::string>().find("too large"), std::string::npos);
  EXPECT_TRUE(closed_by_peer(c));
  // The server keeps serving others.
  Client d = connect();
  auto r = d.call("t_any", nullptr, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["result"], "any");
}

TEST_F(ServerTest, BatchRefusedConnectionKept) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw("[" + req("t_any", 1) + "]", 5).ok());
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["error"]["code"], kInvalidRequest);
  auto r = c.call("t_any", nullptr, 5, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["id"], 2);
}

TEST_F(ServerTest, NotificationThenRequest) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw(R"({"jsonrpc":"2.0","method":"t_any"})" + req("t_echo", 4), 5).ok());
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["id"], 4);  // nothing came for the notification
}

TEST_F(ServerTest, AsyncReplyAfterClientHalfClose) {
  Client c = connect();
  ASSERT_TRUE(c.send_raw(req("t_later", 11), 5).ok());
  shutdown(c.fd(), SHUT_WR);
  // Wait until the handler has run, then answer from the reactor.
  for (int i = 0; i < 5000; ++i) {
    bool ready = false;
    on_reactor([&] { ready = test::later().has_value(); });
    if (ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  on_reactor([&] {
    ASSERT_TRUE(test::later().has_value());
    test::later()->result("done");
    test::later().reset();
  });
  auto a = c.receive(5);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)["result"], "done");
  EXPECT_TRUE(closed_by_peer(c));
}

TEST_F(ServerTest, ManyConcurrentClients) {
  constexpr int kClients = 50;
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < kClients; ++i)
    ts.emplace_back([&, i] {
      Client c;
      if (!c.connect(path_).ok()) return;
      for (int k = 0; k < 20; ++k) {
        auto r = c.call("t_echo", {{"value", i * 100 + k}}, 10, k);
        if (!r.ok() || (*r)["result"]["value"] != i * 100 + k || (*r)["id"] != k) return;
      }
      ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kClients);
}

TEST_F(ServerTest, SecondServerOnLiveSocketRefused) {
  on_reactor([&] {
    auto s = Server::start(*reactor_, ServerOptions{path_});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, Errc::kBusy);
  });
}

TEST_F(ServerTest, StaleSocketIsReplacedAndRemovedAtStop) {
  on_reactor([&] { server_.reset(); });
  EXPECT_NE(access(path_.c_str(), F_OK), 0);  // removed by the server
  // A stale socket file (nobody listening) is replaced.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, path_.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
  start_server();
  Client c = connect();
  EXPECT_TRUE(c.call("t_any", nullptr, 5).ok());
}

}  // namespace
}  // namespace vdpu::rpc
