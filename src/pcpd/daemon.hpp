// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::Daemon: wires configuration, the nftables datapath, core::Server, the UDP
// sockets, the timers and the signals together, and runs the epoll loop.
// Start-up: config -> NftDatapath::open -> ruleset stamp -> set_external_interfaces -> snapshot
// or recover (nft dump) -> Server::restore -> epoch (continuous or reset, EpochStore) -> [ha] peer
// link (a bad key file stops pcpd here, before it binds the PCP port) -> sockets
// -> READY=1 -> unsolicited ANNOUNCE.
// SIGHUP reloads (a bad file keeps the old configuration), SIGTERM/SIGINT stop; mappings stay
// in the kernel with their timeouts and the table goes to state_dir/mappings.snapshot.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/interface_table.hpp"
#include "conntrack/conntrack_sync.hpp"
#include "ctl/ctl_socket.hpp"
#include "ctl/latency_histogram.hpp"
#include "ctl/metrics.hpp"
#include "core/clock.hpp"
#include "core/server.hpp"
#include "nft/nft_datapath.hpp"
#include "pcpd/address_watch.hpp"
#include "pcpd/announce_schedule.hpp"
#include "pcpd/event_loop.hpp"
#include "pcpd/ha_peer.hpp"
#include "pcpd/ingress_filter.hpp"
#include "pcpd/journal_tap.hpp"
#include "pcpd/udp_server_socket.hpp"
#include "util/log.hpp"
#include "wire/messages.hpp"

namespace pcpd::daemon {

struct Options {
  std::string config_path = "/etc/pcpd/pcpd.conf";
  bool debug = false;  // -d: log level debug whatever the file says
};

// Datagrams that never reached core (RFC 6887 §8.2), by reason.
struct DropCounters {
  std::uint64_t wrong_interface = 0;
  std::uint64_t wrong_source = 0;
  std::uint64_t not_unicast = 0;
  std::uint64_t empty = 0;
  std::uint64_t natpmp_v6 = 0;  // R-PMP-1: NAT-PMP is IPv4 only
};

// VRRP role as keepalived reports it through `pcpctl ha` (standalone until told otherwise).
enum class Role : std::uint8_t { Standalone, Primary, Backup, Fault };
const char* to_string(Role role);
// The peer link's role for a keepalived role told to pcpd (never Standalone: pcpctl ha and the
// role file know only primary, backup and fault).
ha::Role link_role(Role role);

// "203.0.113.1,203.0.113.2" for the journal.
std::string join_addrs(const std::vector<wire::IpAddr>& addrs);
std::string join_prefixes(const std::vector<wire::Prefix>& prefixes);
// Parses and validates the file, then fills the host-dependent defaults. Throws ConfigError
// (also for an interface look-up failure, reported at line 0).
std::shared_ptr<const config::Config> load_config(const std::string& path);
// systemd's STATUS= line.
void notify_status(const std::string& status);

// The host's interfaces now (getifaddrs); nullopt, logged as interfaces.list_failed, when they
// cannot be read.
std::optional<config::InterfaceTable> host_interfaces();

class Daemon {
 public:
  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGTERM/SIGINT. Returns the process exit status (0, or 1 on a start-up failure).
  int run();

 private:
  struct Sockets {
    std::optional<UdpServerSocket> v4;
    std::optional<UdpServerSocket> v6;
  };

  bool start();
  [[nodiscard]] std::optional<Sockets> open_sockets(std::uint16_t port) const;
  void install_sockets(Sockets sockets);
  [[nodiscard]] IngressFilter make_filter(const config::Config& config) const;
  // daemon_state.cpp: the restart state in state_dir (mapping_snapshot.hpp, mapping_journal.hpp).
  // Restores the table from mappings.snapshot and, with daemon.journal, the mappings.journal
  // after it, when the kernel is as they say (true; the journal goes on from there); else logs
  // why and returns false (nft dump instead). `at_stamp`: the commit count when `kernel` was read.
  bool restore_state(const Result<nft::NftDatapath::RulesetStamp>& kernel, CommitCount at_stamp);
  // The whole table to mappings.snapshot and, with daemon.journal, a new journal after it.
  // `durable`: fsync (the clean stop's). Skipped (logged) while the table is not pcpd's.
  // False when nothing was written or the new journal could not be started.
  bool write_state(const char* reason, bool durable);
  // Datapath timer: a new snapshot and journal when the journal ended or outgrew
  // max(daemon.journal_max_mb, the snapshot).
  void maintain_journal();
  [[nodiscard]] CommitCount commit_count() const;
  void setup_epoch(bool fully_recovered);
  void reset_epoch(const char* reason);
  // The epoch origin to state_dir/epoch: a restart that recovers everything continues it.
  void save_epoch();
  bool start_ha();
  void restore_role();  // [ha] role_file: the role keepalived last told

