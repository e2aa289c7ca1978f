// SPDX-License-Identifier: GPL-2.0-or-later
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

// Parses and validates the file, then fills the host-dependent defaults. Throws ConfigError
// (also for an interface look-up failure, reported at line 0).
std::shared_ptr<const config::Config> load_config(const std::string& path) {
  config::Config c = config::parse_config_file(path);
  config::InterfaceTable table;
  try {
    table = config::system_interfaces();
  } catch (const std::system_error& e) {
    throw config::ConfigError(path, 0, std::string("cannot list interfaces: ") + e.what());
  }
  for (const auto& w : config::resolve_interfaces(c, table)) log::warn("config.warning", {{"message", w}});
  return std::make_shared<const config::Config>(std::move(c));
}

void notify_status(const std::string& status) {
  std::string msg = "STATUS=" + status;
  sd_notify(0, msg.c_str());
}

std::string join_prefixes(const std::vector<wire::Prefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) {
    if (!out.empty()) out += ',';
    out += p.to_string();
  }
  return out;
}

std::optional<config::InterfaceTable> host_interfaces() {
  try {
    return config::system_interfaces();
  } catch (const std::system_error& e) {
    log::warn("interfaces.list_failed", {{"error", e.what()}});
    return std::nullopt;
  }
}

std::string join_addrs(const std::vector<wire::IpAddr>& addrs) {
  std::string out;
  for (const auto& a : addrs) {
    if (!out.empty()) out += ',';
    out += a.to_string();
  }
  return out;
}

Daemon::Daemon(Options options) : options_(std::move(options)) {}
Daemon::~Daemon() = default;

void Daemon::apply_logging(const config::Config& config) const {
  log::configure(config.log_target, options_.debug ? log::Level::Debug : config.log_level);
  if (config.log_target == log::Target::Journal && !log::to_journal())
    log::warn("log.journal_unavailable", {{"fallback", "stderr"}});
}

int Daemon::run() {
  log::configure(log::Target::Auto, options_.debug ? log::Level::Debug : log::Level::Info);
  if (!start()) return 1;
  auto result = loop_->run();
  sd_notify(0, "STOPPING=1");
  // The connections of mappings deleted in the last moment: a bounded wait, then pcpd stops.
  if (!conntrack_->drain(std::chrono::seconds(2))) log::warn("conntrack.stop_pending", {{"pending", conntrack_->counters().pending}});
  if (!result) {
    log::error("daemon.loop_failed", {{"error", error_text(result.error())}});
    return 1;
  }
  write_state("stop", true);  // after the last kernel change: the next start skips the O(n^2) set dump
  log::info("daemon.stop", {{"mappings", server_->mapping_count()}});
  return 0;
}

