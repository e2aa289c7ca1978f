// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::config::Config: the whole configuration of the daemon after parsing and validation:
// core::Policy (what core decides with) plus the daemon's own settings. Immutable once built;
// the daemon swaps a whole new one on SIGHUP. Keys and defaults: docs/interfaces.md.
// Owns Config and ConfigError. Parsing lives in config_parser.hpp, interface look-ups in
// interface_table.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/policy.hpp"
#include "util/log.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::config {

// A configuration error at start-up or reload. what() is "file:line: message" (line 0: unknown,
// printed as "file: message").
struct ConfigError : std::runtime_error {
  ConfigError(std::string file_name, int line_number, std::string text);
  std::string file;
  int line;
  std::string message;
};

struct Config {
  std::string file;  // the file it was read from (for messages)

  // Everything core decides with. policy.external_v4 is filled from [interfaces] external_address
  // or, by resolve_interfaces(), from the IPv4 addresses of the external interface.
  core::Policy policy;

  // [interfaces]
  std::vector<std::string> internal_interfaces;
  // Sources accepted (RFC 6887 §8.2). Empty until resolve_interfaces() when not in the file.
  std::vector<wire::Prefix> internal_prefixes;
  bool internal_prefixes_set = false;  // given in the file
  std::string external_interface;
  bool external_address_set = false;  // policy.external_v4 given in the file
  int internal_line = 0;              // where interfaces.internal / external are, for messages
  int external_line = 0;

  // [announce] (RFC 6887 §14.1.3)
  bool announce = true;
  std::uint32_t announce_copies = 10;

  // [nftables]
  std::string nft_table = "pcpd";
  std::uint32_t nft_grace = 30;

  // [checkpoint] ct mark bits (the limits live in policy.checkpoint); must match pcpd.nft.
  std::uint32_t elected_mark = 0x1;
  std::uint32_t sticky_mark = 0x2;
  // Set by pcpd.nft on every connection a mapping translates, pinholes or elects: conntrack walks
  // ask the kernel for these only (ct::ConntrackSync).
  std::uint32_t mapped_mark = 0x8;
  // NFLOG group on which pcpd.nft announces each new connection of a mapping; 0: not read (every
  // search for a MAP's connections walks the conntrack table).
  std::uint16_t log_group = 5351;

  // [capability] (hops-00, docs/design.md "CAPABILITY"); the set itself is policy.capabilities and
  // the switch policy.capability_always. `auto`: the set is derived from the rest of the
  // configuration by derive_capabilities() (config_parser.hpp), again after interface look-up.
  bool capability_auto = false;
  int capability_line = 0;  // where capability.names is, for messages

  // [ha] hot standby peer link (docs/interfaces.md "[ha]"): on when `peer` is set. The key file
  // is read (and its size and mode checked) by the daemon at start, not here.
  struct Ha {
    bool enabled = false;
    wire::IpAddr peer{};
    std::uint16_t peer_port = 5352;
    std::optional<wire::IpAddr> listen;  // local address of the link; default: any
    std::uint16_t port = 5352;
    std::string key_file = "/etc/pcpd/ha.key";
    bool scope_all = false;              // scope = "all"; default "elected"
    std::uint32_t ack_timeout_ms = 200;  // bound on the wait for the peer's ack (RFC 7767 §3)
    // keepalived's last state, written by ha/pcpd-ha-notify before it calls pcpctl; read at
    // start so that a pcpd restarted under a running keepalived takes the role it had (keepalived
    // sends no notify when its own state does not change). In /run: gone after a reboot, where
    // keepalived's first notify tells the role. Empty: not read.
    std::string role_file = "/run/pcpd-ha.role";
    int key_file_line = 0;               // for messages
  } ha;

  // [[static]]: the operator's permanent port forwards (RFC 6887 §11.3 static mappings;
  // docs/interfaces.md). Core gets them as core::Mapping (Server::set_static).
  struct Static {
    std::uint8_t protocol = 0;
    wire::IpAddr internal_addr{};
    std::uint16_t internal_port = 0;
    std::uint16_t external_port = 0;  // NAT44; the internal port unless given
    wire::IpAddr external_addr{};     // NAT44; unspecified: the first external address
    std::string description;
    bool checkpoint = false;          // elected (RFC 7767): its connections reach the standby
    int line = 0;                     // of its [[static]] header, for messages
  };
  std::vector<Static> statics;

  // [daemon]
  std::string control_socket = "/run/pcpd/ctl.sock";
  std::string state_dir = "/var/lib/pcpd";
  // state_dir/mappings.journal: every committed change, so that a restart after kill -9 or a
  // crash restores the table without the nft set dump (pcpd/mapping_journal.hpp).
  bool journal = true;
  // The journal is compacted (a new snapshot, an empty journal) past max(this, the snapshot's size).
  std::uint32_t journal_max_mb = 64;
  std::uint16_t port = wire::kServerPort;
  log::Target log_target = log::Target::Auto;
  log::Level log_level = log::Level::Info;

  // True when `source` lies in one of internal_prefixes (RFC 6887 §8.2, R-HDR-2).
  [[nodiscard]] bool accepts_source(const wire::IpAddr& source) const;
};

}  // namespace pcpd::config
