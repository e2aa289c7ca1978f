// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/ha_peer.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <variant>

#include "wire/codec.hpp"
#include "wire/sockaddr.hpp"

namespace pcpd::daemon {

namespace {

constexpr std::size_t kMaxKeyBytes = 4096;
constexpr int kMaxDatagramsPerWakeup = 64;
constexpr int kMaxPumpRounds = 16;

std::string errno_text(int e) { return std::strerror(e); }

// RFC 7767 §3: a response that confirms an election (the option is echoed).
std::vector<core::Mapping> elections(const core::ChangeSet& cs) {
  std::vector<core::Mapping> out;
  for (const core::Change& c : cs.changes)
    if (c.op != core::Change::Op::Remove && c.mapping.checkpoint) out.push_back(c.mapping);
  return out;
}

const char* role_name(ha::Role r) { return std::string_view(ha::to_string(r)).data(); }

// The link's UDP socket, bound on the sync network, sending to the peer's address and port.
class UdpLinkSocket final : public LinkSocket {
 public:
  UdpLinkSocket(UniqueFd fd, const wire::IpAddr& peer, std::uint16_t peer_port) : fd_(std::move(fd)) {
    to_len_ = wire::to_sockaddr(peer, peer_port, 0, to_);
  }
  [[nodiscard]] int fd() const override { return fd_.get(); }
  bool send(std::span<const std::uint8_t> d) override {
    return ::sendto(fd_.get(), d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to_), to_len_) >= 0;
  }
  std::optional<Received> receive(std::span<std::uint8_t> buf) override {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return std::nullopt;
    Received r;
    r.size = static_cast<std::size_t>(n);
    r.source = wire::from_sockaddr(from, &r.port);
    return r;
  }

 private:
  UniqueFd fd_;
  sockaddr_storage to_{};
  socklen_t to_len_ = 0;
};

}  // namespace

// ---- ChangeTap ---------------------------------------------------------------------------------

Result<void> ChangeTap::apply(const core::ChangeSet& changes) {
  auto r = inner_.apply(changes);
  if (r && recording_)
    taken_.changes.insert(taken_.changes.end(), changes.changes.begin(), changes.changes.end());
  return r;
}

core::ChangeSet ChangeTap::take() { return std::exchange(taken_, core::ChangeSet{}); }

// ---- HaPeer ------------------------------------------------------------------------------------

std::unique_ptr<HaPeer> HaPeer::open(const config::Config::Ha& cfg, core::Server& server,
                                     core::Datapath& kernel, ChangeTap& tap,
                                     const core::Clock& clock, std::function<void()> on_table,
                                     std::string& error) {
  // The pre-shared key: a regular file only root (or pcpd) can read, of a sane size.
  struct stat st{};
  if (::stat(cfg.key_file.c_str(), &st) != 0) {
    error = "ha.key_file " + cfg.key_file + ": " + errno_text(errno);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    error = "ha.key_file " + cfg.key_file + ": not a regular file";
    return nullptr;
  }
  // systemd's LoadCredential= puts the key in $CREDENTIALS_DIRECTORY, which only this service
  // can enter (docs/interfaces.md "[ha]").
  const char* creds = std::getenv("CREDENTIALS_DIRECTORY");
  const bool in_creds = creds != nullptr && *creds != '\0' &&
                        cfg.key_file.rfind(std::string(creds) + "/", 0) == 0;
  if (auto problem = ha::key_file_problem(st.st_mode, st.st_gid, ::getegid(), in_creds)) {
    error = "ha.key_file " + cfg.key_file + ": " + *problem;
    return nullptr;
  }
  if (st.st_size < static_cast<off_t>(ha::kMinKeyBytes) || st.st_size > static_cast<off_t>(kMaxKeyBytes)) {
    error = "ha.key_file " + cfg.key_file + ": " + std::to_string(st.st_size) + " bytes, expected " +
            std::to_string(ha::kMinKeyBytes) + ".." + std::to_string(kMaxKeyBytes) +
            " (e.g. head -c 32 /dev/urandom | base64 > FILE)";
    return nullptr;
  }
  auto key = ha::load_link_key(cfg.key_file);
  if (!key) {
    error = "ha.key_file " + cfg.key_file + ": " + errno_text(key.error().code);
    return nullptr;
  }

  const int family = cfg.peer.is_v4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = "ha socket: " + errno_text(errno);
    return nullptr;
  }
  sockaddr_storage local{};
  const wire::IpAddr any = family == AF_INET ? wire::IpAddr::v4_any() : wire::IpAddr{};
  const wire::IpAddr bind_addr = cfg.listen.value_or(any);
  const socklen_t len = wire::to_sockaddr(bind_addr, cfg.port, 0, local);
  if (family == AF_INET6) {
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), len) != 0) {
    error = "ha: cannot bind " + bind_addr.to_string() + " port " + std::to_string(cfg.port) + ": " +
            errno_text(errno);
    return nullptr;
  }
  return with_socket(cfg, std::move(*key), std::make_unique<UdpLinkSocket>(std::move(fd), cfg.peer, cfg.peer_port),
                     server, kernel, tap, clock, std::move(on_table), error);
}

