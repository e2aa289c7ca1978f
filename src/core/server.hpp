// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Server: the PCP server logic, pure over a Datapath and a Clock.
// Owns the mapping table, port allocation, nonce ownership, lifetimes, quotas, FILTER, epoch.
// Never includes a netlink, socket or logging header (docs/design.md "Parts": wire <- core <- backends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "core/policy.hpp"
#include "core/stats.hpp"
#include "wire/messages.hpp"

namespace pcpd::core {

// Where a datagram came from, as the daemon saw it (IP_PKTINFO / IPV6_PKTINFO).
struct Context {
  wire::IpAddr source{};          // packet source address (mapped form for IPv4)
  std::uint16_t source_port = 0;
  wire::IpAddr local{};           // address the request arrived on (our address)
  // Whether an election can be checkpointed now (RFC 7767 §3.2): false while a configured hot
  // standby peer cannot hold it (the daemon's HA peer says). A CHECKPOINT_REQUIRED request is
  // then served without the option, counted in Stats::checkpoint_refused_peer, and the mapping
  // is marked Mapping::checkpoint_deferred. True without a peer.
  bool checkpoint_available = true;
};

// What the server decided for one request. The daemon encodes it:
//   Drop    -> nothing is sent
//   Success -> wire::encode_response(response)
//   Error   -> wire::encode_error_response(request bytes, response.result, response.lifetime,
//              response.epoch, parsed, response.options.capability, codes): the copied request
//              with its CAPABILITY option replaced by response.options.capability (hops-00
//              R-CAP-8; removed when that is nullopt). The other response.options are unused.
struct Reply {
  enum class Kind : std::uint8_t { Drop, Success, Error };
  Kind kind = Kind::Drop;
  bool parsed = true;  // Error only: false when the request could not be decoded
  wire::Response response;
};

// One datagram of a receive burst (Server::handle_burst). The daemon fills datagram, ctx,
// natpmp and out; handle_burst writes reply (bytes of `out` to send, 0 = send nothing), once
// the datapath took or refused the request's changes.
struct BurstItem {
  std::span<const std::uint8_t> datagram;
  Context ctx;
  bool natpmp = false;         // version byte 0: handle_natpmp rather than handle_datagram
  std::span<std::uint8_t> out;
  std::size_t reply = 0;
  bool admitted = false;       // set by handle_burst: passed the rate limits
  // Set by handle_burst: the reply honours a CHECKPOINT_REQUIRED election this request made or
  // renewed (RFC 7767 §3), so with a standby peer it waits for the peer's ack; `decision` is
  // that reply (a PCP success) as a structure, for sending it without the option if the peer
  // does not confirm. For other requests `decision` is the PCP reply (NAT-PMP: the MAP reply
  // its answer was made from), for logs and tests.
  bool hold = false;
  Reply decision;
};

// A request named an existing mapping with another nonce (RFC 6887 §11.3 / R-MAP-7, R-OWN-2),
// and what the server did: the daemon logs it, naming the client and the mapping, so an
// operator can see which client is locked out of its own ports and decide.
struct NonceConflict {
  enum class Outcome : std::uint8_t {
    Refused,       // NOT_AUTHORIZED (Policy::NonceChange::Refuse, or not the owner's request)
    Replaced,      // the owner's new nonce taken (Policy::NonceChange::SameHost)
    NatPmpTaken,   // a NAT-PMP mapping (no nonce) taken by a PCP request from its own host
  };
  Outcome outcome = Outcome::Refused;
  IpAddr client{};  // the requester
  bool third_party = false;
  Mapping mapping;  // as it was before the request
};

class Server {
 public:
  Server(Policy policy, Datapath& datapath, const Clock& clock);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // One PCP datagram (version byte != 0) from an internal client: decode, decide, apply, encode.
  // Writes the reply into `out` and returns its length; 0 = send nothing.
  [[nodiscard]] std::size_t handle_datagram(std::span<const std::uint8_t> datagram,
                                            const Context& ctx, std::span<std::uint8_t> out);

  // One NAT-PMP datagram (version byte 0, IPv4 only, R-PMP-1). Same contract.
  [[nodiscard]] std::size_t handle_natpmp(std::span<const std::uint8_t> datagram,
                                          const Context& ctx, std::span<std::uint8_t> out);

  // The datagrams of one receive batch, each answered as handle_datagram / handle_natpmp would,
  // but decided into one transaction whose changes the Datapath gets at once (the kernel cost
  // is per transaction, not per element); only then are they committed to the table. A request
  // that reads what the transaction changes (its own mapping, a bulk delete, a port it frees)
  // starts the next transaction instead. Each request stays all or nothing (R-HDR-10): if the
  // transaction is refused, it is dropped (the table never held it) and every request in it is
  // decided again in its own, so only the requests the kernel refuses get NO_RESOURCES. The rate
  // limits are applied once, before anything else; expired mappings are removed first, in a
  // transaction of their own. Stats::bursts / burst_retries count them. handle_datagram,
  // handle_natpmp and handle are this path with one request.
  void handle_burst(std::span<BurstItem> items);