  void on_signal();
  // daemon_requests.cpp: the request path.
  void on_socket(const UdpServerSocket& socket);
  // Ingress checks (RFC 6887 §8.2, R-PMP-1, hot-standby backup); false: dropped and counted.
  [[nodiscard]] bool admit(const UdpServerSocket& socket, const Received& r);
  // Without [ha]: the whole batch in one core::Server::handle_burst.
  void handle_burst(const UdpServerSocket& socket, std::span<const Received> batch);
  // With [ha] only (ha_ set): one datagram, its reply possibly held for the peer's ack.
  void handle(const UdpServerSocket& socket, const Received& r);
  void respond(const UdpServerSocket& socket, const Datagram& d, std::span<const std::uint8_t> bytes,
               std::chrono::steady_clock::time_point started);
  void log_request(const Received& r, std::span<const std::uint8_t> reply) const;
  // control.cpp: one line per nonce conflict, naming client, mapping and outcome (rate-limited:
  // a client that lost its nonce retries many times a second).
  void log_nonce_conflict(const core::NonceConflict& c);
  ctl::Answer control_delete(const nlohmann::json& args);
  ctl::Answer control_flush(const nlohmann::json& args);
  void on_expiry_timer();
  void on_announce_timer();
  // SIGHUP and `pcpctl reload`. A file that cannot be taken leaves the running configuration as
  // it is; the reason (file:line for a config error) is returned so that pcpctl can fail with it.
  std::optional<std::string> reload();

  void start_announce();
  void send_announce_copy();
  void rearm_expiry();
  void rearm_announce();
  // The conntrack worker's finished rounds: logs and metrics.
  void on_conntrack_reports();
  void note_datapath_errors(const char* during);
  // Datapath watch: re-installs every mapping when the nft table was deleted or re-created.
  bool start_datapath_watch();
  void arm_datapath_check(std::int64_t delay_ms);
  void on_datapath_timer();
  void apply_logging(const config::Config& config) const;
  // daemon_external.cpp: the external address follows the WAN interface (RFC 6887 §14.2).
  // The watch is not essential: without it (no rtnetlink) a reload still picks the address up.
  void start_address_watch();
  void on_address_event();
  void on_address_timer();
  // Re-reads the external interface's IPv4 addresses (unless interfaces.external_address is
  // set) and takes a changed set: Server::set_policy, then after_external_change().
  void follow_external_address();
  // Policy::external_v4 is new (followed, or reloaded): move the mappings off gone addresses,
  // reset the epoch when the set differs from the one the mappings were on (R-EPOCH-4),
  // announce (R-ANN-3 decision, R-PMP-4) and start the Mapping Updates (R-ANN-7).
  void after_external_change();
  void start_mapping_updates(std::vector<core::Mapping> moved);
  // daemon_static.cpp: [[static]] mappings. `configured`: the configuration's set is new (start,
  // reload); otherwise the same set is held again (address change, retry after a refusal).
  void apply_static(bool configured, const char* when);
  // daemon_announce_unicast.cpp: unicast ANNOUNCE (RFC 6887 §14.1.3, R-ANN-4) to every client
  // whose request pcpd answered since it started, besides the multicast copies: a client whose
  // socket is bound to [::]:5350 (libpcp) never sees IPv4 multicast.
  void collect_unicast_targets();
  void send_unicast_announce(std::span<const std::uint8_t> announce);
  void on_update_timer();
  void send_mapping_update_copy();

  // Control socket (control.cpp): pcpctl list / stats / ha / ct-touch / reload.
  bool open_control();
  ctl::Answer control(const std::string& cmd, const nlohmann::json& args);
  // `pcpctl list` as a stream: kListSlots table places a piece (never the whole table
  // in memory or in one go).
  static constexpr std::size_t kListSlots = 256;
  ctl::Stream list_stream();
  nlohmann::json control_stats();
  void add_conntrack_metrics(ctl::Metrics& m);
  nlohmann::json set_role(const std::string& role);
  void warn_conntrack_events() const;