bool Daemon::start() {
  // 1. Configuration.
  try {
    config_ = load_config(options_.config_path);
  } catch (const config::ConfigError& e) {
    log::error("config.invalid", {{"message", e.what()}});
    notify_status(std::string("invalid configuration: ") + e.what());
    return false;
  }
  const config::Config& cfg = *config_;
  apply_logging(cfg);
  log::info("daemon.start", {{"version", PCPD_VERSION},
                             {"config", cfg.file},
                             {"internal_prefixes", join_prefixes(cfg.internal_prefixes)},
                             {"external_address", join_addrs(cfg.policy.external_v4)}});

  // 2. The kernel datapath.
  try {
    datapath_ = nft::NftDatapath::open(nft::TableSpec{
        .table = cfg.nft_table, .grace_seconds = cfg.nft_grace});
  } catch (const nft::SetupError& e) {
    log::error("nft.setup_failed", {{"message", e.what()}});
    notify_status(std::string("nftables: ") + e.what());
    return false;
  }
  // Before pcpd's own first transaction (set_external_interfaces bumps the generation id): is the
  // kernel as the last clean stop left it? (restore_snapshot below)
  const auto kernel_stamp = datapath_->ruleset_stamp();
  const CommitCount commits_at_stamp = commit_count();
  datapath_->probe_refresh_in_place();  // commits: after the stamp
  if (auto r = datapath_->tune_gc_interval(); !r)  // commits when a set has no gc-interval yet
    log::warn("nft.gc_interval_failed", {{"error", error_text(r.error())}});
  if (auto r = datapath_->set_external_interfaces({cfg.external_interface}); !r) {
    log::error("nft.set_external_failed", {{"interface", cfg.external_interface}, {"error", error_text(r.error())}});
    notify_status("nftables: cannot set the external interface");
    return false;
  }

  // 3. Core, with the mappings the kernel still holds (restart recovery).
  journal_ = std::make_unique<JournalTap>(*datapath_, [this] { return commit_count(); }, clock_);
  conntrack_ = std::make_unique<ct::ConntrackSync>(
      []() -> Result<std::unique_ptr<ct::CtKernel>> {
        auto k = ct::NetlinkCtKernel::open();
        if (!k) return tl::unexpected(k.error());
        return std::unique_ptr<ct::CtKernel>(std::move(*k));
      },
      ct::SyncSpec{.elected_mark = cfg.elected_mark, .sticky_mark = cfg.sticky_mark, .mapped_mark = cfg.mapped_mark,
                   .log_group = cfg.log_group},
      ct::ConntrackSync::Mode::Thread);
  journal_->on_committed([this](const core::ChangeSet& c) { conntrack_->submit(c); });
  tap_ = std::make_unique<ChangeTap>(*journal_);
  server_ = std::make_unique<core::Server>(cfg.policy, *tap_, clock_);
  server_->set_nonce_conflict_sink([this](const core::NonceConflict& c) { log_nonce_conflict(c); });
  bool fully_recovered = false;
  if (restore_state(kernel_stamp, commits_at_stamp)) {
    fully_recovered = server_->stats().restore_conflicts == 0;
  } else if (auto recovered = datapath_->recover(clock_.now()); recovered) {
    const std::size_t found = recovered->size();
    const std::size_t accepted = server_->restore(std::move(*recovered));
    fully_recovered = server_->stats().restore_conflicts == 0;
    log::info("mappings.recovered", {{"source", "nft_dump"}, {"found", found}, {"restored", accepted},
                                     {"conflicts", server_->stats().restore_conflicts}});
    // RFC 6887 §8.5 (R-EPOCH-3), RFC 6886 §3.6: the kernel lost mappings the last run held (a
    // flushed ruleset, nftables restarted): clients must be told to re-create them.
    if (expected_live_ && accepted < *expected_live_) {
      fully_recovered = false;
      log::warn("mappings.lost", {{"held_before", *expected_live_}, {"recovered", accepted},
                                  {"epoch", "reset"}});
    }
  } else {
    log::warn("mappings.recover_failed", {{"error", error_text(recovered.error())}});
  }

  // After a dump (or a snapshot without journal): the journal starts from a snapshot of now.
  if (cfg.journal && !journal_->active()) write_state("start", false);

  // 4. Epoch (RFC 6887 §8.5): continuous after a full recovery in the same boot, else reset.
  setup_epoch(fully_recovered);

  // 5. Event sources and sockets.
  auto loop = EventLoop::create();
  auto signals = SignalFd::create();
  auto expiry = BootTimer::create();
  auto announce = BootTimer::create();
  if (!loop || !signals || !expiry || !announce) {
    log::error("daemon.setup_failed", {{"what", "epoll/signalfd/timerfd"}});
    return false;
  }
  loop_ = std::move(*loop);
  signals_.emplace(std::move(*signals));
  expiry_timer_.emplace(std::move(*expiry));
  announce_timer_.emplace(std::move(*announce));
  // [ha] before the PCP port: a bad key file or sync address stops pcpd before it binds 5351
  // (and before a client could get an answer from a daemon that is about to exit).
  if (!start_ha()) return false;
  auto sockets = open_sockets(cfg.port);
  if (!sockets) {
    notify_status("cannot bind the PCP port " + std::to_string(cfg.port));
    return false;
  }
  filter_ = make_filter(cfg);
  if (!loop_->add(signals_->fd(), [this] { on_signal(); }) ||
      !loop_->add(expiry_timer_->fd(), [this] { on_expiry_timer(); }) ||
      !loop_->add(announce_timer_->fd(), [this] { on_announce_timer(); }) ||
      !loop_->add(conntrack_->notify_fd(), [this] { on_conntrack_reports(); })) {
    log::error("daemon.setup_failed", {{"what", "epoll_ctl"}});
    return false;
  }
  install_sockets(std::move(*sockets));
  rearm_expiry();
  if (!start_datapath_watch()) return false;
  start_address_watch();
  apply_static(true, "start");  // after the start-time readdress, before the first answer
  if (!open_control()) return false;
  warn_conntrack_events();

  // 6. Ready, then tell the clients (RFC 6887 §14.1.3, R-ANN-3; RFC 6886 §3.2.1, R-PMP-4).
  const std::string status = "serving " + std::to_string(server_->mapping_count()) +
                             " mappings, epoch " + std::to_string(server_->epoch());
  std::string ready = "READY=1\nSTATUS=" + status;
  sd_notify(0, ready.c_str());
  log::info("daemon.ready", {{"port", cfg.port}, {"mappings", server_->mapping_count()},
                             {"epoch", server_->epoch()}});
  // hops-00 R-CAP-9: a server joining the network MAY announce its capabilities.
  announce_capability_ = cfg.policy.capabilities.has_value();
  start_announce();
  return true;
}

