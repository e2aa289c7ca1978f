// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::HaPeer: the hot-standby peer link in the daemon (docs/design.md "Mapping state on the
// standby", RFC 7767 §3). Owns the UDP socket on the sync network, the ha::PeerLink state machine
// and its timer, and the responses held until the peer acknowledged their election.
//   Primary: every ChangeSet core applies (seen through ChangeTap) is replicated; the response to
//     an honoured CHECKPOINT_REQUIRED request is held until the peer's ack, at most ack_timeout;
//     a missing or slow peer gets the mapping un-elected and the response re-encoded without the
//     option (RFC 7767 §3.2: not honoured), counted and logged.
//   Backup: received mappings are installed in the kernel and mirrored into core's table; PCP
//     and NAT-PMP requests are not answered (serving() false).
// Also ChangeTap: the Datapath core::Server is given, forwarding to the kernel and keeping what
// was applied for replication.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/server.hpp"
#include "ctl/metrics.hpp"
#include "ha/peer_link.hpp"
#include "pcpd/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace pcpd::daemon {

// Forwards every apply() to the kernel datapath; while recording, keeps the applied changes.
class ChangeTap final : public core::Datapath {
 public:
  explicit ChangeTap(core::Datapath& inner) : inner_(inner) {}
  [[nodiscard]] Result<void> apply(const core::ChangeSet& changes) override;
  void record(bool on) { recording_ = on; }
  [[nodiscard]] core::ChangeSet take();

 private:
  core::Datapath& inner_;
  bool recording_ = false;
  core::ChangeSet taken_;
};

// The link's datagram transport: the UDP socket on the sync network in the daemon (open()), an
// in-memory pair in the unit tests, so that the hold/ack/timeout logic runs without a network.
class LinkSocket {
 public:
  virtual ~LinkSocket() = default;
  [[nodiscard]] virtual int fd() const = 0;  // for the event loop; -1 when there is none
  // Sends one datagram to the peer; false (errno set) when it could not be sent.
  virtual bool send(std::span<const std::uint8_t> datagram) = 0;
  // The next waiting datagram into `buf`: its size and source; nullopt when none is waiting
  // (errno EAGAIN) or on an error (errno set).
  struct Received {
    std::size_t size = 0;
    wire::IpAddr source{};
    std::uint16_t port = 0;
  };
  virtual std::optional<Received> receive(std::span<std::uint8_t> buf) = 0;
};

struct HaCounters {
  std::uint64_t requests_dropped = 0;  // PCP/NAT-PMP requests not answered while backup/fault
  std::uint64_t waits = 0;             // responses held for the peer's ack
  std::uint64_t acked = 0;             // ... sent after the ack
  std::uint64_t timeouts = 0;          // ... sent without the option after ack_timeout
  std::uint64_t peer_lost = 0;         // ... sent without the option when the peer went down
  std::uint64_t wrong_source = 0;      // datagrams on the link socket from another address
  std::uint64_t install_errors = 0;    // replicated changes the kernel refused (standby)
};

class HaPeer {
 public:
  // Sends a response to the client that asked (the daemon's socket, address and port).
  using Responder = std::function<void(std::span<const std::uint8_t>)>;

  // Reads and checks the key file (regular file, not readable by group/others, 32..4096 bytes),
  // opens and binds the socket. nullptr and `error` set (naming the file or address) on failure.
  static std::unique_ptr<HaPeer> open(const config::Config::Ha& cfg, core::Server& server,
                                      core::Datapath& kernel, ChangeTap& tap,
                                      const core::Clock& clock, std::function<void()> on_table,
                                      std::string& error);
  // Over a given transport (open() passes the UDP socket; tests an in-memory one). nullptr and
  // `error` set when the timer or the sender id cannot be had.
  static std::unique_ptr<HaPeer> with_socket(const config::Config::Ha& cfg, ha::LinkKey key,
                                             std::unique_ptr<LinkSocket> socket, core::Server& server,
                                             core::Datapath& kernel, ChangeTap& tap, const core::Clock& clock,
                                             std::function<void()> on_table, std::string& error);
  ~HaPeer();
  HaPeer(const HaPeer&) = delete;
  HaPeer& operator=(const HaPeer&) = delete;

