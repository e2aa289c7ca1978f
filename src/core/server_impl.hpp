// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Server::Impl: the state behind Server and the request handlers, split by opcode
// over server.cpp (general checks, expiry, epoch, restore), map_handler.cpp (RFC 6887 §11),
// peer_handler.cpp (§12), external_endpoint.cpp (external address/port choice),
// natpmp_handler.cpp (RFC 6886), request_path.cpp (decide, apply, commit: every request, one
// transaction per receive batch), standby.cpp
// (the hot standby: withdrawal, re-election, mirror), readdress.cpp (a new WAN address),
// static_mappings.cpp ([[static]]) and nonce_owner.cpp (nonce conflicts, the operator's
// deletes). Private to pcp_core.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <variant>

#include "core/checkpoint_limiter.hpp"
#include "core/epoch.hpp"
#include "core/mapping_table.hpp"
#include "core/pending.hpp"
#include "core/rate_limiter.hpp"
#include "core/server.hpp"
#include "wire/natpmp.hpp"

namespace pcpd::core {

// Whom a MAP/PEER request is for: the mapping's internal address (packet source, or the
// THIRD_PARTY address, R-TP-4) and the requester (packet source).
struct Target {
  IpAddr internal{};
  IpAddr client{};
  bool third_party = false;
  Origin origin = Origin::Pcp;
  bool checkpoint_available = true;  // Context::checkpoint_available
  std::uint16_t reply_port = 0;  // Mapping::reply_port / reply_local of the mapping it makes
  std::uint8_t reply_local = 0;
};

// An external endpoint chosen for a new binding.
struct External {
  IpAddr addr{};
  std::uint16_t port = 0;
};

struct Server::Impl {
  Impl(Policy p, Datapath& d, const Clock& c);

  Policy policy;
  Datapath& datapath;
  const Clock& clock;
  Epoch epoch;
  MappingTable table;
  Stats stats;
  std::minstd_rand rng;
  CheckpointLimiter checkpoint_limiter;  // RFC 7767 rate limit; counts live in the table
  RateLimiter rate_limiter;              // RFC 6887 §18.1 request rate limits (fixed memory)
  RateLimiter prefer_failure_limiter;    // R-PF-3, Policy::RateLimit::prefer_failure_rate
  // R-PF-3: true when this PREFER_FAILURE create from `client` is over its bucket.
  [[nodiscard]] bool prefer_failure_limited(const IpAddr& client);
  [[nodiscard]] Policy::RateLimit prefer_failure_bucket() const;
  // The server addresses requests arrived on (Context::local), for Mapping::reply_local: a
  // router has a handful, so a mapping keeps one byte instead of an address.
  std::vector<IpAddr> locals;
  [[nodiscard]] std::uint8_t intern_local(const IpAddr& local);
  std::function<void(const NonceConflict&)> nonce_sink;
  // Server::set_static: the configured static mappings (external address unspecified: the
  // first address of the pool), kept for sync_static() after an address change.
  std::vector<Mapping> static_wanted;
  // RFC 6887 §11.3 / R-MAP-7, R-OWN-2 (and R-PEER-9 for PEER): `cur` exists and `nonce` is not
  // its nonce. True when this request may take the mapping over (Policy::nonce_change, or a
  // NAT-PMP mapping of the same host), false for NOT_AUTHORIZED. Reports it either way.
  [[nodiscard]] bool may_take_over(const Mapping& cur, const wire::Nonce& nonce, const Target& t);

