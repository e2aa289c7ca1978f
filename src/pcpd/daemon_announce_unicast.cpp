// SPDX-License-Identifier: GPL-2.0-or-later
// Daemon: unicast ANNOUNCE. RFC 6887 §14.1.3 lets a server that knows its clients send the
// unsolicited ANNOUNCE to each of them, to the address and port it sends its requests from
// (R-ANN-4), besides the multicast to 224.0.0.1 / ff02::1. We do both: libpcp sends from and
// listens on one dual-stack socket bound to [::]:5350, which Linux does not hand IPv4 multicast,
// so without the unicast copy it never learned of an epoch reset and never re-created its IPv4
// mappings. The targets are the (client, port, server address) of every PCP mapping whose
// request pcpd answered since it started (Mapping::reply_port/reply_local), collected once per
// round and capped at kMaxUnicastTargets, so a round sends at most that many datagrams per copy,
// on the multicast schedule (first copy at once, then 250 ms, doubling).
#include <algorithm>
#include <unordered_set>

#include "pcpd/daemon.hpp"

namespace pcpd::daemon {

namespace {

constexpr std::size_t kMaxUnicastTargets = 4096;

}  // namespace

void Daemon::collect_unicast_targets() {
  unicast_targets_.clear();
  std::unordered_set<std::uint64_t> seen;
  std::size_t skipped = 0;
  server_->for_each_mapping([&](const core::Mapping& m) {
    if (m.origin != core::Origin::Pcp || m.reply_port == 0) return;
    auto local = server_->local_address(m.reply_local);
    if (!local) return;
    UnicastTarget t{m.client_addr, m.reply_port, *local};
    const std::uint64_t key = (wire::IpAddrHash{}(t.client) * 1000003u) ^ (std::uint64_t{t.port} << 8) ^ m.reply_local;
    if (!seen.insert(key).second &&
        std::find(unicast_targets_.begin(), unicast_targets_.end(), t) != unicast_targets_.end())
      return;
    if (unicast_targets_.size() >= kMaxUnicastTargets) {
      ++skipped;
      return;
    }
    unicast_targets_.push_back(t);
  });
  if (skipped != 0)
    log::warn("announce.unicast_capped", {{"targets", unicast_targets_.size()}, {"left_out", skipped}});
}

void Daemon::send_unicast_announce(std::span<const std::uint8_t> announce) {
  if (announce.empty()) return;
  std::size_t sent = 0;
  for (const UnicastTarget& t : unicast_targets_) {
    const auto& socket = t.client.is_v4() ? sockets_.v4 : sockets_.v6;
    if (!socket) continue;
    // From the address the client sent its requests to (R-SEC-5: clients check the source).
    if (auto r = socket->send(announce, t.client, t.port, t.local, 0); !r) {
      log::limited(socket_limiter_, log::Level::Warning, "announce.send_failed",
                   {{"kind", "unicast"}, {"to", t.client}, {"port", t.port}, {"error", error_text(r.error())}});
      continue;
    }
    ++sent;
  }
  if (!unicast_targets_.empty())
    log::debug("announce.unicast_sent", {{"copy", schedule_.sent()}, {"clients", sent}});
}

}  // namespace pcpd::daemon
