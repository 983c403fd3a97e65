#include "rpc/dispatch.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "base/log.h"
#include "rpc/rpc_log.h"
#include "runtime/runtime.h"

namespace vdpu::rpc {

// ---- Responder ----

namespace {
// Runs fn on the main reactor: inline unless called from a data reactor.
void on_main(std::function<void()> fn) {
  rt::Runtime* rtm = rt::Runtime::get();
  rt::Reactor* cur = rt::this_reactor();
  if (rtm && cur && cur != &rtm->main()) {
    rtm->main().send_blocking(std::move(fn));
    return;
  }
  fn();
}
}  // namespace

struct Responder::Impl {
  Dispatcher* d;
  json id;
  bool notification;
  ReplyFn sink;
  std::string method;
  json params;
  bool replied = false;

  void reply(json response) {
    if (replied) {
      VDPU_WARN("rpc: second reply to '{}' ignored", method);
      return;
    }
    replied = true;
    d->deliver(method, params, notification, sink, std::move(response));
  }
  // A Responder dropped without a reply answers -32603 (rpc.h); the last
  // reference may go away on a data reactor, so deliver on the main one.
  ~Impl() {
    if (replied) return;
    on_main([d = d, method = method, params = params, n = notification, sink = sink,
             r = error_response(id, kInternalError, "no response")]() mutable {
      d->deliver(method, params, n, sink, std::move(r));
    });
  }
};


void Responder::result(json r) {
  auto impl = impl_;
  if (!impl) return;
  on_main([impl, r = std::move(r)]() mutable {
    impl->reply(json{{"jsonrpc", "2.0"}, {"id", impl->id}, {"result", std::move(r)}});
  });
}

void Responder::error(int code, const std::string& message) {
  auto impl = impl_;
  if (!impl) return;
  on_main([impl, code, message] { impl->reply(error_response(impl->id, code, message)); });
}

int error_code(Errc e) {
  switch (e) {
    case Errc::kOk: return 0;
    case Errc::kInvalidArgument: return kInvalidParams;
    case Errc::kNotFound: return -19;
    case Errc::kExists: return -17;
    case Errc::kBusy: return -16;
    case Errc::kNoMemory: return -12;
    case Errc::kIo: return -5;
    case Errc::kUnsupported: return -95;
    case Errc::kState: return -1;
    case Errc::kTimeout: return -110;
    case Errc::kProtocol: return -71;
    case Errc::kPermission: return -13;
  }
  return kInternalError;
}

json error_response(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// ---- registration (rpc.h) ----

void register_method(const std::string& name, Handler h, uint32_t states) {
  Dispatcher::get().add_method(name, std::move(h), states);
}

void register_method_alias(const std::string& alias, const std::string& name) {
  Dispatcher::get().add_alias(alias, name);
}

State current_state() { return Dispatcher::get().state(); }

// ---- Dispatcher ----

Dispatcher& Dispatcher::get() {
  static Dispatcher* d = new Dispatcher();  // never destroyed: used by static registrars
  return *d;
}

void Dispatcher::add_method(const std::string& name, Handler h, uint32_t states) {
  if (methods_.count(name)) {
    fprintf(stderr, "vdpu: RPC method '%s' registered twice\n", name.c_str());
    abort();
  }
  methods_[name] = Entry{std::move(h), states, ""};
}

void Dispatcher::add_alias(const std::string& alias, const std::string& name) {
  if (methods_.count(alias)) {
    fprintf(stderr, "vdpu: RPC method alias '%s' registered twice\n", alias.c_str());
    abort();
  }
  methods_[alias] = Entry{nullptr, 0, name};
}

const Dispatcher::Entry* Dispatcher::resolve(const std::string& name, std::string* canonical) const {
  auto it = methods_.find(name);
  if (it == methods_.end()) return nullptr;
  if (!it->second.alias_of.empty()) {
    auto t = methods_.find(it->second.alias_of);
    if (t == methods_.end() || !t->second.alias_of.empty()) return nullptr;
    *canonical = t->first;
    return &t->second;
  }
  *canonical = name;
  return &it->second;
}

uint32_t Dispatcher::method_states(const std::string& name) const {
  std::string c;
  const Entry* e = resolve(name, &c);
  return e ? e->states : 0;
}

std::vector<std::string> Dispatcher::method_names(bool current, bool include_aliases) const {
  std::vector<std::string> out;
  for (auto& [name, e] : methods_) {
    if (!e.alias_of.empty() && !include_aliases) continue;
    if (current && !(method_states(name) & state_)) continue;
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> Dispatcher::methods_without_schema() const {
  std::vector<std::string> out;
  auto& reg = schema::Registry::get();
  for (auto& [name, e] : methods_)
    if (e.alias_of.empty() && !reg.find(name)) out.push_back(name);
  return out;
}

void Dispatcher::deliver(const std::string& method, const json& params, bool notification,
                         const ReplyFn& sink, json response) {
  if (log_) log_->response(response);
  for (auto& o : observers_) o(method, params, response);
  if (!notification && sink) sink(std::move(response));
}

void Dispatcher::call(const std::string& method, const json& params, ReplyFn done) {
  json req = {{"jsonrpc", "2.0"}, {"method", method}, {"id", 0}};
  if (!params.is_null()) req["params"] = params;
  handle(req, std::move(done));
}

void Dispatcher::handle(const json& req, ReplyFn reply) {
  if (log_) log_->request(req);
  auto refuse = [&](const json& id, int code, const std::string& msg, const std::string& method = "",
                    const json& params = nullptr) {
    deliver(method, params, false, reply, error_response(id, code, msg));
  };
  if (req.is_array()) return refuse(nullptr, kInvalidRequest, "Invalid request: batch requests are not supported");
  if (!req.is_object()) return refuse(nullptr, kInvalidRequest, "Invalid request");
  // JSON-RPC 2.0 §4: id is a string, number or null; absent = notification.
  bool notification = !req.contains("id");
  json id = notification ? json(nullptr) : req["id"];
  if (!id.is_null() && !id.is_string() && !id.is_number())
    return refuse(nullptr, kInvalidRequest, "Invalid request: bad id");
  auto jv = req.find("jsonrpc");
  if (jv == req.end() || !jv->is_string() || *jv != "2.0")
    return refuse(id, kInvalidRequest, "Invalid request: jsonrpc must be \"2.0\"");
  auto mv = req.find("method");
  if (mv == req.end() || !mv->is_string())
    return refuse(id, kInvalidRequest, "Invalid request: method must be a string");
  for (auto& [k, v] : req.items())
    if (k != "jsonrpc" && k != "method" && k != "id" && k != "params")
      return refuse(id, kInvalidRequest, "Invalid request: unknown member '" + k + "'");
  std::string name = *mv;
  json params = req.contains("params") ? req["params"] : json(nullptr);
  VDPU_DEBUGLOG("rpc", "rpc: request '{}' params {}", name, params.dump());
  std::string canonical;
  const Entry* e = resolve(name, &canonical);
  auto answer = [&](int code, const std::string& msg) {
    deliver(name, params, notification, reply, error_response(id, code, msg));
  };
  if (!e) return answer(kMethodNotFound, "Method not found");
  if (!(e->states & state_))
    return answer(kInvalidState, state_ == kStartup ? kNeedInitMsg : kStartupOnlyMsg);
  if (!params.is_null() && !params.is_object())
    return answer(kInvalidParams, "Invalid parameters: params must be an object");
  const schema::Method* sm = schema::Registry::get().find(canonical);
  static const schema::Method kNoParams;
  auto v = schema::validate(sm ? *sm : kNoParams, params);
  if (!v) return answer(kInvalidParams, "Invalid parameters: " + v.error().message);
  auto impl = std::make_shared<Responder::Impl>();
  impl->d = this;
  impl->id = id;
  impl->notification = notification;
  impl->sink = std::move(reply);
  impl->method = name;
  impl->params = *v;
  try {
    e->handler(impl->params, Responder(impl));
  } catch (const std::exception& ex) {
    if (!impl->replied) impl->reply(error_response(id, kInternalError, ex.what()));
    else VDPU_ERR("rpc: '{}' threw after replying: {}", name, ex.what());
  }
}

void Dispatcher::start_init(std::function<void(Status)> done) {
  if (init_started_) {
    done(make_error(Errc::kState, "framework initialization already started"));
    return;
  }
  init_started_ = true;
  state_ = kRuntime;
  auto finish = [this, done = std::move(done)](Status s) {
    if (s) {
      initialized_ = true;
      auto waiters = std::move(init_waiters_);
      init_waiters_.clear();
      for (auto& w : waiters) w();
    }
    done(s);
  };
  if (init_hook_) init_hook_(std::move(finish));
  else finish({});
}

void Dispatcher::wait_init(std::function<void()> fn) {
  if (initialized_) fn();
  else init_waiters_.push_back(std::move(fn));
}

void Dispatcher::reset_for_test() {
  state_ = kStartup;
  init_started_ = initialized_ = false;
  init_hook_ = nullptr;
  init_waiters_.clear();
  observers_.clear();
  log_ = nullptr;
}

}  // namespace vdpu::rpc
