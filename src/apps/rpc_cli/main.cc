// vdpu-rpc (installed also as spdk_rpc and snap_rpc): the JSON-RPC client,
// rpc.py-compatible. `vdpu-rpc [-s SOCK] [-t TIMEOUT] [-v] <method> [args]`.
// Exit status: 0 on success, 1 on any error (usage, connection, timeout,
// error response).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>

#include "apps/rpc_cli/cli_args.h"
#include "apps/rpc_cli/docs.h"
#include "rpc/client.h"
#include "rpc/schema.h"

namespace {

using nlohmann::json;
namespace schema = vdpu::rpc::schema;

std::string method_list() {
  std::string s = "Methods (vdpu-rpc <method> -h for its arguments):\n";
  for (auto& m : schema::Registry::get().methods())
    if (m.service == schema::kServiceSnap) s += "  " + m.name + "\n";
  s += "Any other method: vdpu-rpc call <method> ['{json params}']\n";
  return s;
}

void print_result(const json& r) {
  if (r.is_string()) std::cout << r.get<std::string>() << "\n";  // rpc.py's print_json
  else std::cout << r.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vdpu-rpc: JSON-RPC client of vdpu-snap (spdk_rpc / snap_rpc compatible)"};
  app.prefix_command();  // everything from the method name on is the method's
  std::string sock = "/var/tmp/spdk.sock";
  double timeout = 60.0;
  bool verbose = false, dump_docs = false, dry_run = false;
  std::string check_docs, docs_out;
  app.add_option("-s,--server", sock, "RPC unix socket path")->capture_default_str();
  app.add_option("-t,--timeout", timeout, "Timeout in seconds for the response")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Print the request and response JSON");
  app.add_flag("--dry-run", dry_run, "Print the request instead of sending it");
  app.add_flag("--dump-docs", dump_docs, "Print docs/rpc.md (generated from the schema)");
  app.add_option("--docs-out", docs_out, "Write docs/rpc.md to FILE");
  app.add_option("--check-docs", check_docs, "Check that FILE documents every schema method");
  app.footer(method_list());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  auto& reg = schema::Registry::get();
  for (auto& e : reg.errors()) std::cerr << "warning: schema: " << e << "\n";
  if (dump_docs) {
    std::cout << vdpu::rpc::cli::render_docs(reg.methods());
    return 0;
  }
  if (!docs_out.empty()) {
    std::ofstream f(docs_out);
    f << vdpu::rpc::cli::render_docs(reg.methods());
    return f.good() ? 0 : 1;
  }
  if (!check_docs.empty()) {
    std::ifstream f(check_docs);
    if (!f) {
      std::cerr << "cannot read " << check_docs << "\n";
      return 1;
    }
    std::string doc(std::istreambuf_iterator<char>(f), {});
    auto missing = vdpu::rpc::cli::missing_in_docs(doc, reg.methods());
    for (auto& m : missing) std::cerr << check_docs << ": method " << m << " is not documented\n";
    if (!missing.empty())
      std::cerr << "regenerate it: vdpu-rpc --dump-docs > docs/rpc.md (or ninja rpc_docs)\n";
    return missing.empty() && reg.errors().empty() ? 0 : 1;
  }
  std::vector<std::string> rest = app.remaining();
  if (rest.empty()) {
    std::cerr << app.help() << "\nerror: no method given\n";
    return 1;
  }
  // -h after a method: its usage. Everything else goes through translate(),
  // the same translation vdpu-snap applies to the lines of its init files.
  if (rest[0] != "call")
    if (const schema::Method* m = vdpu::rpc::cli::find_method(rest[0]))
      for (size_t i = 1; i < rest.size(); ++i)
        if (rest[i] == "-h" || rest[i] == "--help") {
          std::cout << vdpu::rpc::cli::method_help(*m);
          return 0;
        }
  auto call = vdpu::rpc::cli::translate(rest);
  if (!call) {
    std::cerr << "error: " << call.error().message << "\n";
    if (rest[0] == "call") return 1;
    if (const schema::Method* m = vdpu::rpc::cli::find_method(rest[0]))
      std::cerr << "\n" << vdpu::rpc::cli::method_help(*m);
    else
      std::cerr << "(to send it anyway: vdpu-rpc call " << rest[0] << " '{...}')\n";
    return 1;
  }
  std::string method = call->method;
  json params = std::move(call->params);
  json req = vdpu::rpc::make_request(method, params, 1);
  if (dry_run) {
    std::cout << req.dump(2) << "\n";
    return 0;
  }
  if (verbose) std::cerr << "request:\n" << req.dump(2) << "\n";
  vdpu::rpc::Client c;
  if (auto s = c.connect(sock); !s) {
    std::cerr << "Error while connecting to " << sock << ": " << s.error().message
              << "\nIs the vdpu-snap (SPDK) application running?\n";
    return 1;
  }
  auto resp = c.call(method, params, timeout);
  if (!resp) {
    if (resp.error().code == vdpu::Errc::kTimeout)
      std::cerr << "Timeout while waiting for response (" << timeout << " s) to " << method << "\n";
    else
      std::cerr << "Error: " << resp.error().message << "\n";
    return 1;
  }
  if (verbose) std::cerr << "response:\n" << resp->dump(2) << "\n";
  if (resp->contains("error")) {
    // As rpc.py: the request (params + method + req_id), then the error object.
    json shown = params.is_object() ? params : json::object();
    shown["method"] = method;
    shown["req_id"] = 1;
    std::cerr << "request:\n" << shown.dump(2) << "\nGot JSON-RPC error response\nresponse:\n"
              << (*resp)["error"].dump(2) << "\n";
    return 1;
  }
  if (!resp->contains("result")) {
    std::cerr << "Error: response without result: " << resp->dump() << "\n";
    return 1;
  }
  print_result((*resp)["result"]);
  return 0;
}