// [ha]: the peer link on the sync network (RFC 7767 §3 checkpoint before responding).
bool Daemon::start_ha() {
  const config::Config& cfg = *config_;
  if (!cfg.ha.enabled) return true;
  std::string error;
  ha_ = HaPeer::open(cfg.ha, *server_, *journal_, *tap_, clock_, [this] { rearm_expiry(); }, error);
  if (!ha_) {
    log::error("ha.setup_failed", {{"message", error}});
    notify_status(error);
    return false;
  }
  if (!loop_->add(ha_->socket_fd(), [this] { ha_->on_readable(); }) ||
      !loop_->add(ha_->timer_fd(), [this] { ha_->on_timer(); })) {
    log::error("daemon.setup_failed", {{"what", "epoll_ctl ha"}});
    return false;
  }
  restore_role();
  return true;
}

// keepalived runs a notify only when its own state changes, so a pcpd restarted under a running
// keepalived (systemctl restart, upgrade, crash) would otherwise stay roleless: neither serving
// as primary with the checkpoint available nor holding the primary's copy as backup. The notify
// script writes the state to role_file before it calls pcpctl; that file is the role now.
void Daemon::restore_role() {
  const std::string& file = config_->ha.role_file;
  if (file.empty()) return;
  std::ifstream in(file);
  if (!in) {
    // No keepalived notify since boot: keepalived's first one will tell.
    log::info("ha.role_unknown", {{"role_file", file}, {"reason", std::strerror(errno)}});
    return;
  }
  std::string word;
  in >> word;
  if (word == "master") word = "primary";
  if (word != "primary" && word != "backup" && word != "fault" && word != "stop") {
    log::warn("ha.role_file_invalid", {{"role_file", file}, {"content", word}});
    return;
  }
  // A stopped keepalived holds no VIPs: this router is not serving.
  if (word == "stop") word = "backup";
  const Role previous = role_;
  role_ = word == "primary" ? Role::Primary : word == "backup" ? Role::Backup : Role::Fault;
  // The epoch was decided by this start's recovery (setup_epoch); the table is our own.
  (void)ha_->set_role(link_role(role_));
  ha_->set_epoch_origin(server_->epoch_origin());
  log::info("ha.role", {{"from", to_string(previous)}, {"to", to_string(role_)}, {"source", file}});
}

