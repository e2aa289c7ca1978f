// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's control-socket commands (docs/interfaces.md "pcpctl(8)") and the HA role.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "ctl/ctl_json.hpp"
#include "ctl/metrics.hpp"
#include "pcpd/daemon.hpp"
#include "wire/protocol_names.hpp"

namespace pcpd::daemon {

const char* to_string(Role role) {
  switch (role) {
    case Role::Standalone: return "standalone";
    case Role::Primary: return "primary";
    case Role::Backup: return "backup";
    case Role::Fault: return "fault";
  }
  return "?";
}

ha::Role link_role(Role role) {
  return role == Role::Primary ? ha::Role::Primary : role == Role::Backup ? ha::Role::Backup : ha::Role::Fault;
}

bool Daemon::open_control() {
  const std::string& path = config_->control_socket;
  // /run/pcpd normally comes from systemd's RuntimeDirectory=; create it when run by hand.
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) {
      log::error("control.setup_failed", {{"path", dir}, {"error", std::strerror(errno)}});
      return false;
    }
  }
  // A streamed answer (pcpctl list) is written piece by piece when its connection is writable,
  // between requests (ctl_socket.hpp).
  auto watch = [this](int fd, bool writable) {
    if (!writable) {
      loop_->remove(fd);
      return;
    }
    if (!loop_->add_writable(fd, [this, fd] { ctl_->on_writable(fd); }))
      log::warn("control.watch_failed", {{"fd", fd}});
  };
  try {
    ctl_.emplace(path, watch);
  } catch (const std::exception& e) {
    log::error("control.setup_failed", {{"message", e.what()}});
    return false;
  }
  if (!loop_->add(ctl_->fd(), [this] {
        ctl_->on_readable([this](const std::string& cmd, const nlohmann::json& args) {
          return control(cmd, args);
        });
      })) {
    log::error("daemon.setup_failed", {{"what", "epoll_ctl control socket"}});
    return false;
  }
  return true;
}

// RFC 7767 replication relies on conntrack events for every connection (docs/design.md "Checkpointing"): warn when
// the sysctl is not 1 (0 silences committed entries, 2 depends on other listeners).
void Daemon::warn_conntrack_events() const {
  std::ifstream in("/proc/sys/net/netfilter/nf_conntrack_events");
  int value = -1;
  if (!(in >> value)) {
    log::warn("conntrack.events_unknown",
              {{"sysctl", "net.netfilter.nf_conntrack_events"}, {"hint", "is nf_conntrack loaded?"}});
    return;
  }
  if (value == 1) return;
  // Only a router pair replicating with conntrackd needs it: a warning there, a note elsewhere.
  if (!config_->ha.enabled) {
    log::info("conntrack.events_not_1",
              {{"sysctl", "net.netfilter.nf_conntrack_events"}, {"value", value},
               {"hint", "only needed on an HA pair ([ha], conntrackd): set it to 1 there"}});
    return;
  }
  log::warn("conntrack.events_not_1",
              {{"sysctl", "net.netfilter.nf_conntrack_events"},
               {"value", value},
               {"hint", "set it to 1 (/etc/sysctl.d/90-pcpd-conntrack.conf): CHECKPOINT_REQUIRED "
                        "replication by conntrackd needs events for every connection"}});
}

ctl::Stream Daemon::list_stream() {
  struct Walk {
    std::uint32_t cursor = 0;
    std::uint64_t count = 0;
  };
  auto walk = std::make_shared<Walk>();
  return ctl::Stream{[this, walk](std::string& out) {
    const core::Millis now = clock_.now();
    const bool more = server_->for_each_mapping_from(walk->cursor, kListSlots, [&](const core::Mapping& m) {
      out += ctl::mapping_to_json(m, now).dump();
      out += '\n';
      ++walk->count;
    });
    if (!more) out += nlohmann::json{{"end", true}, {"count", walk->count}}.dump() + "\n";
    return more;
  }};
}