  // A decoded request, decided and applied as one transaction (all or nothing, R-HDR-10).
  [[nodiscard]] Reply handle(const wire::Request& request, const Context& ctx);

  // Removes mappings whose lifetime has passed (R-LIFE-7) and applies their removal.
  // Returns how many expired. Call it from a timer; next_expiry() says when.
  std::size_t expire();
  [[nodiscard]] Millis next_expiry() const;  // Millis::max() when there is no mapping

  // Unsolicited ANNOUNCE (RFC 6887 §14.1.3): response header, opcode ANNOUNCE, current epoch.
  // Carries CAPABILITY when Policy::capabilities is set and capability_always (R-CAP-6).
  [[nodiscard]] std::size_t encode_announce(std::span<std::uint8_t> out) const;
  // The same; `with_capability` also adds CAPABILITY when capability_always is off, provided
  // Policy::capabilities is set (hops-00 R-CAP-7: the set changed; R-CAP-9: a new server joins).
  [[nodiscard]] std::size_t encode_announce(std::span<std::uint8_t> out, bool with_capability) const;
  // NAT-PMP gratuitous external-address response (RFC 6886 §3.2.1).
  [[nodiscard]] std::size_t encode_natpmp_announce(std::span<std::uint8_t> out) const;

  // Epoch (RFC 6887 §8.5): seconds since the epoch origin, continuous after a full restore.
  [[nodiscard]] std::uint32_t epoch() const;
  // Epoch origin on the Clock: the daemon persists it to keep the epoch continuous across a
  // restart whose mappings were fully recovered (R-EPOCH-3 decision).
  [[nodiscard]] Millis epoch_origin() const;
  void set_epoch_origin(Millis origin);
  void reset_epoch();  // state lost or external address changed (R-EPOCH-3/4)

  // Recovery after restart: takes mappings read back from the kernel into the table without
  // applying them (they are already installed). Returns how many were accepted; mappings that
  // conflict (same key or external port) are skipped and counted in stats.
  std::size_t restore(std::vector<Mapping> mappings);

  // Hot standby (RFC 7767 §3, docs/design.md "Mapping state on the standby"); whether an
  // election can be checkpointed comes with each request (Context::checkpoint_available).
  // The peer did not acknowledge an honoured election in time: un-elect the table's mapping with
  // the key of `m` (kind + internal endpoint, + remote for PEER) and apply that Replace. False
  // when no such elected mapping exists or the datapath refused; counted in
  // Stats::checkpoint_withdrawn when done.
  bool withdraw_checkpoint(const Mapping& m);
  // The peer is back (checkpoint available again): elect every mapping whose election was
  // deferred (Mapping::checkpoint_deferred: refused for the missing peer, or withdrawn when it
  // did not acknowledge), within the checkpoint caps, as one Replace ChangeSet applied to the
  // datapath (the backend marks their connections, the peer link replicates them). Counted in
  // Stats::checkpoint_reelected. The caller calls it when the peer can hold them again.
  struct Reelection {
    std::size_t elected = 0;   // now elected
    std::size_t over_cap = 0;  // still deferred: a checkpoint cap is reached
    bool failed = false;       // the datapath refused the transaction; all stay deferred
  };
  Reelection reelect_deferred();
  // Standby: `changes` were applied to the datapath by the caller (replicated from the primary);
  // make the table follow them. Add of a conflicting mapping and Remove of an unknown one are
  // skipped and counted in Stats::mirror_skipped. Returns how many changes were taken.
  std::size_t mirror(const ChangeSet& changes);

  // The external IPv4 address changed (Policy::external_v4 set anew with set_policy; the daemon
  // follows the WAN interface). RFC 6887 §14.2 Mapping Update (R-ANN-7): every NAT44 mapping
  // whose external address is no longer in the pool moves to one that is, keeping its external
  // port where that port is free there (else its internal port, else a random free one), every
  // mapping of one internal endpoint to the same new endpoint (R-MAP-12), all in one datapath
  // transaction (Remove + Add: the external endpoint is part of the kernel's keys). With an
  // empty pool nothing moves: the mappings wait for an address (requests on them get
  // NETWORK_FAILURE, §7.4) and `waiting` counts them.
  struct Readdress {
    std::vector<Mapping> moved;  // the mappings as they are now, for the unsolicited responses
    std::size_t port_kept = 0;   // of `moved`: same external port as before
    std::size_t no_port = 0;     // left where they were: no free port on any new address
    std::size_t waiting = 0;     // empty pool: NAT44 mappings left on a gone address
    bool failed = false;         // the datapath refused the transaction: nothing moved
  };
  Readdress readdress();
  // The unsolicited MAP or PEER response Mapping Update sends for `m` (R-ANN-7): SUCCESS, the
  // remaining lifetime, the current epoch, THIRD_PARTY when the mapping has it, its FILTERs; no
  // optional-to-process option. Returns the bytes written (0: `out` too small).
  [[nodiscard]] std::size_t encode_mapping_update(const Mapping& m, std::span<std::uint8_t> out) const;
  // Mapping::reply_local as an address; nullopt for 0 or an unknown index.
  [[nodiscard]] std::optional<IpAddr> local_address(std::uint8_t reply_local) const;
  // The mapping of that kind and key, if any (a copy: the table may change after).
  [[nodiscard]] std::optional<Mapping> find(MappingKind kind, const IpAddr& internal_addr,
                                            std::uint8_t protocol, std::uint16_t internal_port,
                                            const IpAddr& remote_addr, std::uint16_t remote_port) const;

