#include "apps/virtnet/cli.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/parse.h"

namespace vdpu::virtnet_cli {
namespace {

Error bad(std::string m) { return Error{Errc::kInvalidArgument, std::move(m)}; }

std::vector<Opt> selector(bool all) {
  std::vector<Opt> v;
  if (all) v.push_back({"-a", "--all", "all", Arg::kFlag, "all devices"});
  v.push_back({"-p", "--pf", "pf", Arg::kUint, "PF id"});
  v.push_back({"-v", "--vf", "vf", Arg::kUint, "VF id"});
  v.push_back({"-u", "--vuid", "vuid", Arg::kStr, "device VUID"});
  return v;
}

std::vector<Command> make_commands() {
  std::vector<Command> c;
  c.push_back({"hotplug", "hotplug", "hotplug a virtio-net PF (§4.1)",
               {{"-i", "--ib_device", "ib_device", Arg::kStr, "port device (mlx5_0, mlx5_1, mlx5_bond_0)"},
                {"-f", "--features", "features", Arg::kHex, "feature bits to enable (hex)"},
                {"-m", "--mac", "mac", Arg::kStr, "MAC address (unique)"},
                {"-t", "--mtu", "mtu", Arg::kUint, "MTU"},
                {"-n", "--num_queues", "num_queues", Arg::kUint, "max virtqueues (TX, RX and ctrl counted separately)"},
                {"-qp", "--max_queue_pairs", "max_queue_pairs", Arg::kUint, "data virtqueue pairs"},
                {"-s", "--max_queue_size", "max_queue_size", Arg::kUint, "buffers per virtqueue, 0x4-0x8000, power of 2"},
                {"-u", "--sf_num", "sf_num", Arg::kUint, "representor number, 2000-2999"},
                {"-l", "--legacy", "legacy", Arg::kFlag, "transitional (legacy) device"}}});
  c.push_back({"unplug", "unplug", "unplug a hotplug virtio-net PF (§4.2)",
               {{"-p", "--pf", "id", Arg::kUint, "device id returned by hotplug"},
                {"-u", "--vuid", "vuid", Arg::kStr, "device VUID"}}});
  c.push_back({"list", "list", "list the controller and its devices (§4.3)", {}});
  auto q = selector(true);
  q.push_back({"-q", "--queue_id", "queue_id", Arg::kUint, "only this virtqueue"});
  q.push_back({"-b", "--brief", "brief", Arg::kFlag, "no virtqueue information"});
  q.push_back({nullptr, "--dbg_stats", "dbg_stats", Arg::kFlag, "debug counters"});
  q.push_back({nullptr, "--latency_stats", "latency_stats", Arg::kFlag, "latency statistics"});
  q.push_back({nullptr, "--stats_clear", "stats_clear", Arg::kFlag, "clear debug counters"});
  c.push_back({"query", "query", "query device details (§4.4)", q});
  auto m = selector(true);
  c.push_back({"modify", "modify", "modify a device or its queues (§4.6): modify [sel] {device,queue} ...", m});
  c.push_back({"log", "log", "set the log level (§4.7)",
               {{"-l", "--level", "level", Arg::kStr, "log level", {"info", "err", "debug"}}}});
  c.push_back({"version", "version", "running and installed controller versions (§4.9)", {}});
  c.push_back({"restart", "restart", "fast restart of the controller (§4.11)", {}});
  c.push_back({"validate", "", "validate a virtnet.conf file (§4.8)",
               {{"-f", "--file", "file", Arg::kStr, "path to the file"},
                {"-p", "--path", "file", Arg::kStr, "path to the file (same as -f)"}}});
  c.push_back({"update", "update", "live update (§4.10)",
               {{"-s", "--start", "start", Arg::kFlag, "start a live update"},
                {"-t", "--status", "status", Arg::kFlag, "live update status"}}});
  c.push_back({"health", "health", "device health: health [sel] show (§4.12)", selector(true)});
  c.push_back({"debug", "debug", "debug commands (no stable interface, §4.13)",
               {{"-p", "--pf", "pf", Arg::kUint, "PF id"},
                {nullptr, "--sriov_numvfs", "sriov_numvfs", Arg::kUint, "host VF count of the PF (0 -> X / X -> 0)"}}});
  auto st = selector(false);
  st.push_back({"-q", "--queue_id", "queue_id", Arg::kUint, "only this virtqueue"});
  c.push_back({"stats", "stats", "per-queue packet counters (§4.5)", st});
  return c;
}

const std::vector<std::string> kEnDis = {"enable", "disable"};

bool has(const ojson& p, const char* k) { return p.contains(k); }

Status check_selector(const ojson& p, bool need) {
  // §3: -p/-v/-u/-a mutually exclusive except --pf + --vf; one is required.
  int groups = int(p.value("all", 0) != 0) + int(has(p, "pf") || has(p, "vf")) + int(has(p, "vuid"));
  if (groups > 1) return bad("options -a, -p/-v and -u are mutually exclusive (except -p with -v)");
  if (has(p, "vf") && !has(p, "pf")) return bad("-v/--vf needs -p/--pf");
  if (need && groups == 0) return bad("one of -a, -p [-v] or -u is required");
  return {};
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> c = make_commands();
  return c;
}

const Command* find_command(const std::string& name) {
  for (auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

const std::vector<Opt>& modify_device_opts() {
  static const std::vector<Opt> o = {
      {"-m", "--mac", "mac", Arg::kStr, "device MAC"},
      {"-t", "--mtu", "mtu", Arg::kUint, "MTU"},
      {"-e", "--speed", "speed", Arg::kUint, "link speed, Mb/s"},
      {"-l", "--link", "link", Arg::kUint, "link status: 0 down, 1 up"},
      {"-s", "--state", "state", Arg::kUint, "device status bits"},
      {"-f", "--features", "features", Arg::kHex, "device feature bits (hex)"},
      {"-o", "--supported_hash_types", "supported_hash_types", Arg::kHex, "hash types (hex; driver unbound; 0 = no RSS/HASH_REPORT): 0x1 IPv4, 0x2 TCPv4, 0x4 UDPv4, 0x8 IPv6, 0x10 TCPv6, 0x20 UDPv6"},
      {"-k", "--rss_max_key_size", "rss_max_key_size", Arg::kUint, "RSS max key size (only 40)"},
      {"-r", "--rx_mode", "rx_mode", Arg::kHex, "RX mode (hex)"},
      {"-n", "--msix_num", "msix_num", Arg::kUint, "MSI-X vectors (VF)"},
      {"-q", "--max_queue_size", "max_queue_size", Arg::kUint, "max queue size (power of 2, max 32768)"},
      {"-d", "--dst_port", "dst_port", Arg::kHex, "IPv4 destination port rule (hex)"},
      {"-b", "--rx_dma_q_num", "rx_dma_q_num", Arg::kUint, "max RX DMA queues"},
      {"-dc", "--drop_counter", "drop_counter", Arg::kEnableDisable, "RQ drop counter", kEnDis},
      {"-pkt_cnt", "--packet_counter", "packet_counter", Arg::kEnableDisable, "packet counters", kEnDis},
      {"-aarfs", "--aarfs", "aarfs", Arg::kEnableDisable, "auto accelerated RFS (PFs)", kEnDis},
      {"-qp", "--max_queue_pairs", "max_queue_pairs", Arg::kUint, "data virtqueue pairs"},
      {"-dim", "--dim", "dim_config", Arg::kEnableDisable, "dynamic interrupt moderation (adaptive used-buffer notification coalescing; driver unbound)", kEnDis},
      {"-netdim", "--netdim", "net_dim_config", Arg::kEnableDisable, "netDIM", kEnDis}};
  return o;
}

const std::vector<Opt>& modify_queue_opts() {
  static const std::vector<Opt> o = {
      {"-e", "--period_mode", "period_mode", Arg::kStr, "RQ period mode", {"event", "cqe"}},
      {"-n", "--period", "period", Arg::kUint, "moderation timer, us"},
      {"-c", "--max_count", "max_count", Arg::kUint, "moderation max count"}};
  return o;
}

Status parse_opts(const std::vector<Opt>& opts, const std::vector<std::string>& args, size_t from, ojson& params,
                  std::vector<std::string>* positionals, size_t* stop_at) {
  for (size_t i = from; i < args.size(); ++i) {
    std::string a = args[i], val;
    bool has_val = false;
    if (a.size() < 2 || a[0] != '-') {
      if (!positionals) return bad("unexpected argument '" + a + "'");
      positionals->push_back(a);
      if (stop_at) {
        *stop_at = i;
        return {};
      }
      continue;
    }
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      val = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_val = true;
    }
    const Opt* o = nullptr;
    for (auto& x : opts)
      if (a == x.lng || (x.shrt && a == x.shrt)) o = &x;
    if (!o) return bad("unrecognized option '" + a + "'");
    if (o->type == Arg::kFlag) {
      if (has_val) return bad(std::string(o->lng) + " takes no value");
      params[o->key] = 1;
      continue;
    }
    if (!has_val) {
      if (i + 1 >= args.size()) return bad(std::string(o->lng) + ": expected a value");
      val = args[++i];
    }
    if (!o->choices.empty() && std::find(o->choices.begin(), o->choices.end(), val) == o->choices.end()) {
      std::string c;
      for (auto& x : o->choices) c += (c.empty() ? "" : ", ") + x;
      return bad(fmt::format("{}: invalid choice '{}' (choose from {})", o->lng, val, c));
    }
    switch (o->type) {
      case Arg::kUint: {
        auto n = parse_u64(val);
        if (!n) return bad(fmt::format("{}: '{}' is not a number", o->lng, val));
        params[o->key] = *n;
        break;
      }
      case Arg::kHex: {
        std::string t = val.rfind("0x", 0) == 0 || val.rfind("0X", 0) == 0 ? val : "0x" + val;
        auto n = parse_u64(t);
        if (!n) return bad(fmt::format("{}: '{}' is not a hex number", o->lng, val));
        params[o->key] = *n;
        break;
      }
      case Arg::kEnableDisable: params[o->key] = val == "enable" ? 1 : 0; break;
      default: params[o->key] = val; break;
    }
  }
  return {};
}

Result<Request> build_request(const std::string& cmd, const std::vector<std::string>& args) {
  const Command* c = find_command(cmd);
  if (!c) return bad("invalid choice: '" + cmd + "' (see virtnet -h)");
  Request r;
  r.method = c->method;
  for (auto& a : args)
    if (a == "-h" || a == "--help") {
      r.help = true;
      return r;
    }
  ojson p = ojson::object();
  std::vector<std::string> pos;
  if (cmd == "modify") {
    size_t at = args.size();
    p["all"] = 0;
    VDPU_TRY(parse_opts(c->opts, args, 0, p, &pos, &at));
    if (pos.empty()) return bad("modify: expected 'device' or 'queue'");
    if (p.value("all", 0) == 0) p.erase("all");
    VDPU_TRY(check_selector(p, true));
    if (!p.contains("all")) {
      // Echo order as the spec's example: selector, all, subcmd, options.
      p["all"] = 0;
    }
    bool queue = pos.front() == "queue";
    if (!queue && pos.front() != "device") return bad("modify: invalid choice '" + pos.front() + "' (device, queue)");
    p["subcmd"] = queue ? 1 : 0;
    size_t before = p.size();
    VDPU_TRY(parse_opts(queue ? modify_queue_opts() : modify_device_opts(), args, at + 1, p, nullptr));
    if (queue) {
      for (const char* k : {"period_mode", "period", "max_count"})
        if (!p.contains(k)) return bad(std::string("modify queue: --") + k + " is required");
    } else if (p.size() == before) {
      return bad("modify device: no option given");
    }
    // §15: MSI-X and QPs cannot change in one command.
    if (p.contains("msix_num") && p.contains("max_queue_pairs"))
      return bad("modify device: -n/--msix_num and -qp/--max_queue_pairs cannot be used together");
    r.params = std::move(p);
    return r;
  }
  if (cmd == "query") {
    // Echo keys in the spec's order: all, pf, vf, dbg_stats, brief, latency_stats, stats_clear, queue_id.
    ojson g = ojson::object();
    VDPU_TRY(parse_opts(c->opts, args, 0, g, nullptr));
    p["all"] = g.value("all", 0);
    for (const char* k : {"pf", "vf", "vuid"})
      if (g.contains(k)) p[k] = g[k];
    for (const char* k : {"dbg_stats", "brief", "latency_stats", "stats_clear"}) p[k] = g.value(k, 0);
    if (g.contains("queue_id")) p["queue_id"] = g["queue_id"];
    if (p["all"] == 0) p.erase("all");
    VDPU_TRY(check_selector(p, true));
    if (!p.contains("all")) {
      ojson o = ojson::object();
      o["all"] = 0;
      for (auto it = p.begin(); it != p.end(); ++it) o[it.key()] = it.value();
      p = std::move(o);
    }
    r.params = std::move(p);
    return r;
  }
  VDPU_TRY(parse_opts(c->opts, args, 0, p, cmd == "health" ? &pos : nullptr));
  if (cmd == "hotplug") {
    for (const char* k : {"ib_device", "mac", "mtu", "max_queue_size"})
      if (!p.contains(k)) return bad(std::string("hotplug: --") + k + " is required");
    if (p.contains("num_queues") == p.contains("max_queue_pairs"))
      return bad("hotplug: exactly one of -n/--num_queues and -qp/--max_queue_pairs is required");
  } else if (cmd == "unplug") {
    if (p.contains("id") == p.contains("vuid")) return bad("unplug: exactly one of -p/--pf and -u/--vuid is required");
  } else if (cmd == "stats") {
    VDPU_TRY(check_selector(p, true));
  } else if (cmd == "health") {
    if (pos.size() != 1 || pos[0] != "show") return bad("health: the sub-command 'show' is required");
    if (p.value("all", 0) == 0) p.erase("all");
    VDPU_TRY(check_selector(p, true));
  } else if (cmd == "log") {
    if (!p.contains("level")) return bad("log: -l/--level is required");
  } else if (cmd == "validate") {
    if (!p.contains("file")) return bad("validate: -f/--file is required");
  } else if (cmd == "update") {
    if (p.contains("start") == p.contains("status")) return bad("update: one of -s/--start and -t/--status is required");
  } else if (cmd == "debug") {
    if (p.contains("sriov_numvfs") && !p.contains("pf")) return bad("debug --sriov_numvfs needs -p/--pf");
  }
  r.params = std::move(p);
  return r;
}

std::string echo(const ojson& p) {
  std::string s = "{";
  bool first = true;
  for (auto it = p.begin(); it != p.end(); ++it) {
    s += first ? "" : ", ";
    first = false;
    std::string v;
    if (it.value().is_number_unsigned() || it.value().is_number_integer())
      v = fmt::format("'{:#x}'", it.value().get<uint64_t>());
    else if (it.value().is_string())
      v = "'" + it.value().get<std::string>() + "'";
    else
      v = it.value().dump();
    s += "'" + it.key() + "': " + v;
  }
  return s + "}";
}

std::string usage() {
  std::string s = "usage: virtnet [-h] [-v] {";
  bool first = true;
  for (auto& c : commands()) {
    s += (first ? "" : ",") + c.name;
    first = false;
  }
  s += "} ...\n\npositional arguments:\n";
  for (auto& c : commands()) s += fmt::format("  {:<10} {}\n", c.name, c.help);
  s += "\noptions:\n  -h, --help     show this help message and exit\n  -v, --version  show the version\n"
       "  --rpc-socket PATH  daemon socket (default $VIRTNET_RPC_SOCKET or /var/run/virtnet.sock)\n"
       "  --timeout SECONDS  RPC timeout (default 60)\n";
  return s;
}

std::string command_usage(const Command& c) {
  std::string s = "usage: virtnet " + c.name + " [-h]";
  auto add = [&](const std::vector<Opt>& opts) {
    for (auto& o : opts) {
      std::string name = o.shrt ? std::string(o.shrt) + ", " + o.lng : o.lng;
      std::string arg = o.type == Arg::kFlag ? "" : " " + std::string(o.key);
      for (auto& ch : arg) ch = char(std::toupper(uint8_t(ch)));
      s += fmt::format("  {:<34} {}\n", name + arg, o.help);
    }
  };
  s += "\n" + c.help + "\n\noptions:\n";
  add(c.opts);
  if (c.name == "modify") {
    s += "\nmodify device options:\n";
    add(modify_device_opts());
    s += "\nmodify queue options:\n";
    add(modify_queue_opts());
  }
  return s;
}

}  // namespace vdpu::virtnet_cli