  // request_path.cpp: the transaction being decided. While `deciding`, the handlers stage()
  // their changes and count into `pending`; commit() makes it the table's, a refusal drops it.
  Pending pending;
  bool deciding = false;
  // Where a request's counters go: its transaction while one is open, else the Server's.
  [[nodiscard]] Stats& tally() { return deciding ? pending.stats : stats; }
  // What the request path keeps about one request of a burst, beside its BurstItem.
  struct Decided {
    bool done = false;        // the reply is encoded already (it changes nothing, whatever happens)
    bool staged = false;      // it has changes in the transaction
    bool pf_charged = false;  // took a PREFER_FAILURE token: a retry of the datagram takes none
    std::size_t opcode = 3;   // opcode_index(), for counting a refusal
    bool natpmp_map = false;  // a NAT-PMP map request: its answer is made from the MAP reply
    wire::natpmp::Op natpmp_op{};
    std::uint16_t natpmp_port = 0;
    std::uint32_t natpmp_lifetime = 0;
  };
  std::vector<Decided> decided;  // one per BurstItem, reused between bursts
  Decided* request = nullptr;    // the request being decided
  void open();
  // Decides one admitted request into the open transaction. False, with nothing done, when the
  // request reads what the transaction changes (Pending's rules): it waits for the next one.
  [[nodiscard]] bool decide(BurstItem& it, Decided& d);
  [[nodiscard]] bool decide_pcp(BurstItem& it, Decided& d);
  [[nodiscard]] bool decide_natpmp(BurstItem& it, Decided& d);
  // Whether a PCP request (or a NAT-PMP one, made a MAP) must wait for the open transaction.
  [[nodiscard]] bool waits(const IpAddr& internal, wire::Opcode op, std::uint8_t protocol,
                           std::uint16_t internal_port, std::uint16_t suggested_port) const;
  // The datapath gets the transaction; true: it took it and it is committed; false: dropped.
  [[nodiscard]] bool carry();
  void commit();
  // The request's transaction was refused (it alone): NO_RESOURCES (R-HDR-10), counted.
  void fail(Reply& r, const Decided& d, bool natpmp);
  void encode(BurstItem& it, const Decided& d) const;
  // Handlers: a change into the transaction.
  void stage(const Change& change);
  void stage(const ChangeSet& changes);
  static std::size_t opcode_index(wire::Opcode op);
  static void count_result(Stats& stats, wire::ResultCode code);

  // The table as the open transaction will leave it (Pending: exact where a request may read).
  [[nodiscard]] bool external_free(const EndpointKey& external) const;
  [[nodiscard]] std::optional<std::uint16_t> find_free_port(const IpAddr& external_addr,
                                                            std::uint8_t protocol, std::uint16_t lo,
                                                            std::uint16_t hi, std::uint16_t start) const;
  [[nodiscard]] std::optional<IpAddr> natpmp_holder(const EndpointKey& external) const;

  // RFC 6887 §18.1, R-QUOTA-5, R-SEC-3: true when the request from ctx.source is over its
  // client's or the global rate; it is then counted and must be dropped silently, undecoded.
  [[nodiscard]] bool rate_limited(const Context& ctx);

  // server.cpp
  // A PCP datagram that passed the rate limits: decode, handle, encode (Server::handle_datagram).
  Reply handle(const wire::Request& req, const Context& ctx);
  Reply dispatch(const wire::Request& req, const Context& ctx);
  std::size_t expire();
  void expire_due();
  // Outside requests (expiry, the operator, readdress, [[static]], the standby): the datapath
  // first, the table second; nothing changes unless apply() succeeds (R-HDR-10).
  [[nodiscard]] bool apply(const ChangeSet& changes);
  [[nodiscard]] bool apply(Change change);
  ChangeSet single;  // apply(Change)'s, reused
  [[nodiscard]] std::uint32_t clamp_lifetime(std::uint32_t requested) const;
  [[nodiscard]] std::uint32_t error_lifetime(wire::ResultCode code) const;
  [[nodiscard]] Reply error(const wire::Request& req, wire::ResultCode code,
                            std::optional<std::uint32_t> lifetime = std::nullopt) const;
  [[nodiscard]] Reply success(const wire::Request& req, wire::Body body,
                              std::uint32_t lifetime) const;
  // The options a served MAP or PEER echoes (RFC 6887 §7.3: only what the request carried):
  // THIRD_PARTY (R-TP-1, R-OPT-6); for MAP, PREFER_FAILURE and FILTER (R-FLT-1); the
  // DESCRIPTION kept (RFC 7220); CHECKPOINT_REQUIRED only when honoured (R-CKPT-2/3/4).
  static void echo_options(Reply& r, const wire::Options& o, bool map,
                           std::optional<std::string_view> description, bool elected);
  // Checks shared by MAP and PEER creates: protocol, denied ports, family policy, external
  // address availability. nullopt: fine.
  [[nodiscard]] std::optional<wire::ResultCode> check_endpoint(const Target& t,
                                                               std::uint8_t protocol,
                                                               std::uint16_t internal_port) const;
  [[nodiscard]] std::optional<wire::ResultCode> check_quota(const IpAddr& internal) const;
  // RFC 7767 (R-CKPT-4/5/7): the election of the mapping a served MAP/PEER request creates or
  // renews; `current` is the existing mapping (nullptr: a create). Changes nothing.
  [[nodiscard]] Election elect(const wire::Request& req, const Target& t,
                               const Mapping* current) const;
  // A new MAP or PEER mapping, its external endpoint still to be set (bind_external, or
  // choose_all_ports): elected (R-CKPT-4, never refused for it), staged, counted.
  void add_mapping(Mapping& m, const wire::Request& req, const Target& t);
  // The election into the transaction: its rate token and counters are taken at the commit.
  void record_election(Election e, const Target& t);
  // hops-00 CAPABILITY (capability.cpp): the set to send, A bit cleared; nullopt when none is
  // configured (R-CAP-5). What the reply to `req` carries (R-CAP-1/4/6/8); nullopt: nothing.
  [[nodiscard]] std::optional<wire::CapabilitySet::Bytes> capability_to_send() const;
  [[nodiscard]] std::optional<wire::CapabilitySet::Bytes> capability_for(const wire::Request& req,
                                                                         const Reply& reply) const;
  // R-CAP-8 (capability.cpp): a transport protocol whose capability bit is clear.
  [[nodiscard]] bool protocol_outside_capabilities(std::uint8_t protocol) const;