  [[nodiscard]] int socket_fd() const { return socket_->fd(); }
  [[nodiscard]] int timer_fd() const { return timer_.fd(); }
  void on_readable();
  void on_timer();

  // keepalived's role. Primary from another role: returns whether the state is a complete,
  // current copy of the old primary's (then its epoch origin is adopted), else the caller resets
  // the epoch (R-EPOCH-3, docs/design.md "Decisions").
  struct Promotion {
    bool synced = false;
    std::optional<core::Millis> peer_epoch_origin;
  };
  Promotion set_role(ha::Role role);
  void set_epoch_origin(core::Millis origin);

  // False while backup or fault: PCP and NAT-PMP requests are dropped (and counted here).
  [[nodiscard]] bool serving() const;
  void count_dropped() { ++counters_.requests_dropped; }
  // Whether an election can be checkpointed now (core::Context::checkpoint_available): primary,
  // with a peer up that is not primary too.
  [[nodiscard]] bool checkpoint_available() const { return checkpoint_available_; }
  // After core handled one request: replicates what it changed. True when its reply
  // (BurstItem::hold, BurstItem::decision) is held until the peer acknowledged (then `send` is
  // called later, with the reply encoded, with or without the option); false: send it now.
  bool after_request(const core::BurstItem& request, Responder send);
  // Replicates changes made outside a request (expiry, reload).
  void flush();
  // Answers every held response now, without the option (RFC 7767 §3.2: not honoured), counted
  // as peer_lost. For the peer going down, and before the daemon replaces the sockets the held
  // responders send through.
  void release_all(const char* outcome);

  // Whether this router may take the VIPs without losing elected state: as primary, yes; else
  // only once it holds a complete, current copy of the primary's replicated mappings (a
  // snapshot of the peer's running process, kept up to date since). keepalived asks through
  // `pcpctl ha ready` (ha/pcpd-ha-check, a track_script) before a returning router preempts.
  struct Readiness {
    bool ready = false;
    std::string reason;
  };
  [[nodiscard]] Readiness readiness() const;
  [[nodiscard]] const HaCounters& counters() const { return counters_; }

  void add_metrics(ctl::Metrics& m) const;

 private:
  struct Held {
    ha::Token token = 0;
    wire::Response response;  // a MAP or PEER success, encoded when it is sent
    // The DESCRIPTION the response echoes: its view of the request's datagram goes stale with
    // the next receive, so send_held() encodes it from this copy.
    std::string description;
    Responder send;
    core::Millis deadline{0};
    std::vector<core::Mapping> elected;  // the elections this response confirms
  };

  HaPeer(const config::Config::Ha& cfg, ha::LinkKey key, std::uint32_t sender_id,
         std::unique_ptr<LinkSocket> socket, BootTimer timer,
         core::Server& server, core::Datapath& kernel, ChangeTap& tap, const core::Clock& clock,
         std::function<void()> on_table);

  ha::PeerLink::ReplicateResult replicate(const core::ChangeSet& changes, ha::Token token);
  void pump();             // sends the link's datagrams, acts on its events, re-arms the timer
  void on_event(const ha::LinkEvent& event);
  void install(const core::ChangeSet& changes, const char* what);
  void release(Held& held, const char* outcome);  // un-elect, send without the option
  void send_held(const Held& held);
  void update_availability();  // checkpoint_available_, and a re-election when it turns true
  void note_rejects();
  void rearm();
  void reelect();          // Server::reelect_deferred, replicated and logged

  config::Config::Ha cfg_;
  std::unique_ptr<LinkSocket> socket_;
  BootTimer timer_;
  core::Server& server_;
  core::Datapath& kernel_;
  ChangeTap& tap_;
  const core::Clock& clock_;
  std::function<void()> on_table_;
  ha::PeerLink link_;
  ha::Token next_token_ = 1;
  bool checkpoint_available_ = false;  // until a peer is up and we are primary
  bool reelect_due_ = false;           // it turned true: deferred elections are due
  std::deque<Held> held_;
  HaCounters counters_;
  std::array<std::uint64_t, ha::kRejectReasons> rejects_seen_{};
  log::RateLimiter reject_limiter_;
  log::RateLimiter wait_limiter_;
  std::array<std::uint8_t, ha::kMaxDatagramSize + 1> rx_{};
};

}  // namespace pcpd::daemon
