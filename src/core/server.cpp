// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Server: general request processing (RFC 6887 §8.2), epoch, expiry, restore and the
// PCP datagram entry point. Opcode handlers: map_handler.cpp, peer_handler.cpp; NAT-PMP:
// natpmp_handler.cpp.
#include "core/server.hpp"

#include <algorithm>
#include <random>
#include <unordered_map>

#include "core/server_impl.hpp"
#include "wire/codec.hpp"

namespace pcpd::core {

using wire::ResultCode;

Server::Impl::Impl(Policy p, Datapath& d, const Clock& c)
    : policy(std::move(p)),
      datapath(d),
      clock(c),
      rng(std::random_device{}()),
      rate_limiter(RateLimiter::kDefaultSets,
                   (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}()),
      prefer_failure_limiter(RateLimiter::kDefaultSets / 8,
                             (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}()) {
  epoch.reset(clock.now());
}

bool Server::Impl::rate_limited(const Context& ctx) {
  // RFC 6887 §18.1 ("the PCP server SHOULD rate-limit"), R-QUOTA-5, R-SEC-3: before decoding, so
  // a flood costs neither decoding nor kernel work. Dropped silently, never answered: a reply
  // would make pcpd an amplifier for spoofed sources, and a client retries anyway (§8.1.1).
  switch (rate_limiter.admit(policy.rate_limit, ctx.source, clock.now())) {
    case RateLimiter::Verdict::Allow: return false;
    case RateLimiter::Verdict::ClientLimited: ++stats.rate_limited_client; return true;
    case RateLimiter::Verdict::GlobalLimited: ++stats.rate_limited_global; return true;
  }
  return false;
}

Policy::RateLimit Server::Impl::prefer_failure_bucket() const {
  Policy::RateLimit bucket;
  bucket.client_rate = policy.rate_limit.prefer_failure_rate;
  bucket.client_burst = policy.rate_limit.prefer_failure_burst;
  bucket.global_rate = 0;  // per client only: one prober must not lock the others out
  return bucket;
}

bool Server::Impl::prefer_failure_limited(const IpAddr& client) {
  // Charged once per datagram, like the request rate limits: one decided again after a refused
  // transaction took its token the first time.
  if (request != nullptr && request->pf_charged) return false;
  if (prefer_failure_limiter.admit(prefer_failure_bucket(), client, clock.now()) == RateLimiter::Verdict::Allow) {
    if (request != nullptr) request->pf_charged = true;
    return false;
  }
  ++tally().prefer_failure_limited;
  return true;
}

void Server::Impl::echo_options(Reply& r, const wire::Options& o, bool map,
                                std::optional<std::string_view> description, bool elected) {
  wire::Options& out = r.response.options;
  out.third_party = o.third_party;
  if (map) {
    out.prefer_failure = o.prefer_failure;
    out.filters = o.filters;
    out.filter_count = o.filter_count;
  }
  out.description = description;
  out.checkpoint_required = elected;  // asked and honoured; otherwise left out
}

std::uint32_t Server::Impl::clamp_lifetime(std::uint32_t requested) const {
  // R-LIFE-2 (local decision): non-zero requests are clamped into [min, max].
  const std::uint32_t hi = policy.max_lifetime;
  const std::uint32_t lo = std::min(policy.min_lifetime, hi);
  return std::clamp(requested, lo, hi);
}

std::uint32_t Server::Impl::error_lifetime(ResultCode code) const {
  // RFC 6887 §7.4 / R-RC-2: short-lifetime errors 30 s, long-lifetime errors 30 min.
  return wire::is_short_lifetime_error(code) ? policy.short_error_lifetime
                                             : policy.long_error_lifetime;
}

Reply Server::Impl::error(const wire::Request& req, ResultCode code,
                          std::optional<std::uint32_t> lifetime) const {
  Reply r;
  r.kind = Reply::Kind::Error;
  r.parsed = true;
  r.response.opcode = req.opcode;
  r.response.result = code;
  r.response.lifetime = lifetime ? *lifetime : error_lifetime(code);
  r.response.epoch = epoch.at(clock.now());  // R-EPOCH-1
  r.response.body = req.body;                // R-RC-4: opcode fields copied from the request
  return r;
}

Reply Server::Impl::success(const wire::Request& req, wire::Body body,
                            std::uint32_t lifetime) const {
  Reply r;
  r.kind = Reply::Kind::Success;
  r.response.opcode = req.opcode;
  r.response.result = ResultCode::Success;
  r.response.lifetime = lifetime;
  r.response.epoch = epoch.at(clock.now());  // R-EPOCH-1
  r.response.body = std::move(body);
  return r;
}

bool Server::Impl::apply(const ChangeSet& changes) {
  if (changes.empty()) return true;
  if (!datapath.apply(changes)) {
    // RFC 6887 §7.3 / R-HDR-10 (STYLE.md "Apply"): all or nothing; the table follows the kernel.
    ++stats.datapath_errors;
    return false;
  }
  table.commit(changes);
  stats.elected = table.elected_count();  // RFC 7767 gauge follows the table
  return true;
}

bool Server::Impl::apply(Change change) {
  single.changes.clear();
  single.changes.push_back(std::move(change));
  return apply(single);
}

std::optional<ResultCode> Server::Impl::check_endpoint(const Target& t, std::uint8_t protocol,
                                                       std::uint16_t internal_port) const {
  // hops-00 R-CAP-8: a transport protocol the configured capability set leaves out.
  if (protocol_outside_capabilities(protocol)) return ResultCode::UnsuppProtocol;
  // RFC 6887 §11.3 / R-MAP-3: protocols we do not map.
  if (std::find(policy.protocols.begin(), policy.protocols.end(), protocol) ==
      policy.protocols.end())
    return ResultCode::UnsuppProtocol;
  // RFC 6887 §11.3 / R-MAP-15: never the PCP ports; policy-denied ports.
  if (internal_port == wire::kClientPort || internal_port == wire::kServerPort ||
      std::find(policy.denied_internal_ports.begin(), policy.denied_internal_ports.end(),
                internal_port) != policy.denied_internal_ports.end())
    return ResultCode::NotAuthorized;
  if (t.internal.is_v4()) {
    // A family this server does not serve: "operation disabled for this client" (§7.4).
    if (!policy.nat44) return ResultCode::NotAuthorized;
    // §7.4 NETWORK_FAILURE: e.g. no external address yet.
    if (policy.external_v4.empty()) return ResultCode::NetworkFailure;
  } else if (!policy.ipv6_firewall) {
    return ResultCode::NotAuthorized;
  }
  return std::nullopt;
}

std::optional<ResultCode> Server::Impl::check_quota(const IpAddr& internal) const {
  // RFC 6887 §11.3, §17.2 / R-QUOTA-1, R-RC-5: per subscriber first (more specific, R-RC-1).
  // Counted as the open transaction leaves the table.
  const auto of_internal = static_cast<std::size_t>(
      static_cast<std::ptrdiff_t>(table.count_for_internal(internal)) + pending.count_delta(internal));
  if (of_internal >= policy.max_mappings_per_client) return ResultCode::UserExQuota;
  const auto size = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(table.size()) + pending.size_delta());
  if (size >= policy.max_mappings || size >= MappingTable::kCapacity)
    return ResultCode::NoResources;  // R-QUOTA-2
  return std::nullopt;
}