void Daemon::setup_epoch(bool fully_recovered) {
  const auto boot_id = read_boot_id();
  EpochStore store(config_->state_dir);
  const auto stored = store.load();
  if (keep_epoch(stored, boot_id.value_or(""), fully_recovered, clock_.now())) {
    server_->set_epoch_origin(stored->origin);
    log::info("epoch.continued", {{"epoch", server_->epoch()}, {"origin_ms", stored->origin.count()}});
    return;
  }
  const char* reason = !fully_recovered                       ? "state_not_recovered"
                       : !stored                              ? "no_saved_epoch"
                       : boot_id.value_or("") != stored->boot_id ? "new_boot"
                                                              : "saved_origin_invalid";
  reset_epoch(reason);
}

void Daemon::reset_epoch(const char* reason) {
  server_->reset_epoch();  // R-EPOCH-3/4
  log::info("epoch.reset", {{"reason", reason}, {"origin_ms", server_->epoch_origin().count()}});
  save_epoch();
}

void Daemon::save_epoch() {
  const auto boot_id = read_boot_id();
  if (!boot_id) {
    log::warn("epoch.boot_id_unreadable", {});
    return;
  }
  EpochStore store(config_->state_dir);
  if (auto r = store.save(EpochRecord{*boot_id, server_->epoch_origin()}); !r)
    log::warn("epoch.save_failed", {{"path", store.path()}, {"error", error_text(r.error())}});
}

std::optional<Daemon::Sockets> Daemon::open_sockets(std::uint16_t port) const {
  Sockets s;
  auto v4 = UdpServerSocket::open(AF_INET, port);
  if (!v4) {
    log::error("socket.bind_failed", {{"family", "ipv4"}, {"port", port}, {"error", error_text(v4.error())}});
    return std::nullopt;
  }
  s.v4.emplace(std::move(*v4));
  auto v6 = UdpServerSocket::open(AF_INET6, port);
  if (v6) {
    s.v6.emplace(std::move(*v6));
  } else if (v6.error().code == EAFNOSUPPORT) {
    log::warn("socket.ipv6_unavailable", {{"error", error_text(v6.error())}});
  } else {
    log::error("socket.bind_failed", {{"family", "ipv6"}, {"port", port}, {"error", error_text(v6.error())}});
    return std::nullopt;
  }
  return s;
}

void Daemon::install_sockets(Sockets sockets) {
  for (auto* old : {&sockets_.v4, &sockets_.v6})
    if (*old) loop_->remove((*old)->fd());
  sockets_ = std::move(sockets);
  for (auto* sock : {&sockets_.v4, &sockets_.v6}) {
    if (!*sock) continue;
    const UdpServerSocket* s = &**sock;
    if (auto r = loop_->add(s->fd(), [this, s] { on_socket(*s); }); !r)
      log::error("socket.poll_failed", {{"error", error_text(r.error())}});
  }
}

IngressFilter Daemon::make_filter(const config::Config& config) const {
  const config::InterfaceTable table = host_interfaces().value_or(config::InterfaceTable{});
  std::vector<unsigned> indexes;
  for (const auto& name : config.internal_interfaces) {
    const config::Interface* itf = table.find(name);
    if (itf != nullptr && itf->index != 0) indexes.push_back(itf->index);
  }
  return IngressFilter(std::move(indexes), config.internal_prefixes);
}

void Daemon::on_signal() {
  while (int sig = signals_->read()) {
    if (sig == SIGHUP) {
      (void)reload();  // a failure is logged; nobody waits for an answer
    } else {
      log::info("daemon.signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      loop_->stop();
      return;
    }
  }
}

}  // namespace pcpd::daemon