ctl::Answer Daemon::control(const std::string& cmd, const nlohmann::json& args) {
  if (cmd == "list") return list_stream();
  if (cmd == "stats") return control_stats();
  if (cmd == "ha") return set_role(args.value("role", std::string{}));
  if (cmd == "ha-ready") {
    // keepalived's track_script (ha/pcpd-ha-check): a router that cannot prove it holds the
    // elected set must not take the VIPs back from one that serves it.
    if (!ha_) return nlohmann::json{{"ready", true}, {"reason", "no [ha] peer configured"}};
    const auto r = ha_->readiness();
    return nlohmann::json{{"ready", r.ready}, {"reason", r.reason}, {"role", to_string(role_)}};
  }
  if (cmd == "ct-touch") {
    // Queued, never run here: the walk takes ~0.2 s at 1,000,000 connections and no request may
    // wait for it. The journal says when it is done (conntrack.touched) and how many.
    conntrack_->request_touch();
    log::info("conntrack.touch_queued", {{"reason", "pcpctl"}});
    return std::string("re-announce of marked connections queued (pcpctl stats: pcpd_conntrack_touched_total)");
  }
  if (cmd == "delete") return control_delete(args);
  if (cmd == "flush") return control_flush(args);
  if (cmd == "reload") {
    // A bad file must fail the command, with its file:line, not only the journal's line.
    if (auto error = reload()) throw std::runtime_error("reload failed, the running configuration stays: " + *error);
    return "reloaded " + config_->file;
  }
  throw std::runtime_error("unknown command '" + cmd + "'");
}

void Daemon::log_nonce_conflict(const core::NonceConflict& c) {
  const char* outcome = c.outcome == core::NonceConflict::Outcome::Refused    ? "refused"
                        : c.outcome == core::NonceConflict::Outcome::Replaced ? "replaced"
                                                                              : "natpmp_taken";
  const core::Mapping& m = c.mapping;
  const std::string mapping = ctl::mapping_summary(m);
  const bool refused = c.outcome == core::NonceConflict::Outcome::Refused;
  const char* why = !refused ? "" : c.third_party || m.third_party ? " (THIRD_PARTY: never taken over)"
                                    : m.client_addr != c.client    ? " (another host's mapping)"
                                    : config_->policy.nonce_change == core::Policy::NonceChange::Refuse
                                        ? " (mappings.nonce_change = refuse; pcpctl delete releases it)"
                                        : "";
  log::limited(nonce_limiter_, refused ? log::Level::Warning : log::Level::Info, "mapping.nonce_conflict",
               {{"client", c.client}, {"mapping", mapping}, {"outcome", std::string(outcome) + why}});
}

namespace {

// "192.0.2.10:8080" or "[2001:db8::10]:8080" -> address and port.
std::pair<wire::IpAddr, std::uint16_t> parse_endpoint(const std::string& text) {
  const auto ep = wire::parse_endpoint(text);
  if (!ep) throw std::runtime_error("'" + text + "' is not ADDRESS:PORT (an IPv6 address in brackets: [2001:db8::10]:80)");
  return {ep->addr, ep->port};
}

std::uint8_t parse_protocol(const std::string& name) {
  const auto p = wire::parse_protocol(name);
  if (!p || *p == 0) throw std::runtime_error("'" + name + "' is not tcp, udp, sctp, dccp, udplite or 1-255");
  return *p;
}

}  // namespace

// `pcpctl delete`: the operator releases one mapping, e.g. for a client that lost its nonce
// and is refused (mapping.nonce_conflict) until the mapping expires.
ctl::Answer Daemon::control_delete(const nlohmann::json& args) {
  const std::uint8_t protocol = parse_protocol(args.value("protocol", std::string{}));
  const auto [addr, port] = parse_endpoint(args.value("internal", std::string{}));
  const std::string remote_text = args.value("remote", std::string{});
  const bool peer = !remote_text.empty();
  wire::IpAddr remote{};
  std::uint16_t remote_port = 0;
  if (peer) std::tie(remote, remote_port) = parse_endpoint(remote_text);
  const auto n = server_->remove_mapping(peer ? core::MappingKind::Peer : core::MappingKind::Map, addr, protocol,
                                         port, remote, remote_port);
  if (!n) throw std::runtime_error("the kernel refused the change; nothing was deleted");
  if (*n == core::Server::kStaticRefused)
    throw std::runtime_error("a static mapping: remove its [[static]] entry from " + config_->file +
                             " and reload");
  rearm_expiry();
  if (ha_) ha_->flush();  // the standby learns it now, not with the next request
  if (*n == 0) throw std::runtime_error("no such mapping");
  log::info("mapping.deleted", {{"by", "pcpctl"}, {"internal", ctl::endpoint_text(addr, port)},
                                {"protocol", ctl::protocol_name(protocol)}, {"remote", remote_text}});
  return std::string("deleted 1 mapping");
}