Election Server::Impl::elect(const wire::Request& req, const Target& t,
                             const Mapping* current) const {
  // RFC 7767 §3.1 / R-CKPT-1: MAP and PEER only (the caller); NAT-PMP has no such option and
  // its mappings are never elected (a NAT-PMP renewal un-elects, as a renewal without it does).
  const bool requested = req.options.checkpoint_required && t.origin == Origin::Pcp;
  // An all-ports mapping has no election keys (one per port would be 65,535): not honoured.
  const auto* map = std::get_if<wire::MapBody>(&req.body);
  if (requested && map != nullptr && map->internal_port == 0) return Election::RefusedDisabled;
  const bool already = current != nullptr && current->checkpoint;
  // R-CKPT-7: the client is the mapping's internal address (THIRD_PARTY: the third party), as
  // for the mapping quota (check_quota).
  // Counted as the open transaction leaves the table; its honoured elections spent tokens.
  ElectionCounts counts;
  counts.total = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(table.elected_count()) +
                                          pending.elected_delta());
  counts.of_client = static_cast<std::size_t>(
      static_cast<std::ptrdiff_t>(table.elected_for_internal(t.internal)) + pending.elected_delta(t.internal));
  counts.spent = pending.honoured(t.internal);
  // RFC 7767 §3.2: the state cannot be checkpointed (no standby peer): not honoured. A renewal
  // of an elected mapping loses its election too, as the peer cannot confirm it holds it.
  if (requested && policy.checkpoint.enabled && !t.checkpoint_available) return Election::RefusedPeer;
  return checkpoint_limiter.decide(policy.checkpoint, requested, already, counts, t.internal,
                                   clock.now());
}