  // natpmp_handler.cpp: admit_natpmp() (policy, family, rate limits) before decide_natpmp().
  [[nodiscard]] bool admit_natpmp(const Context& ctx);
  void encode_natpmp(BurstItem& it, const Decided& d) const;

  // request_path.cpp: starts loading the table entries the burst's MAP and PEER requests will look up.
  void prefetch(std::span<const BurstItem> items) const;

  // map_handler.cpp
  Reply handle_map(const wire::Request& req, const wire::MapBody& body, const Target& t);
  Reply map_delete(const wire::Request& req, const wire::MapBody& body, const Target& t);
  // Bulk delete of explicit MAP mappings (R-LIFE-6, R-TP-6, R-PMP-3): `by_client` selects the
  // requester's mappings instead of the internal address's; `protocol` 0 = every protocol.
  Reply bulk_delete(const wire::Request& req, const IpAddr& who, bool by_client,
                    std::uint8_t protocol);

  // peer_handler.cpp
  Reply handle_peer(const wire::Request& req, const wire::PeerBody& body, const Target& t);

  // external_endpoint.cpp: the external endpoint of new mapping `m` of `internal`: the one the
  // endpoint's other mappings use (R-MAP-12), else choose_external(). An error when refused.
  [[nodiscard]] std::optional<wire::ResultCode> bind_external(Mapping& m, const EndpointKey& internal,
                                                              const IpAddr& suggested_addr,
                                                              std::uint16_t suggested_port, bool strict);
  // The external endpoint of a new binding of `internal`.
  // `strict` (PREFER_FAILURE, SCTP, PEER): a suggestion that cannot be honoured is
  // CANNOT_PROVIDE_EXTERNAL instead of another endpoint (RFC 6887 §11.3, §12.3, §13.2).
  [[nodiscard]] std::variant<External, wire::ResultCode> choose_external(
      const EndpointKey& internal, const IpAddr& suggested_addr, std::uint16_t suggested_port,
      bool strict);
  // An all-ports MAP (internal port 0, R-MAP-3): the external address (port 0) of a new
  // all-ports binding: IPv6 the host itself; NAT44 an address where no binding uses that
  // protocol, else UNSUPP_PROTOCOL (or CANNOT_PROVIDE_EXTERNAL for a strict suggestion).
  [[nodiscard]] std::variant<External, wire::ResultCode> choose_all_ports(const EndpointKey& internal,
                                                                          const IpAddr& suggested_addr,
                                                                          bool strict);
  // RFC 6886 §3.3: TCP for UDP and the reverse; 0 for other protocols.
  [[nodiscard]] static std::uint8_t other_transport(std::uint8_t protocol) {
    return protocol == kTcpProtocol ? kUdpProtocol : protocol == kUdpProtocol ? kTcpProtocol : 0;
  }
  // RFC 6886 §3.3: the other transport's port of a NAT-PMP mapping is its client's companion.
  [[nodiscard]] bool companion_of_other(const IpAddr& ext_addr, const EndpointKey& internal,
                                        std::uint16_t port) const;
  static constexpr std::uint8_t kTcpProtocol = 6;
  static constexpr std::uint8_t kUdpProtocol = 17;
  // An existing binding against a suggestion: does the suggestion name it (zero parts match)?
  [[nodiscard]] static bool suggestion_matches(const IpAddr& addr, std::uint16_t port,
                                               const IpAddr& ext_addr, std::uint16_t ext_port);
};

}  // namespace pcpd::core