// `pcpctl flush --client ADDR`: every mapping of one host (its own and those made for it).
ctl::Answer Daemon::control_flush(const nlohmann::json& args) {
  const std::string text = args.value("client", std::string{});
  auto addr = wire::IpAddr::parse(text);
  if (!addr) throw std::runtime_error("'" + text + "' is not an IP address");
  const auto n = server_->remove_client(*addr);
  if (!n) throw std::runtime_error("the kernel refused the change; nothing was deleted");
  rearm_expiry();
  if (ha_) ha_->flush();
  log::info("mapping.flushed", {{"by", "pcpctl"}, {"client", *addr}, {"mappings", *n}});
  return "deleted " + std::to_string(*n) + " mapping" + (*n == 1 ? "" : "s");
}

// keepalived's notify (ha/pcpd-ha-notify) tells us the VRRP role. Primary: re-announce every
// marked connection to conntrackd (ct-touch, ha-recipe §2.4) and send unsolicited ANNOUNCE so
// clients check their mappings (RFC 6887 §14.1.3).
nlohmann::json Daemon::set_role(const std::string& role) {
  Role next;
  if (role == "primary") {
    next = Role::Primary;
  } else if (role == "backup") {
    next = Role::Backup;
  } else if (role == "fault") {
    next = Role::Fault;
  } else {
    throw std::runtime_error("role must be primary, backup or fault, not '" + role + "'");
  }
  const Role previous = role_;
  role_ = next;
  std::string text = std::string("role ") + to_string(previous) + " -> " + to_string(next);
  if (ha_) {
    // Hot standby (ha_peer.hpp): the link follows the role; a promotion takes over the table
    // received from the old primary. R-EPOCH-3: the epoch stays continuous only when that table
    // is a complete current copy (scope "all", synced); otherwise state was lost: reset.
    const auto promo = ha_->set_role(link_role(next));
    if (next == Role::Primary && previous != Role::Primary) {
      if (promo.synced && promo.peer_epoch_origin) {
        server_->set_epoch_origin(*promo.peer_epoch_origin);
        log::info("epoch.continued", {{"reason", "ha_promotion_synced"}, {"epoch", server_->epoch()}});
        // The adopted origin is this router's now: a later restart must continue it, not the
        // origin this router had before it was promoted.
        save_epoch();
      } else {
        reset_epoch("ha_promotion_state_incomplete");
      }
      ha_->set_epoch_origin(server_->epoch_origin());
      text += ", took over " + std::to_string(server_->mapping_count()) + " mappings, epoch " +
              std::to_string(server_->epoch());
    }
  }
  if (next == Role::Primary) {
    // Off the request path: clients re-creating their mappings right after a failover are
    // answered while the walk runs (conntrack.touched in the journal when done).
    conntrack_->request_touch();
    text += ", re-announce of marked connections queued";
    start_announce();
  }
  log::info("ha.role", {{"from", to_string(previous)}, {"to", to_string(next)}, {"result", text}});
  return text;
}