void Server::Impl::add_mapping(Mapping& m, const wire::Request& req, const Target& t) {
  // RFC 7767 §3.1 / R-CKPT-4: over a checkpoint limit the mapping is served all the same,
  // without the option.
  const Election election = elect(req, t, nullptr);
  m.checkpoint = elected(election);
  m.checkpoint_deferred = election == Election::RefusedPeer;  // elected when the peer is back
  stage(Change::add(m));
  ++tally().created;
  record_election(election, t);
}

void Server::Impl::record_election(Election e, const Target& t) {
  pending.note_election(e, t.internal);
}

Reply Server::Impl::handle(const wire::Request& req, const Context& ctx) {
  Stats& counts = tally();
  ++counts.requests_by_opcode[opcode_index(req.opcode)];
  Reply r = dispatch(req, ctx);
  // hops-00 R-CAP-1/4/5/6/8: the capability set, where the reply carries one (one place for
  // every opcode and result; the handlers never set it).
  r.response.options.capability = capability_for(req, r);
  if (r.kind == Reply::Kind::Drop)
    ++counts.dropped;
  else
    count_result(counts, r.response.result);
  return r;
}

Reply Server::Impl::dispatch(const wire::Request& req, const Context& ctx) {
  // RFC 6887 §8.2 / R-ADDR-1: client address field vs packet source, all 128 bits. Applies to
  // every opcode, ANNOUNCE included (R-ANN-2), before the options (docs/design.md "Order of checks").
  if (req.client_addr != ctx.source) return error(req, ResultCode::AddressMismatch);
  // RFC 6887 §7.3: the first option error the decoder met.
  if (req.option_error) return error(req, *req.option_error);

  const wire::Options& o = req.options;
  if (req.opcode == wire::Opcode::Announce) {
    // R-OPT-7 (local decision): a mandatory-to-process option not valid for ANNOUNCE.
    if (o.third_party || o.prefer_failure || o.filter_count > 0)
      return error(req, ResultCode::MalformedOption);
    // RFC 6887 §14.1.1 / R-ANN-1: the requested lifetime is ignored; SUCCESS, lifetime 0.
    return success(req, wire::AnnounceBody{}, 0);
  }
  if (req.opcode != wire::Opcode::Map && req.opcode != wire::Opcode::Peer)
    return error(req, ResultCode::UnsuppOpcode);  // RFC 6887 §8.2 / R-HDR-7

  Target t{ctx.source, ctx.source, false, Origin::Pcp};
  t.checkpoint_available = ctx.checkpoint_available;
  t.reply_port = ctx.source_port;
  t.reply_local = intern_local(ctx.local);
  if (o.third_party) {
    // RFC 6887 §7.3, §13.1 / R-TP-3 (correction C1): disabled, or enabled but this client is not
    // on the allow-list -> UNSUPP_OPTION, never NOT_AUTHORIZED (does not reveal that the option
    // is known, nor who may use it).
    const bool allowed = policy.third_party &&
                         std::any_of(policy.third_party_allow.begin(), policy.third_party_allow.end(),
                                     [&](const wire::Prefix& p) { return p.contains(ctx.source); });
    if (!allowed) return error(req, ResultCode::UnsuppOption);
    // RFC 6887 §13.1 / R-TP-2: THIRD_PARTY naming the sender itself.
    if (*o.third_party == ctx.source) return error(req, ResultCode::MalformedRequest);
    t.internal = *o.third_party;  // R-TP-4: the mapping is for the option's address
    t.third_party = true;
    if (t.internal.is_unspecified()) {
      // R-TP-6: the all-zeros address is only meaningful in the "delete all I may delete" MAP.
      const auto* m = std::get_if<wire::MapBody>(&req.body);
      if (m == nullptr || req.lifetime != 0 || m->protocol != 0 || m->internal_port != 0)
        return error(req, ResultCode::MalformedOption);
    }
  }

  if (const auto* map = std::get_if<wire::MapBody>(&req.body);
      map != nullptr && req.opcode == wire::Opcode::Map)
    return handle_map(req, *map, t);
  if (const auto* peer = std::get_if<wire::PeerBody>(&req.body);
      peer != nullptr && req.opcode == wire::Opcode::Peer)
    return handle_peer(req, *peer, t);
  return error(req, ResultCode::MalformedRequest);  // body does not match the opcode
}

void Server::Impl::expire_due() {
  if (table.next_expiry() <= clock.now()) expire();
}

