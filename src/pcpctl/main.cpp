// SPDX-License-Identifier: GPL-2.0-or-later
// pcpctl: the operator's tool for a running pcpd, over the control socket (never netlink).
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "ctl/ctl_json.hpp"
#include "ctl/ctl_socket.hpp"
#include "ctl/metrics.hpp"

namespace {

// Prints the error of a failed call and returns the exit status.
int report_failure(const nlohmann::json& r) {
  std::fprintf(stderr, "pcpctl: %s\n", r.value("error", std::string("unknown error")).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcpctl: control a running pcpd"};
  app.require_subcommand(1);
  std::string socket_path = pcpd::ctl::kDefaultPath;
  app.add_option("--socket", socket_path, "control socket")->capture_default_str();

  bool json = false;
  auto* list = app.add_subcommand("list", "list mappings");
  list->add_flag("--json", json, "JSON array");

  std::string format = "text";
  auto* stats = app.add_subcommand("stats", "counters");
  stats->add_option("--format", format, "text, json or prometheus")
      ->check(CLI::IsMember({"text", "json", "prometheus"}))
      ->capture_default_str();
  stats->add_flag_callback("--json", [&] { format = "json"; }, "same as --format json");

  std::string role;
  auto* ha = app.add_subcommand("ha", "tell pcpd its VRRP role (keepalived notify), or ask whether it is ready to take it");
  ha->add_option("role", role, "primary, backup or fault; ready: exit 0 when this router holds the elected set")
      ->required()
      ->check(CLI::IsMember({"primary", "backup", "fault", "master", "ready"}));
  auto* touch = app.add_subcommand("ct-touch", "re-announce every marked connection to conntrackd");
  auto* reload = app.add_subcommand("reload", "reload the configuration (like SIGHUP)");
  std::string del_protocol, del_internal, del_remote;
  auto* del = app.add_subcommand("delete", "delete one mapping, whoever made it (e.g. for a client that lost its nonce)");
  del->add_option("-p,--protocol", del_protocol, "tcp, udp, sctp, dccp, udplite or a number")->required();
  del->add_option("-i,--internal", del_internal, "the internal endpoint, ADDRESS:PORT ([IPv6]:PORT)")->required();
  del->add_option("-r,--remote", del_remote, "the remote peer of a PEER mapping, ADDRESS:PORT");
  std::string flush_client;
  auto* flush = app.add_subcommand("flush", "delete every mapping of one host");
  flush->add_option("--client", flush_client, "the host: its own mappings and those made for it")->required();

  app.set_version_flag("--version", std::string("pcpctl ") + PCPD_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2 (CLI11's own codes, 105 and up, meant
    // nothing to scripts and keepalived, which read 1 as "failed" or "not ready").
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (list->parsed()) {
    // Printed as the mappings arrive (the daemon streams them: 1,000,000 are ~300 MB of JSON);
    // --json writes the same array nlohmann's dump(2) would, one element at a time.
    std::size_t printed = 0;
    auto print = [&](const nlohmann::json& m) {
      if (!json) {
        std::cout << pcpd::ctl::mapping_to_text(m) << "\n";
        return;
      }
      std::string text = m.dump(2);
      std::string indented = "  ";
      for (char c : text) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
      std::cout << (printed++ == 0 ? "[\n" : ",\n") << indented;
    };
    auto r = pcpd::ctl::call_stream(socket_path, "list", nlohmann::json::object(), print);
    // A pcpd from before the streamed list (still running after an upgrade) answers one array.
    if (r.value("ok", false) && r.contains("result") && r["result"].is_array())
      for (const auto& m : r["result"]) print(m);
    if (!r.value("ok", false)) {
      // A list cut short stays unterminated JSON, so that no script takes it for the whole table.
      if (printed > 0) std::cout << "\n";
      std::cout.flush();
      return report_failure(r);
    }
    if (json) std::cout << (printed == 0 ? "[]\n" : "\n]\n");
    return 0;
  }
  if (stats->parsed()) {
    auto r = pcpd::ctl::call(socket_path, "stats");
    if (!r.value("ok", false)) return report_failure(r);
    if (format == "json") {
      std::cout << r["result"].dump(2) << "\n";
    } else if (format == "prometheus") {
      std::cout << pcpd::ctl::render_prometheus(r["result"]);
    } else {
      std::cout << pcpd::ctl::render_text(r["result"]);
    }
    return 0;
  }
  std::string cmd;
  nlohmann::json args = nlohmann::json::object();
  if (ha->parsed() && role == "ready") {
    // Exit 0 only when ready: keepalived's track_script lowers the priority otherwise.
    auto r = pcpd::ctl::call(socket_path, "ha-ready");
    if (!r.value("ok", false)) return report_failure(r);
    const bool ready = r["result"].value("ready", false);
    std::cout << (ready ? "ready: " : "not ready: ") << r["result"].value("reason", std::string()) << "\n";
    return ready ? 0 : 1;
  }
  if (ha->parsed()) {
    cmd = "ha";
    args["role"] = role == "master" ? "primary" : role;
  } else if (touch->parsed()) {
    cmd = "ct-touch";
  } else if (reload->parsed()) {
    cmd = "reload";
  } else if (del->parsed()) {
    cmd = "delete";
    args["protocol"] = del_protocol;
    args["internal"] = del_internal;
    if (!del_remote.empty()) args["remote"] = del_remote;
  } else if (flush->parsed()) {
    cmd = "flush";
    args["client"] = flush_client;
  }
  auto r = pcpd::ctl::call(socket_path, cmd, args);
  if (!r.value("ok", false)) return report_failure(r);
  if (!r["result"].is_null()) std::cout << (r["result"].is_string() ? r["result"].get<std::string>() : r["result"].dump()) << "\n";
  return 0;
}