nlohmann::json Daemon::control_stats() {
  ctl::Metrics m;
  const core::Stats& s = server_->stats();
  ctl::add_core_metrics(m, s);
  const auto counts = server_->mapping_counts();
  m.family("pcpd_mappings", "gauge", "mappings in the table, by kind and address family")
      .sample(static_cast<double>(counts.map4), {{"kind", "map"}, {"family", "ipv4"}})
      .sample(static_cast<double>(counts.map6), {{"kind", "map"}, {"family", "ipv6"}})
      .sample(static_cast<double>(counts.peer4), {{"kind", "peer"}, {"family", "ipv4"}})
      .sample(static_cast<double>(counts.peer6), {{"kind", "peer"}, {"family", "ipv6"}});
  ctl::add_histogram(m, "pcpd_request_duration_seconds",
                     "time from a request taken off the socket to its response sent", latency_);
  m.family("pcpd_build_info", "gauge", "always 1; the label says which pcpd runs")
      .sample(1, {{"version", PCPD_VERSION}});
  m.family("pcpd_epoch_seconds", "gauge", "current PCP epoch (RFC 6887 section 8.5)").sample(server_->epoch());
  m.family("pcpd_ingress_dropped_total", "counter", "datagrams dropped before decoding (RFC 6887 section 8.2)")
      .sample(static_cast<double>(drops_.wrong_interface), {{"reason", "wrong_interface"}})
      .sample(static_cast<double>(drops_.wrong_source), {{"reason", "wrong_source"}})
      .sample(static_cast<double>(drops_.not_unicast), {{"reason", "not_unicast"}})
      .sample(static_cast<double>(drops_.empty), {{"reason", "empty"}})
      .sample(static_cast<double>(drops_.natpmp_v6), {{"reason", "natpmp_ipv6"}});
  m.family("pcpd_checkpoint_elected", "gauge", "mappings elected by CHECKPOINT_REQUIRED (RFC 7767)")
      .sample(static_cast<double>(s.elected));
  m.family("pcpd_checkpoint_requests_total", "counter", "requests carrying CHECKPOINT_REQUIRED, by outcome")
      .sample(static_cast<double>(s.checkpoint_requested), {{"outcome", "requested"}})
      .sample(static_cast<double>(s.checkpoint_honoured), {{"outcome", "honoured"}});
  m.family("pcpd_checkpoint_refused_total", "counter",
           "CHECKPOINT_REQUIRED not honoured (mapping served without the option), by reason")
      .sample(static_cast<double>(s.checkpoint_refused_disabled), {{"reason", "disabled"}})
      .sample(static_cast<double>(s.checkpoint_refused_total_cap), {{"reason", "total_cap"}})
      .sample(static_cast<double>(s.checkpoint_refused_client_cap), {{"reason", "client_cap"}})
      .sample(static_cast<double>(s.checkpoint_refused_rate), {{"reason", "rate_limit"}})
      .sample(static_cast<double>(s.checkpoint_refused_peer), {{"reason", "peer_unavailable"}})
      .sample(static_cast<double>(s.checkpoint_withdrawn), {{"reason", "peer_no_ack"}});
  m.family("pcpd_checkpoint_deferred", "gauge",
           "mappings whose client asked for CHECKPOINT_REQUIRED while no peer could hold them; "
           "elected when the peer is back")
      .sample(static_cast<double>(counts.deferred));
  m.family("pcpd_checkpoint_reelected_total", "counter",
           "deferred elections made when the standby peer came back (RFC 7767 section 3.2)")
      .sample(static_cast<double>(s.checkpoint_reelected));
  m.family("pcpd_nonce_conflicts_total", "counter",
           "requests naming an existing mapping with another nonce (RFC 6887 section 11.3), by outcome")
      .sample(static_cast<double>(s.nonce_refused), {{"outcome", "refused"}})
      .sample(static_cast<double>(s.nonce_replaced), {{"outcome", "taken_over"}});
  m.family("pcpd_mappings_readdressed_total", "counter",
           "mappings moved to a new external address when the WAN address changed (RFC 6887 section 14.2)")
      .sample(static_cast<double>(s.readdressed));
  if (ha_) ha_->add_metrics(m);
  add_conntrack_metrics(m);
  const auto nc = datapath_->counters();
  m.family("pcpd_netlink_batches_total", "counter", "nftables batches sent").sample(static_cast<double>(nc.batches));
  m.family("pcpd_netlink_errors_total", "counter", "nftables batches the kernel refused")
      .sample(static_cast<double>(nc.batch_failures));
  m.family("pcpd_netlink_grouped_refused_total", "counter",
           "batches of several changes sent one message per set, refused, and resent one message per element")
      .sample(static_cast<double>(nc.grouped_refused));
  m.family("pcpd_netlink_elements_total", "counter", "nftables set elements written, by operation")
      .sample(static_cast<double>(nc.elements_added), {{"op", "add"}})
      .sample(static_cast<double>(nc.elements_deleted), {{"op", "delete"}})
      .sample(static_cast<double>(nc.elements_updated), {{"op", "update"}});
  m.family("pcpd_netlink_refresh_in_place", "gauge",
           "1 when a refresh restarts the timers of unchanged elements in place (kernel 6.10+)")
      .sample(datapath_->refresh_in_place() ? 1 : 0);
  const auto& jc = journal_->counters();
  m.family("pcpd_journal_bytes", "gauge", "size of state_dir/mappings.journal (0: no journal being written)")
      .sample(static_cast<double>(journal_->bytes()));
  m.family("pcpd_journal_records_total", "counter", "records appended to the mapping journal")
      .sample(static_cast<double>(jc.records));
  m.family("pcpd_journal_started_total", "counter",
           "journals started after a new snapshot (start, compaction, re-install, after an end)")
      .sample(static_cast<double>(jc.started));
  m.family("pcpd_journal_ended_total", "counter",
           "journals ended by a batch of unknown outcome or a write error (the next start dumps the sets)")
      .sample(static_cast<double>(jc.ended));
  m.family("pcpd_datapath_resyncs_total", "counter",
           "re-installs of every mapping after table inet pcpd was deleted or re-created")
      .sample(static_cast<double>(nc.resyncs));
  m.family("pcpd_datapath_table_lost_total", "counter", "checks that found table inet pcpd gone or not matching")
      .sample(static_cast<double>(nc.table_lost));
  m.family("pcpd_ha_role", "gauge", "VRRP role reported by keepalived (1 for the current one)")
      .sample(role_ == Role::Standalone ? 1 : 0, {{"role", "standalone"}})
      .sample(role_ == Role::Primary ? 1 : 0, {{"role", "primary"}})
      .sample(role_ == Role::Backup ? 1 : 0, {{"role", "backup"}})
      .sample(role_ == Role::Fault ? 1 : 0, {{"role", "fault"}});
  return m.json();
}

