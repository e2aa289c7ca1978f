// SPDX-License-Identifier: GPL-2.0-or-later
// Static mappings ([[static]], RFC 6887 §11.3): the daemon hands the configured set to core at
// start and reload and asks core to hold it again after an external address change or a
// refused transaction. Core decides what moves (Server::sync_static); this file logs it and,
// when a client's mapping had to make room, resets the epoch so the client re-creates (§8.5).
#include "ctl/ctl_json.hpp"
#include "pcpd/daemon.hpp"
#include "util/log.hpp"

namespace pcpd::daemon {

namespace {

std::vector<core::Mapping> static_mappings(const config::Config& cfg) {
  std::vector<core::Mapping> out;
  out.reserve(cfg.statics.size());
  for (const config::Config::Static& s : cfg.statics) {
    core::Mapping m;
    m.origin = core::Origin::Static;
    m.protocol = s.protocol;
    m.internal_addr = s.internal_addr;
    m.internal_port = s.internal_port;
    m.external_addr = s.external_addr;  // unspecified (either family): the pool's first address
    m.external_port = s.external_port;
    m.description = s.description;
    m.checkpoint = s.checkpoint;
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

void Daemon::apply_static(bool configured, const char* when) {
  if (!configured && !static_pending_ && config_->statics.empty()) return;
  const core::Server::StaticSync r =
      configured ? server_->set_static(static_mappings(*config_)) : server_->sync_static();
  if (ha_) ha_->flush();  // a displaced replicated mapping leaves the standby too
  if (r.failed) {
    // All or nothing: the table is as it was. The datapath timer tries again.
    static_pending_ = true;
    note_datapath_errors("static");
    log::error("static.failed", {{"when", when}, {"configured", config_->statics.size()}});
    return;
  }
  static_pending_ = false;
  for (const core::Mapping& m : r.displaced)
    log::warn("static.displaced", {{"mapping", ctl::mapping_summary(m)}, {"client", m.client_addr},
                                   {"reason", "a [[static]] entry holds its endpoint"}});
  if (r.added + r.changed + r.removed != 0 || !r.displaced.empty() || (configured && r.waiting != 0))
    log::info("static.applied", {{"when", when}, {"added", r.added}, {"changed", r.changed}, {"removed", r.removed},
                                 {"kept", r.kept}, {"displaced", r.displaced.size()}, {"waiting", r.waiting}});
  rearm_expiry();
  // RFC 6887 §8.5: mappings were lost without their clients asking; the epoch reset and the
  // ANNOUNCE round make them re-create (elsewhere). A router that does not serve announces nothing.
  if (!r.displaced.empty() && (!ha_ || ha_->serving())) {
    reset_epoch("static_mapping_displaced");
    start_announce();
  }
}

}  // namespace pcpd::daemon
