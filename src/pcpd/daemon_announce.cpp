// SPDX-License-Identifier: GPL-2.0-or-later
// Unsolicited ANNOUNCE (RFC 6887 §14.1.3) and the NAT-PMP address announcement (RFC 6886
// §3.2.1): the schedule and one round's copies (the unicast ones: daemon_announce_unicast.cpp).
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

void Daemon::start_announce() {
  if (!config_->announce) return;
  collect_unicast_targets();
  schedule_.start(config_->announce_copies, clock_.now());
  rearm_announce();
}

void Daemon::rearm_announce() {
  const core::Millis next = schedule_.next_due();
  if (auto r = announce_timer_->arm_at(next == core::Millis::max() ? std::numeric_limits<std::int64_t>::max()
                                                                    : next.count());
      !r)
    log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}

void Daemon::on_announce_timer() {
  announce_timer_->drain();
  if (schedule_.take(clock_.now())) send_announce_copy();
  if (!schedule_.active()) announce_capability_ = false;  // that round is over
  rearm_announce();
}

void Daemon::send_announce_copy() {
  if (ha_ && !ha_->serving()) return;  // a backup serves no client: its epoch means nothing to them
  const auto interfaces = host_interfaces();
  if (!interfaces) return;
  const config::InterfaceTable& table = *interfaces;
  // RFC 6887 §14.1.3: each copy carries the current epoch.
  std::array<std::uint8_t, wire::kMaxMessageSize> pcp{};
  std::array<std::uint8_t, 16> pmp{};
  // hops-00 R-CAP-6 (capability.always) inside encode_announce; R-CAP-7/9 for this round.
  const std::size_t pcp_len = server_->encode_announce(pcp, announce_capability_);
  const std::size_t pmp_len = config_->policy.natpmp ? server_->encode_natpmp_announce(pmp) : 0;
  const auto send = [&](const UdpServerSocket& s, std::span<const std::uint8_t> data,
                        const wire::IpAddr& group, const wire::IpAddr& from, const AnnounceTarget& t,
                        const char* kind) {
    if (data.empty()) return;
    if (auto r = s.send(data, group, wire::kClientPort, from, t.ifindex); !r)
      log::limited(socket_limiter_, log::Level::Warning, "announce.send_failed",
                   {{"kind", kind}, {"interface", t.interface}, {"from", from}, {"error", error_text(r.error())}});
  };
  for (const AnnounceTarget& t : announce_targets(*config_, table)) {
    if (t.source_v4 && sockets_.v4) {
      send(*sockets_.v4, {pcp.data(), pcp_len}, all_hosts_v4(), *t.source_v4, t, "pcp");
      send(*sockets_.v4, {pmp.data(), pmp_len}, all_hosts_v4(), *t.source_v4, t, "natpmp");  // R-PMP-4
      // Hot standby: clients use the VRRP address as their server and check the source of an
      // ANNOUNCE against it (R-SEC-5), so every internal IPv4 address of the interface sends.
      const config::Interface* itf = ha_ ? table.find(t.interface) : nullptr;
      for (const auto& a : itf != nullptr ? itf->addrs : decltype(itf->addrs){}) {
        if (!a.addr.is_v4() || a.addr == *t.source_v4 || !config_->accepts_source(a.addr)) continue;
        send(*sockets_.v4, {pcp.data(), pcp_len}, all_hosts_v4(), a.addr, t, "pcp");
        send(*sockets_.v4, {pmp.data(), pmp_len}, all_hosts_v4(), a.addr, t, "natpmp");
      }
    }
    if (t.source_v6 && sockets_.v6)
      send(*sockets_.v6, {pcp.data(), pcp_len}, all_nodes_v6(), *t.source_v6, t, "pcp");  // R-ANN-5
    log::debug("announce.sent", {{"interface", t.interface}, {"copy", schedule_.sent()},
                                 {"epoch", server_->epoch()},
                                 {"from_v4", t.source_v4 ? t.source_v4->to_string() : "-"},
                                 {"from_v6", t.source_v6 ? t.source_v6->to_string() : "-"}});
  }
  send_unicast_announce({pcp.data(), pcp_len});
}
}  // namespace pcpd::daemon
