// SPDX-License-Identifier: GPL-2.0-or-later
// Reload (SIGHUP, pcpctl reload): a new configuration taken whole or not at all; the keys that
// need a restart are kept and named.
#include "pcpd/daemon.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "config/config_parser.hpp"
#include "config/interface_table.hpp"
#include "conntrack/ct_netlink.hpp"
#include "pcpd/announce_targets.hpp"
#include "pcpd/epoch_store.hpp"
#include "pcpd/mapping_snapshot.hpp"
#include "wire/codec.hpp"

namespace pcpd::daemon {

std::optional<std::string> Daemon::reload() {
  sd_notify(0, "RELOADING=1");
  std::shared_ptr<const config::Config> next;
  try {
    next = load_config(options_.config_path);
  } catch (const config::ConfigError& e) {
    // A bad file is logged and the running configuration stays (docs/interfaces.md).
    log::error("config.reload_failed", {{"message", e.what()}});
    sd_notify(0, "READY=1\nSTATUS=reload failed, previous configuration kept");
    return std::string(e.what());
  }
  const config::Config& old = *config_;
  config::Config cfg = *next;
  // These need a restart: keep the running values.
  if (cfg.nft_table != old.nft_table || cfg.nft_grace != old.nft_grace || cfg.state_dir != old.state_dir ||
      cfg.journal != old.journal || cfg.elected_mark != old.elected_mark || cfg.sticky_mark != old.sticky_mark ||
      cfg.mapped_mark != old.mapped_mark || cfg.log_group != old.log_group ||
      cfg.control_socket != old.control_socket) {
    // The same list as pcpd.conf(5) "DESCRIPTION" and the conffile's header.
    log::warn("config.restart_needed", {{"keys", "nftables.table, nftables.grace, daemon.state_dir, daemon.journal, "
                                                 "daemon.control_socket, checkpoint.elected_mark, checkpoint.sticky_mark, "
                                                 "checkpoint.mapped_mark, checkpoint.log_group"}});
    cfg.control_socket = old.control_socket;
    cfg.elected_mark = old.elected_mark;
    cfg.sticky_mark = old.sticky_mark;
    cfg.mapped_mark = old.mapped_mark;
    cfg.log_group = old.log_group;
    cfg.nft_table = old.nft_table;
    cfg.nft_grace = old.nft_grace;
    cfg.state_dir = old.state_dir;
    cfg.journal = old.journal;
  }
  if (cfg.ha.enabled != old.ha.enabled || cfg.ha.peer != old.ha.peer ||
      cfg.ha.peer_port != old.ha.peer_port || cfg.ha.port != old.ha.port ||
      cfg.ha.listen != old.ha.listen || cfg.ha.key_file != old.ha.key_file ||
      cfg.ha.scope_all != old.ha.scope_all || cfg.ha.ack_timeout_ms != old.ha.ack_timeout_ms ||
      cfg.ha.role_file != old.ha.role_file) {
    log::warn("config.restart_needed", {{"keys", "[ha]"}});
    cfg.ha = old.ha;
  }
  if (cfg.port != old.port) {
    auto sockets = open_sockets(cfg.port);
    if (!sockets) {
      const std::string why = "cannot bind the new port " + std::to_string(cfg.port);
      log::error("config.reload_failed", {{"message", why}});
      sd_notify(0, "READY=1\nSTATUS=reload failed, previous configuration kept");
      return why;
    }
    if (ha_) ha_->release_all("sockets_replaced");  // held responders send through the old ones
    install_sockets(std::move(*sockets));
  }
  if (cfg.external_interface != old.external_interface) {
    if (auto r = datapath_->set_external_interfaces({cfg.external_interface}); !r)
      log::error("nft.set_external_failed", {{"interface", cfg.external_interface}, {"error", error_text(r.error())}});
    // A commit outside apply(): the journal would record it at the next apply or within 5 s;
    // now, so that a kill -9 in between still restarts from the journal, not the set dump.
    journal_->sync();
  }
  const bool external_changed = cfg.policy.external_v4 != old.policy.external_v4;
  // hops-00 R-CAP-7: the effective set (or the code it travels under) changed.
  const bool capability_changed =
      cfg.policy.capabilities != old.policy.capabilities ||
      cfg.policy.option_codes.capability != old.policy.option_codes.capability;
  filter_ = make_filter(cfg);
  server_->set_policy(cfg.policy);
  config_ = std::make_shared<const config::Config>(std::move(cfg));
  apply_logging(*config_);
  log::info("config.reloaded", {{"config", config_->file},
                                {"internal_prefixes", join_prefixes(config_->internal_prefixes)},
                                {"external_address", join_addrs(config_->policy.external_v4)}});
  if (capability_changed) {
    const auto& caps = config_->policy.capabilities;
    log::info("capability.changed", {{"capabilities", caps ? caps->to_string() : "not configured"}});
    // R-CAP-7: unsolicited ANNOUNCE carrying the new set. A removed set is not announced
    // (R-CAP-5: nothing is sent without a set).
    if (caps) announce_capability_ = true;
  }
  if (external_changed) after_external_change();  // mappings moved, R-EPOCH-4, R-ANN-3 decision, R-PMP-4, R-ANN-7
  apply_static(true, "reload");
  // hops-00 R-CAP-7, same schedule as RFC 6887 §14.1.3 (again if the external change started
  // a round: it then carries the new set from its first copy).
  if (capability_changed && config_->policy.capabilities) start_announce();
  const std::string ready = "READY=1\nSTATUS=serving " + std::to_string(server_->mapping_count()) +
                            " mappings, epoch " + std::to_string(server_->epoch());
  sd_notify(0, ready.c_str());
  return std::nullopt;
}

}  // namespace pcpd::daemon