// The conntrack worker's state (ct::ConntrackSync). The count of elected entries comes from its
// last walk: a scrape asks for a fresh one when it is older than kMarkedMaxAgeMs, and never
// waits for it (a walk of a busy router's table takes ~0.2 s).
void Daemon::add_conntrack_metrics(ctl::Metrics& m) {
  constexpr std::int64_t kMarkedMaxAgeMs = 10'000;
  const ct::SyncCounters c = conntrack_->counters();
  if (c.marked < 0 || c.marked_age_ms > kMarkedMaxAgeMs) conntrack_->request_count();
  if (c.marked >= 0) {
    m.family("pcpd_conntrack_marked", "gauge", "conntrack entries with the elected mark bit, at the last walk")
        .sample(static_cast<double>(c.marked));
    m.family("pcpd_conntrack_marked_age_seconds", "gauge", "age of pcpd_conntrack_marked")
        .sample(static_cast<double>(c.marked_age_ms) / 1000.0);
  }
  m.family("pcpd_conntrack_pending", "gauge", "mappings and requests waiting for the conntrack worker")
      .sample(static_cast<double>(c.pending));
  m.family("pcpd_conntrack_oldest_pending_seconds", "gauge", "how long the oldest of them has waited")
      .sample(static_cast<double>(c.oldest_pending_ms) / 1000.0);
  m.family("pcpd_conntrack_queued_total", "counter", "mappings queued for conntrack work (elect, un-elect, forget)")
      .sample(static_cast<double>(c.submitted));
  m.family("pcpd_conntrack_rounds_total", "counter", "rounds of the conntrack worker")
      .sample(static_cast<double>(c.rounds));
  m.family("pcpd_conntrack_walks_total", "counter", "walks of the conntrack table for connections with the mapped bit")
      .sample(static_cast<double>(c.walks));
  m.family("pcpd_conntrack_last_walk_seconds", "gauge", "duration of the last walk")
      .sample(c.last_walk_ms / 1000.0);
  m.family("pcpd_conntrack_lookups_total", "counter", "exact conntrack lookups (PEER, and announced MAP connections)")
      .sample(static_cast<double>(c.lookups));
  m.family("pcpd_conntrack_learned_total", "counter", "new connections of mappings announced by pcpd.nft (NFLOG)")
      .sample(static_cast<double>(c.learned));
  m.family("pcpd_conntrack_learn_lost_total", "counter", "times announcements were lost (the next MAP round walks)")
      .sample(static_cast<double>(c.learn_lost));
  m.family("pcpd_conntrack_known", "gauge", "connections of mappings pcpd knows of (announced or walked)")
      .sample(static_cast<double>(c.known));
  m.family("pcpd_conntrack_index_complete", "gauge", "1 when a MAP's connections are exact lookups, 0 when they need a walk")
      .sample(c.index_complete ? 1 : 0);
  m.family("pcpd_conntrack_swept_total", "counter", "known connections dropped after they ended")
      .sample(static_cast<double>(c.swept));
  m.family("pcpd_conntrack_visited_total", "counter", "conntrack entries the kernel handed to pcpd")
      .sample(static_cast<double>(c.visited));
  m.family("pcpd_conntrack_connections_total", "counter", "connections written, by operation")
      .sample(static_cast<double>(c.elected), {{"op", "elect"}})
      .sample(static_cast<double>(c.unelected), {{"op", "unelect"}})
      .sample(static_cast<double>(c.deleted), {{"op", "delete"}})
      .sample(static_cast<double>(c.touched), {{"op", "touch"}});
  m.family("pcpd_conntrack_touched_total", "counter", "ct-touch requests completed")
      .sample(static_cast<double>(c.touches));
  m.family("pcpd_conntrack_errors_total", "counter", "failed conntrack walks, lookups and writes")
      .sample(static_cast<double>(c.errors));
}

}  // namespace pcpd::daemon