std::unique_ptr<HaPeer> HaPeer::with_socket(const config::Config::Ha& cfg, ha::LinkKey key,
                                            std::unique_ptr<LinkSocket> socket, core::Server& server,
                                            core::Datapath& kernel, ChangeTap& tap, const core::Clock& clock,
                                            std::function<void()> on_table, std::string& error) {
  auto timer = BootTimer::create();
  if (!timer) {
    error = "ha timerfd: " + errno_text(timer.error().code);
    return nullptr;
  }
  const std::uint32_t id = ha::random_sender_id();
  if (id == 0) {
    error = "ha: libsodium did not start";
    return nullptr;
  }
  return std::unique_ptr<HaPeer>(new HaPeer(cfg, std::move(key), id, std::move(socket), std::move(*timer),
                                            server, kernel, tap, clock, std::move(on_table)));
}

HaPeer::HaPeer(const config::Config::Ha& cfg, ha::LinkKey key, std::uint32_t sender_id,
               std::unique_ptr<LinkSocket> socket, BootTimer timer,
               core::Server& server, core::Datapath& kernel, ChangeTap& tap,
               const core::Clock& clock, std::function<void()> on_table)
    : cfg_(cfg),
      socket_(std::move(socket)),
      timer_(std::move(timer)),
      server_(server),
      kernel_(kernel),
      tap_(tap),
      clock_(clock),
      on_table_(std::move(on_table)),
      link_(std::move(key), sender_id,
            ha::LinkSettings{.scope = cfg.scope_all ? ha::ReplicationScope::All
                                                    : ha::ReplicationScope::Elected}) {
  // Whatever the kernel holds now (recovered at start) is what a first snapshot replaces.
  link_.assume_installed(server_.mappings());
  link_.set_epoch_origin(server_.epoch_origin());
  log::info("ha.start", {{"peer", cfg_.peer}, {"peer_port", cfg_.peer_port}, {"port", cfg_.port},
                         {"scope", cfg_.scope_all ? "all" : "elected"},
                         {"ack_timeout_ms", cfg_.ack_timeout_ms}, {"sender_id", link_.sender_id()}});
  pump();
}

HaPeer::~HaPeer() = default;

bool HaPeer::serving() const {
  return link_.role() != ha::Role::Backup && link_.role() != ha::Role::Fault;
}

HaPeer::Promotion HaPeer::set_role(ha::Role role) {
  Promotion p;
  const ha::Role previous = link_.role();
  if (role == ha::Role::Primary && previous != ha::Role::Primary) {
    // Read before set_role(): promotion clears it (peer_link.hpp).
    p.synced = link_.synced() && cfg_.scope_all;
    p.peer_epoch_origin = link_.peer_epoch_origin();
  }
  // Leaving Primary abandons held responses: they go out now, without the option.
  if (previous == ha::Role::Primary && role != ha::Role::Primary) release_all("role_change");
  link_.set_role(role, clock_.now());
  if (previous == ha::Role::Primary && role != ha::Role::Primary) {
    // Our own table is what is installed: the new primary's snapshot is diffed against it.
    link_.assume_installed(server_.mappings());
  }
  tap_.record(role == ha::Role::Primary);
  (void)tap_.take();
  update_availability();
  log::info("ha.link_role", {{"from", role_name(previous)}, {"to", role_name(role)},
                             {"peer_up", link_.peer_up()}, {"synced", p.synced}});
  pump();
  return p;
}

void HaPeer::set_epoch_origin(core::Millis origin) { link_.set_epoch_origin(origin); }