  // Static mappings ([[static]] in the configuration; RFC 6887 §11.3, §15): permanent, no nonce,
  // no expiry (Mapping::kNever), reported to a MAP for their internal endpoint with lifetime
  // 2^32-1 (R-MAP-6), never deleted by a request (R-LIFE-5/6) nor by expiry. set_static()
  // replaces the configured set (each entry: protocol, internal endpoint, external port for
  // NAT44, external address or unspecified for the pool's first, description, checkpoint);
  // sync_static() makes the table hold it again after the pool changed or a failed attempt. One
  // datapath transaction: a static mapping no longer configured is removed, a changed one
  // replaced, a new one added. A dynamic mapping on a configured external endpoint, or on a
  // configured internal endpoint with another external one, is removed (`displaced`: the
  // caller resets the epoch, RFC 6887 §8.5); one exactly as configured becomes static. NAT44
  // ones wait while the pool is empty (or lacks their address) or NAT44 is off.
  struct StaticSync {
    std::size_t added = 0, changed = 0, removed = 0, kept = 0;
    std::size_t waiting = 0;
    std::vector<Mapping> displaced;
    bool failed = false;  // the datapath refused: nothing changed
  };
  StaticSync set_static(std::vector<Mapping> wanted);
  StaticSync sync_static();

  // Called for every nonce conflict (see NonceConflict), from inside the request's handling.
  void set_nonce_conflict_sink(std::function<void(const NonceConflict&)> sink);

  // The operator's delete (`pcpctl delete`): the MAP (remote unspecified) or PEER mapping of
  // that key, whoever made it, in one transaction. Returns how many were removed (0 or 1),
  // kStaticRefused for a static mapping (it belongs to the configuration), or nullopt when the
  // datapath refused.
  std::optional<std::size_t> remove_mapping(MappingKind kind, const IpAddr& internal_addr,
                                            std::uint8_t protocol, std::uint16_t internal_port,
                                            const IpAddr& remote_addr, std::uint16_t remote_port);
  static constexpr std::size_t kStaticRefused = static_cast<std::size_t>(-1);
  // `pcpctl flush --client ADDR`: every mapping (MAP and PEER, PCP and NAT-PMP; static ones
  // stay) whose internal address or requester is `addr`, in one transaction. Count, or nullopt
  // when refused.
  std::optional<std::size_t> remove_client(const IpAddr& addr);

  // Reload: new policy; existing mappings stay (lifetimes are clamped on their next refresh).
  void set_policy(Policy policy);
  [[nodiscard]] const Policy& policy() const;

  [[nodiscard]] std::vector<Mapping> mappings() const;  // snapshot for pcpctl / tests
  // Calls f for every mapping, in no particular order, without copying the table (the state
  // snapshot: 1,000,000 copies would be 160 MB). f must not call back into the Server.
  void for_each_mapping(const std::function<void(const Mapping&)>& f) const;
  // The same in pieces, for a walk spread over time (`pcpctl list` of 1,000,000 mappings, issue
  // 7): calls f for the mappings of the next `slots` table places from `cursor` (0 to start) and
  // moves the cursor past them; false once the cursor is past the end. Between calls the table
  // may change: every mapping present from the first call to the last is visited exactly once,
  // one created or removed in between may or may not be.
  bool for_each_mapping_from(std::uint32_t& cursor, std::size_t slots,
                             const std::function<void(const Mapping&)>& f) const;
  // Mappings by kind and address family, for metrics (one pass, no copy).
  struct MappingCounts {
    std::size_t map4 = 0, map6 = 0, peer4 = 0, peer6 = 0;
    std::size_t deferred = 0;  // Mapping::checkpoint_deferred
  };
  [[nodiscard]] MappingCounts mapping_counts() const;
  [[nodiscard]] std::size_t mapping_count() const;
  [[nodiscard]] const Stats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pcpd::core
