// SPDX-License-Identifier: GPL-2.0-or-later
// Daemon: the external IPv4 address follows the WAN interface (DHCP, PPPoE), and a new address
// reaches the clients (RFC 6887 §14.2 Mapping Update, §8.5 epoch, RFC 6886 §3.2.1).
//
// An address event (rtnetlink) arms a short timer; when it fires the external interface's
// addresses are read again. A new set goes to core (Server::set_policy), core moves the NAT44
// mappings off the gone addresses in one datapath transaction (Server::readdress: same external
// port where free), the epoch resets (R-EPOCH-4), ANNOUNCE and the NAT-PMP address announcement
// go out (R-ANN-3 decision, R-PMP-4), and every moved PCP mapping's client gets the response its
// next request would get, unicast, on the announcement schedule (R-ANN-7), until it refreshes.
// No address at all: the mappings stay as they are (requests get NETWORK_FAILURE, §7.4) until
// one comes; the same address back is no change.
#include <sys/socket.h>

#include <algorithm>

#include "config/config_parser.hpp"
#include "config/interface_table.hpp"
#include "pcpd/daemon.hpp"

namespace pcpd::daemon {

namespace {
// DHCP renumbering is a delete and an add, PPPoE a link that goes and comes: read once it settled.
constexpr std::int64_t kAddressSettleMs = 200;

// The same addresses, whatever their order (getifaddrs may list them differently).
bool same_set(std::vector<wire::IpAddr> a, std::vector<wire::IpAddr> b) {
  auto less = [](const wire::IpAddr& x, const wire::IpAddr& y) { return x.bytes < y.bytes; };
  std::sort(a.begin(), a.end(), less);
  std::sort(b.begin(), b.end(), less);
  return a == b;
}
}  // namespace

void Daemon::start_address_watch() {
  mappings_external_ = config_->policy.external_v4;
  auto watch = AddressWatch::open();
  auto timer = BootTimer::create();
  auto update = BootTimer::create();
  if (!watch || !timer || !update) {
    log::warn("external.watch_failed", {{"error", error_text(!watch ? watch.error() : !timer ? timer.error() : update.error())},
                                        {"effect", "the external address is read at start and reload only"}});
    return;
  }
  address_watch_.emplace(std::move(*watch));
  address_timer_.emplace(std::move(*timer));
  update_timer_.emplace(std::move(*update));
  if (!loop_->add(address_watch_->fd(), [this] { on_address_event(); }) ||
      !loop_->add(address_timer_->fd(), [this] { on_address_timer(); }) ||
      !loop_->add(update_timer_->fd(), [this] { on_update_timer(); })) {
    log::warn("external.watch_failed", {{"error", "epoll_ctl"}});
    loop_->remove(address_watch_->fd());
    loop_->remove(address_timer_->fd());
    loop_->remove(update_timer_->fd());
    address_watch_.reset();
    address_timer_.reset();
    update_timer_.reset();
  }
  // The address may have changed since the configuration was read, or while pcpd was stopped
  // (the restored mappings then sit on an address the interface no longer has): the same as a
  // change seen while running, before the first answer.
  follow_external_address();
  if (!config_->policy.external_v4.empty() && !(ha_ && !ha_->serving())) {
    const core::Server::Readdress r = server_->readdress();
    if (!r.moved.empty()) {
      log::info("external.mappings_moved", {{"to", join_addrs(config_->policy.external_v4)}, {"moved", r.moved.size()},
                                           {"port_kept", r.port_kept}, {"no_port", r.no_port}, {"when", "start"}});
      reset_epoch("external_address_changed");  // R-EPOCH-4
    }
  }
}

void Daemon::on_address_event() {
  if (!address_watch_->drain()) return;
  const std::int64_t when = clock_.now().count() + kAddressSettleMs;
  if (address_timer_->armed_at() != -1) return;  // already gathering
  if (auto r = address_timer_->arm_at(when); !r) log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}

void Daemon::on_address_timer() {
  address_timer_->drain();
  address_timer_->disarm();
  follow_external_address();
}

void Daemon::follow_external_address() {
  // An address the operator wrote down is not followed; nor are the addresses of one router of
  // a VRRP pair ([ha]): the pair's external address is the WAN VIP, which must be configured.
  if (!config_->policy.nat44 || config_->external_address_set || ha_) return;
  const auto table = host_interfaces();
  if (!table) return;
  std::vector<wire::IpAddr> now = config::external_v4_of(*table, config_->external_interface);
  if (same_set(now, config_->policy.external_v4)) {
    if (readdress_pending_) after_external_change();
    return;
  }
  log::info("external.address_changed", {{"interface", config_->external_interface},
                                         {"from", join_addrs(config_->policy.external_v4)},
                                         {"to", join_addrs(now)}});
  auto next = std::make_shared<config::Config>(*config_);
  next->policy.external_v4 = std::move(now);
  // hops-00 `auto`: nat44 is claimed only while an external address is known.
  config::derive_capabilities(*next);
  const bool capability_changed = next->policy.capabilities != config_->policy.capabilities;
  server_->set_policy(next->policy);
  config_ = std::move(next);
  after_external_change();
  if (capability_changed && config_->policy.capabilities) {
    log::info("capability.changed", {{"capabilities", config_->policy.capabilities->to_string()}});
    announce_capability_ = true;  // hops-00 R-CAP-7: the next round carries the new set
    start_announce();
  }
}

void Daemon::after_external_change() {
  const std::vector<wire::IpAddr>& now = config_->policy.external_v4;
  // A backup's table is the primary's copy: the primary moves the mappings and the peer link
  // brings the moves here.
  if (ha_ && !ha_->serving()) return;
  core::Server::Readdress r = server_->readdress();
  if (ha_) ha_->flush();  // the moves go to the standby now, not with the next request
  if (now.empty()) {
    // §7.4: NETWORK_FAILURE for NAT44 requests meanwhile; nothing is lost, nothing announced.
    log::warn("external.address_gone", {{"interface", config_->external_interface},
                                        {"mappings_waiting", r.waiting}});
    readdress_pending_ = false;
    return;
  }
  if (r.failed) {
    // All or nothing: every mapping is still on the old address. The datapath watch retries.
    readdress_pending_ = true;
    note_datapath_errors("readdress");
    log::error("external.readdress_failed", {{"to", join_addrs(now)}});
    return;
  }
  // Mappings that found no free port on the new addresses stay behind; the datapath timer tries
  // them again (every 5 s) as ports free up. Logged when something moved or that number changed.
  readdress_pending_ = r.no_port != 0;
  if (!r.moved.empty() || r.no_port != readdress_no_port_)
    log::info("external.mappings_moved", {{"to", join_addrs(now)}, {"moved", r.moved.size()},
                                         {"port_kept", r.port_kept}, {"no_port", r.no_port}});
  readdress_no_port_ = r.no_port;
  // R-EPOCH-4: the epoch resets when an address the mappings were on is gone (or something
  // moved); an added address, or the same ones in another order, changes nothing for clients.
  const bool lost = std::any_of(mappings_external_.begin(), mappings_external_.end(), [&](const wire::IpAddr& a) {
    return std::find(now.begin(), now.end(), a) == now.end();
  });
  mappings_external_ = now;
  if (lost || !r.moved.empty()) {
    reset_epoch("external_address_changed");  // R-EPOCH-4
    start_announce();                          // R-ANN-3 decision, R-PMP-4
  }
  start_mapping_updates(std::move(r.moved));
  apply_static(false, "address");  // NAT44 ones waiting for an address, or moved off a port
}

void Daemon::start_mapping_updates(std::vector<core::Mapping> moved) {
  if (!config_->announce || !update_timer_) return;
  std::size_t added = 0;
  for (const core::Mapping& m : moved) {
    // NAT-PMP has no such message (its clients get the §3.2.1 announcement); a mapping whose
    // last request pcpd did not see since it started has no known reply address.
    if (m.origin != core::Origin::Pcp || m.reply_port == 0) continue;
    auto local = server_->local_address(m.reply_local);
    if (!local) continue;
    PendingUpdate u;
    u.kind = m.kind;
    u.internal = m.internal_addr;
    u.protocol = m.protocol;
    u.internal_port = m.internal_port;
    u.remote = m.remote_addr;
    u.remote_port = m.remote_port;
    u.expires = m.expires;
    u.external = m.external_addr;
    u.external_port = m.external_port;
    u.client = m.client_addr;
    u.client_port = m.reply_port;
    u.local = *local;
    updates_.push_back(u);
    ++added;
  }
  if (added == 0) return;
  // One round for all pending ones: entries of an earlier round that moved again are dropped at
  // their next copy (their mapping no longer has the endpoint they announce).
  update_schedule_.start(config_->announce_copies, clock_.now());
  if (auto r = update_timer_->arm_at(update_schedule_.next_due().count()); !r)
    log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}

void Daemon::on_update_timer() {
  update_timer_->drain();
  update_timer_->disarm();
  if (update_schedule_.take(clock_.now())) send_mapping_update_copy();
  if (!update_schedule_.active() || updates_.empty()) {
    update_schedule_.cancel();
    updates_.clear();
    return;
  }
  if (auto r = update_timer_->arm_at(update_schedule_.next_due().count()); !r)
    log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}

void Daemon::send_mapping_update_copy() {
  if (ha_ && !ha_->serving()) return;  // a backup answers no client
  std::array<std::uint8_t, wire::kMaxMessageSize> buf{};
  std::size_t sent = 0;
  const std::size_t before = updates_.size();
  std::erase_if(updates_, [&](const PendingUpdate& u) {
    auto m = server_->find(u.kind, u.internal, u.protocol, u.internal_port, u.remote, u.remote_port);
    // R-ANN-7: stop once the client refreshed (a new expiry), or the mapping is gone or moved.
    if (!m || m->expires != u.expires || m->external_addr != u.external || m->external_port != u.external_port)
      return true;
    const std::size_t len = server_->encode_mapping_update(*m, buf);
    const auto& socket = u.client.is_v4() ? sockets_.v4 : sockets_.v6;
    if (len == 0 || !socket) return true;
    if (auto r = socket->send({buf.data(), len}, u.client, u.client_port, u.local, 0); !r) {
      log::limited(socket_limiter_, log::Level::Warning, "external.update_send_failed",
                   {{"client", u.client}, {"port", u.client_port}, {"error", error_text(r.error())}});
      return false;
    }
    ++sent;
    return false;
  });
  log::debug("external.updates_sent", {{"copy", update_schedule_.sent()}, {"sent", sent},
                                       {"stopped", before - updates_.size()}});
}

}  // namespace pcpd::daemon