void HaPeer::update_availability() {
  // RFC 7767 §3.2: honour only what a standby can hold before we answer.
  const bool available = link_.role() == ha::Role::Primary && link_.peer_up() &&
                         link_.peer_role() != ha::Role::Primary;
  // The peer is back: what clients asked for while it was away is elected now (reelect()).
  if (available && !checkpoint_available_) reelect_due_ = true;
  if (!available) reelect_due_ = false;  // elected with nobody to hold them: wait for the next time
  checkpoint_available_ = available;
}

void HaPeer::reelect() {
  reelect_due_ = false;
  const core::Server::Reelection r = server_.reelect_deferred();
  if (r.elected == 0 && r.over_cap == 0 && !r.failed) return;
  // Replicated like a request's change: the peer installs them, the conntrack worker marks
  // their connections (so conntrackd carries them to the peer before any failback).
  const core::ChangeSet cs = tap_.take();
  (void)replicate(cs, next_token_++);
  log::info("checkpoint.reelected", {{"mappings", r.elected}, {"still_deferred", r.over_cap},
                                     {"failed", r.failed}, {"reason", "peer_available"}});
  if (on_table_) on_table_();
}

ha::PeerLink::ReplicateResult HaPeer::replicate(const core::ChangeSet& changes, ha::Token token) {
  if (changes.empty()) return ha::PeerLink::ReplicateResult::NothingToSend;
  return link_.replicate(changes, token, clock_.now());
}

bool HaPeer::after_request(const core::BurstItem& request, Responder send) {
  const core::ChangeSet cs = tap_.take();
  const ha::Token token = next_token_++;
  const auto result = replicate(cs, token);
  bool hold = false;
  // Core says whether the reply confirms an election (BurstItem::hold); the link whether the
  // peer will acknowledge it.
  if (request.hold && result == ha::PeerLink::ReplicateResult::WaitForAck) {
    auto elected = elections(cs);
    if (!elected.empty()) {
      // RFC 7767 §3: respond once the standby holds the elected mapping, at most ack_timeout.
      ++counters_.waits;
      Held h{token, request.decision.response, {}, std::move(send),
             clock_.now() + core::Millis(cfg_.ack_timeout_ms), std::move(elected)};
      if (const auto& d = h.response.options.description) h.description.assign(*d);
      held_.push_back(std::move(h));
      hold = true;
    }
  }
  pump();
  return hold;
}

void HaPeer::send_held(const Held& h) {
  wire::Response r = h.response;
  // Its view of the request's bytes is stale by now (has_value() is all that is left of it).
  if (r.options.description) r.options.description = std::string_view(h.description);
  std::array<std::uint8_t, wire::kMaxMessageSize> out{};
  const std::size_t n = wire::encode_response(r, out, server_.policy().option_codes);
  if (n > 0) h.send(std::span<const std::uint8_t>(out.data(), n));
}

void HaPeer::flush() {
  const core::ChangeSet cs = tap_.take();
  (void)replicate(cs, next_token_++);
  pump();
}

void HaPeer::on_readable() {
  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    errno = 0;
    const auto got = socket_->receive(rx_);
    if (!got) {
      if (errno != 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log::limited(reject_limiter_, log::Level::Warning, "ha.receive_failed", {{"error", errno_text(errno)}});
      break;
    }
    if (got->source != cfg_.peer) {
      ++counters_.wrong_source;
      log::limited(reject_limiter_, log::Level::Warning, "ha.rejected",
                   {{"reason", "wrong_source"}, {"from", got->source}, {"port", got->port}});
      continue;
    }
    link_.on_datagram(std::span<const std::uint8_t>(rx_.data(), got->size), clock_.now());
    note_rejects();
  }
  pump();
}

void HaPeer::on_timer() {
  timer_.drain();
  const core::Millis now = clock_.now();
  link_.on_timer(now);
  // Held responses past their bound: the peer is slow, serve without the option.
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    Held h = std::move(*it);
    it = held_.erase(it);
    ++counters_.timeouts;
    release(h, "ack_timeout");
  }
  pump();
}

void HaPeer::note_rejects() {
  const auto& r = link_.stats().rejected;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] == rejects_seen_[i]) continue;
    rejects_seen_[i] = r[i];
    // Wrong key, replay, malformed, version mismatch: dropped by the link, the table untouched.
    log::limited(reject_limiter_, log::Level::Warning, "ha.rejected",
                 {{"reason", ha::to_string(static_cast<ha::Reject>(i))}, {"total", r[i]}});
  }
}

