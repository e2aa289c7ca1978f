// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd: the PCP (RFC 6887) / NAT-PMP (RFC 6886) server daemon. Command line: docs/interfaces.md.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "config/config_parser.hpp"
#include "pcpd/daemon.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pcpd: Port Control Protocol (RFC 6887) and NAT-PMP server for Linux routers"};
  pcpd::daemon::Options options;
  std::string check_file;
  bool version = false;
  app.add_option("-c,--config", options.config_path, "configuration file")
      ->capture_default_str();
  app.add_option("--check-config", check_file,
                 "validate FILE (syntax, keys, types, ranges) and exit: 0 valid, 1 invalid");
  app.add_flag("-d,--debug", options.debug, "log level debug");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }

  if (version) {
    std::printf("pcpd %s\n", PCPD_VERSION);
    return 0;
  }
  if (!check_file.empty()) {
    try {
      (void)pcpd::config::parse_config_file(check_file);
    } catch (const pcpd::config::ConfigError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    std::printf("%s: valid\n", check_file.c_str());
    return 0;
  }

  pcpd::daemon::Daemon daemon(std::move(options));
  return daemon.run();
}