std::size_t Server::Impl::expire() {
  const Millis now = clock.now();
  std::vector<Mapping> due = table.due(now);
  if (due.empty()) return 0;
  ChangeSet cs;
  cs.changes.reserve(due.size());
  for (Mapping& m : due) cs.changes.push_back(Change::removal(std::move(m)));
  if (!apply(cs)) {
    // All or nothing here too: the mappings stay and are retried in a second (no busy loop).
    // The kernel elements carry their own timeouts meanwhile (docs/design.md "Lifetimes").
    for (const Change& c : cs.changes) {
      Mapping retry = c.mapping;
      retry.expires = now + Millis(1000);
      table.replace(retry);
    }
    return 0;
  }
  stats.expired += cs.changes.size();
  return cs.changes.size();
}

// --- Server ------------------------------------------------------------------------------

Server::Server(Policy policy, Datapath& datapath, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(policy), datapath, clock)) {}

Server::~Server() = default;

std::size_t Server::expire() { return impl_->expire(); }
Millis Server::next_expiry() const { return impl_->table.next_expiry(); }

std::size_t Server::encode_announce(std::span<std::uint8_t> out) const {
  return encode_announce(out, false);
}

std::size_t Server::encode_announce(std::span<std::uint8_t> out, bool with_capability) const {
  // RFC 6887 §14.1.3: a response (R=1), opcode ANNOUNCE, SUCCESS, lifetime 0, current epoch.
  wire::Response r;
  // hops-00 R-CAP-6 (always), R-CAP-7/9 (the caller asks): the set, when one is configured
  // (R-CAP-5).
  if (with_capability || impl_->policy.capability_always)
    r.options.capability = impl_->capability_to_send();
  r.opcode = wire::Opcode::Announce;
  r.result = ResultCode::Success;
  r.lifetime = 0;
  r.epoch = epoch();
  r.body = wire::AnnounceBody{};
  return wire::encode_response(r, out, impl_->policy.option_codes);
}

std::uint32_t Server::epoch() const { return impl_->epoch.at(impl_->clock.now()); }
Millis Server::epoch_origin() const { return impl_->epoch.origin(); }
void Server::set_epoch_origin(Millis origin) { impl_->epoch.set_origin(origin); }
void Server::reset_epoch() { impl_->epoch.reset(impl_->clock.now()); }

std::size_t Server::restore(std::vector<Mapping> mappings) {
  Impl& s = *impl_;
  const Millis now = s.clock.now();
  std::size_t accepted = 0;
  for (Mapping& m : mappings) {
    if (m.expires <= now) {
      // Expired while pcpd was down, but its elements may still be in the kernel: their timeout
      // is lifetime + grace (docs/design.md "Lifetimes"). Taken into the table so that the next
      // expire() removes them like any other expiry (R-LIFE-7); left out, its external port
      // could be given to a new mapping while the old element still holds it. Not counted.
      if (!s.table.conflicts(m)) s.table.insert(std::move(m));
      continue;
    }
    if (s.table.conflicts(m)) {
      ++s.stats.restore_conflicts;
      continue;
    }
    // RFC 7767: an elected mapping stays elected (its election keys are installed too) and
    // counts against the checkpoint caps from now on, even beyond them.
    s.table.insert(std::move(m));  // already installed: no apply (R-OWN-5 keeps the nonce)
    ++accepted;
  }
  s.stats.restored += accepted;
  s.stats.elected = s.table.elected_count();
  return accepted;
}

void Server::set_policy(Policy policy) { impl_->policy = std::move(policy); }
const Policy& Server::policy() const { return impl_->policy; }
std::vector<Mapping> Server::mappings() const { return impl_->table.snapshot(); }
void Server::for_each_mapping(const std::function<void(const Mapping&)>& f) const { impl_->table.visit(f); }
bool Server::for_each_mapping_from(std::uint32_t& cursor, std::size_t slots,
                                   const std::function<void(const Mapping&)>& f) const {
  return impl_->table.visit_from(cursor, slots, f);
}
std::size_t Server::mapping_count() const { return impl_->table.size(); }
Server::MappingCounts Server::mapping_counts() const {
  MappingCounts c;
  impl_->table.visit([&c](const Mapping& m) {
    if (m.checkpoint_deferred) ++c.deferred;
    const bool map = m.kind == MappingKind::Map;
    ++(m.is_v4() ? (map ? c.map4 : c.peer4) : (map ? c.map6 : c.peer6));
  });
  return c;
}
const Stats& Server::stats() const { return impl_->stats; }

}  // namespace pcpd::core