void HaPeer::release(Held& h, const char* outcome) {
  // RFC 7767 §3.2: not honoured after all: un-elect in core and kernel, answer without it.
  for (const core::Mapping& m : h.elected) (void)server_.withdraw_checkpoint(m);
  const core::ChangeSet cs = tap_.take();
  (void)replicate(cs, next_token_++);
  h.response.options.checkpoint_required = false;
  log::limited(wait_limiter_, log::Level::Warning, "ha.checkpoint_not_honoured",
               {{"outcome", outcome}, {"peer_up", link_.peer_up()}, {"mappings", h.elected.size()},
                {"ack_timeout_ms", cfg_.ack_timeout_ms}});
  send_held(h);
}

void HaPeer::pump() {
  for (int round = 0; round < kMaxPumpRounds; ++round) {
    ha::LinkOutput out = link_.take();
    if (out.datagrams.empty() && out.events.empty()) {
      update_availability();
      if (!reelect_due_ || !checkpoint_available_) break;
      reelect();  // its changes go out in the next round
      continue;
    }
    // Events first: a standby installs what it received before its ack leaves, so an ack
    // means "in the kernel" (RFC 7767 §3).
    for (const auto& e : out.events) on_event(e);
    for (const auto& d : out.datagrams) {
      if (!socket_->send(d) && errno != EAGAIN)
        log::limited(reject_limiter_, log::Level::Warning, "ha.send_failed",
                     {{"to", cfg_.peer}, {"error", errno_text(errno)}});
    }
  }
  update_availability();
  rearm();
}

void HaPeer::on_event(const ha::LinkEvent& event) {
  using namespace ha::link_event;
  if (const auto* up = std::get_if<PeerUp>(&event)) {
    log::info("ha.peer_up", {{"peer_id", up->peer_id}, {"peer_role", role_name(up->role)},
                             {"restarted", up->restarted}});
  } else if (const auto* down = std::get_if<PeerDown>(&event)) {
    log::warn("ha.peer_down", {{"peer_id", down->peer_id}, {"held_responses", held_.size()}});
    release_all("peer_down");  // every pending token is abandoned
  } else if (std::holds_alternative<SnapshotWanted>(event)) {
    const bool sent = link_.send_snapshot(server_.mappings(), clock_.now());
    log::info("ha.snapshot_sent", {{"sent", sent}, {"mappings", server_.mapping_count()}});
  } else if (const auto* acked = std::get_if<Acked>(&event)) {
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->token != acked->token) continue;
      ++counters_.acked;
      send_held(*it);
      held_.erase(it);
      break;
    }
  } else if (const auto* snap = std::get_if<SnapshotReady>(&event)) {
    install(snap->changes, "snapshot");
    log::info("ha.snapshot_installed", {{"mappings", snap->mappings.size()},
                                        {"changes", snap->changes.changes.size()}});
  } else {
    install(ha::datapath_changes(event), "change");
  }
}

void HaPeer::release_all(const char* outcome) {
  while (!held_.empty()) {
    Held h = std::move(held_.front());
    held_.pop_front();
    ++counters_.peer_lost;
    release(h, outcome);
  }
}

void HaPeer::install(const core::ChangeSet& given, const char* what) {
  if (given.empty()) return;
  if (link_.role() == ha::Role::Primary) return;  // never: the link sends to non-primaries only
  // A change naming one of this router's static mappings (the peer's configuration differs, or
  // its mapping became static here first) would overwrite or delete it: the configuration wins.
  core::ChangeSet changes;
  for (const core::Change& c : given.changes) {
    const core::Mapping& m = c.mapping;
    const auto cur = server_.find(m.kind, m.internal_addr, m.protocol, m.internal_port, m.remote_addr, m.remote_port);
    if (cur && cur->is_static()) {
      ++counters_.install_errors;
      continue;
    }
    changes.changes.push_back(c);
  }
  if (changes.empty()) return;
  // The kernel first, then core's table (as core does for its own changes). All or nothing per
  // batch; when the batch is refused, change by change so one bad element costs only itself.
  core::ChangeSet applied;
  if (kernel_.apply(changes)) {
    applied = changes;
  } else {
    for (const core::Change& c : changes.changes) {
      core::ChangeSet one;
      one.changes.push_back(c);
      if (kernel_.apply(one)) {
        applied.changes.push_back(c);
      } else {
        ++counters_.install_errors;
      }
    }
    log::limited(wait_limiter_, log::Level::Warning, "ha.install_failed",
                 {{"what", what}, {"refused", changes.changes.size() - applied.changes.size()}});
  }
  (void)server_.mirror(applied);
  if (on_table_) on_table_();
}