  Options options_;
  std::shared_ptr<const config::Config> config_;
  core::BootClock clock_;
  std::unique_ptr<nft::NftDatapath> datapath_;
  // Mapping journal (journal_tap.hpp): between datapath_ and everything that applies changes.
  std::unique_ptr<JournalTap> journal_;
  // Unexpired mappings the last run's snapshot + journal held (restore_state), whether or not
  // they could be used: a set dump that finds fewer lost some, and the epoch resets.
  std::optional<std::size_t> expected_live_;
  std::uint64_t snapshot_bytes_ = 0;  // the last snapshot written or read
  // maintain_journal's back-off after a failed write_state.
  core::Millis state_retry_at_{0};
  std::int64_t state_retry_ms_ = 0;
  // Hot standby ([ha], ha_peer.hpp): core applies through tap_, which feeds the peer link.
  std::unique_ptr<ChangeTap> tap_;
  std::unique_ptr<HaPeer> ha_;
  std::unique_ptr<core::Server> server_;
  std::unique_ptr<EventLoop> loop_;
  std::optional<SignalFd> signals_;
  std::optional<BootTimer> expiry_timer_;
  std::optional<BootTimer> announce_timer_;
  // The connections of the mappings (elect, un-elect, forget, ct-touch), on its own thread: no
  // request waits for a conntrack walk, whatever the size of the router's flow table.
  std::unique_ptr<ct::ConntrackSync> conntrack_;
  // Checks table inet pcpd every few seconds, soon after an apply failure, every second while it
  // is gone; re-installs the mappings when it is back (NftDatapath::check_table / reinstall).
  std::optional<BootTimer> datapath_timer_;
  std::optional<ctl::CtlServer> ctl_;
  Role role_ = Role::Standalone;
  Sockets sockets_;
  IngressFilter filter_;
  AnnounceSchedule schedule_;
  // The external address watch (daemon_external.cpp): address events are gathered for
  // kAddressSettleMs before the addresses are read (DHCP and PPPoE remove, then add).
  std::optional<AddressWatch> address_watch_;
  std::optional<BootTimer> address_timer_;
  // The non-empty external set the mappings were last put on: an address that goes and comes
  // back is no change (nothing moved, the epoch continues).
  std::vector<wire::IpAddr> mappings_external_;
  bool readdress_pending_ = false;  // the last move was refused, or left mappings behind: again
  std::size_t readdress_no_port_ = 0;  // mappings the last move left behind (no free port)
  bool static_pending_ = false;     // the kernel refused the static set: try again
  // Mapping Update (R-ANN-7): one unsolicited response per moved PCP mapping and copy, on the
  // announcement schedule, until the client refreshed the mapping or the copies are out.
  struct PendingUpdate {
    core::MappingKind kind = core::MappingKind::Map;
    wire::IpAddr internal{};
    std::uint8_t protocol = 0;
    std::uint16_t internal_port = 0;
    wire::IpAddr remote{};
    std::uint16_t remote_port = 0;
    core::Millis expires{0};  // a refresh moves it: the client knows, stop
    wire::IpAddr external{};
    std::uint16_t external_port = 0;
    wire::IpAddr client{};
    std::uint16_t client_port = 0;
    wire::IpAddr local{};  // the server address the client used (R-SEC-5)
  };
  std::vector<PendingUpdate> updates_;
  struct UnicastTarget {
    wire::IpAddr client{};
    std::uint16_t port = 0;
    wire::IpAddr local{};
    friend bool operator==(const UnicastTarget&, const UnicastTarget&) = default;
  };
  std::vector<UnicastTarget> unicast_targets_;
  AnnounceSchedule update_schedule_;
  std::optional<BootTimer> update_timer_;
  // The current announcement round carries CAPABILITY (hops-00 R-CAP-7 after a change of the
  // set on reload, R-CAP-9 at start); capability.always adds it to every round anyway.
  bool announce_capability_ = false;
  DropCounters drops_;
  // Time from a datagram taken off the socket to its response sent (pcpctl stats).
  ctl::LatencyHistogram latency_;
  std::uint64_t datapath_errors_seen_ = 0;
  log::RateLimiter datapath_limiter_;
  log::RateLimiter socket_limiter_;
  log::RateLimiter nonce_limiter_;
  std::array<std::uint8_t, wire::kMaxMessageSize> tx_{};
  // handle_burst: one item and one reply buffer per datagram of a receive batch.
  std::array<core::BurstItem, UdpServerSocket::kBatch> burst_items_{};
  std::array<const Received*, UdpServerSocket::kBatch> burst_from_{};
  std::array<Outgoing, UdpServerSocket::kBatch> burst_replies_{};
  using ReplyBuffers = std::array<std::array<std::uint8_t, wire::kMaxMessageSize>, UdpServerSocket::kBatch>;
  std::unique_ptr<ReplyBuffers> burst_out_ = std::make_unique<ReplyBuffers>();
};

}  // namespace pcpd::daemon