void HaPeer::rearm() {
  core::Millis next = link_.next_timer();
  for (const Held& h : held_) next = std::min(next, h.deadline);
  const std::int64_t when = next == core::Millis::max() ? std::numeric_limits<std::int64_t>::max() : next.count();
  if (when == timer_.armed_at()) return;
  if (auto r = timer_.arm_at(when); !r) log::error("timer.arm_failed", {{"what", "ha"}, {"error", errno_text(r.error().code)}});
}

HaPeer::Readiness HaPeer::readiness() const {
  if (link_.role() == ha::Role::Primary) return {true, "primary"};
  if (!link_.peer_up()) return {false, "peer link down: no copy of the primary's mappings"};
  if (link_.peer_role() != ha::Role::Primary)
    return {false, std::string("peer is ") + role_name(link_.peer_role()) + ", not primary: nothing to copy yet"};
  if (!link_.synced()) return {false, "waiting for the primary's snapshot"};
  return {true, "holds the primary's " + std::to_string(link_.replicated().size()) + " replicated mappings"};
}

void HaPeer::add_metrics(ctl::Metrics& m) const {
  const ha::LinkStats& s = link_.stats();
  m.family("pcpd_ha_peer_up", "gauge", "the standby peer link is up (1) or down (0)")
      .sample(link_.peer_up() ? 1 : 0);
  m.family("pcpd_ha_ready", "gauge",
           "this router may take the VIPs: primary, or holds the primary's current mappings (pcpctl ha ready)")
      .sample(readiness().ready ? 1 : 0);
  m.family("pcpd_ha_replicated_mappings", "gauge", "mappings held for the peer (standby side)")
      .sample(static_cast<double>(link_.replicated().size()));
  m.family("pcpd_ha_requests_dropped_total", "counter", "PCP/NAT-PMP requests not answered while backup")
      .sample(static_cast<double>(counters_.requests_dropped));
  m.family("pcpd_ha_checkpoint_waits_total", "counter",
           "responses held for the peer's ack (RFC 7767 section 3), by outcome")
      .sample(static_cast<double>(counters_.waits), {{"outcome", "held"}})
      .sample(static_cast<double>(counters_.acked), {{"outcome", "acked"}})
      .sample(static_cast<double>(counters_.timeouts), {{"outcome", "timeout"}})
      .sample(static_cast<double>(counters_.peer_lost), {{"outcome", "peer_down"}});
  auto& rej = m.family("pcpd_ha_rejected_total", "counter", "peer-link datagrams refused, by reason");
  for (std::size_t i = 0; i < ha::kRejectReasons; ++i)
    rej.sample(static_cast<double>(s.rejected[i]), {{"reason", std::string(ha::to_string(static_cast<ha::Reject>(i)))}});
  rej.sample(static_cast<double>(counters_.wrong_source), {{"reason", "wrong_source"}});
  m.family("pcpd_ha_link_total", "counter", "peer-link activity")
      .sample(static_cast<double>(s.datagrams_sent), {{"what", "datagrams_sent"}})
      .sample(static_cast<double>(s.datagrams_accepted), {{"what", "datagrams_accepted"}})
      .sample(static_cast<double>(s.retransmissions), {{"what", "retransmissions"}})
      .sample(static_cast<double>(s.changes_sent), {{"what", "changes_sent"}})
      .sample(static_cast<double>(s.changes_received), {{"what", "changes_received"}})
      .sample(static_cast<double>(s.snapshots_sent), {{"what", "snapshots_sent"}})
      .sample(static_cast<double>(s.snapshots_received), {{"what", "snapshots_received"}})
      .sample(static_cast<double>(s.peer_downs), {{"what", "peer_downs"}})
      .sample(static_cast<double>(s.stream_resets), {{"what", "stream_resets"}})
      .sample(static_cast<double>(counters_.install_errors), {{"what", "install_errors"}});
}

}  // namespace pcpd::daemon
