// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/session.hpp"

#include <algorithm>
#include <cmath>

namespace pcpd::client {

const char* to_string(SessionEvent::Kind kind) {
  using K = SessionEvent::Kind;
  switch (kind) {
    case K::Created: return "create";
    case K::Renewed: return "renew";
    case K::Recreated: return "recreate";
    case K::Deleted: return "delete";
    case K::NoAnswer: return "no_answer";
    case K::EpochInvalid: return "epoch_invalid";
    case K::Announce: return "announce";
    case K::RecreateScheduled: return "recreate_scheduled";
    case K::Abandoned: return "abandoned";
  }
  return "?";
}

Result<std::size_t> Session::add(MappingSpec spec) {
  if (!spec.nonce) spec.nonce = client_.random_nonce();
  auto out = client_.request(spec);
  if (!out) return tl::unexpected(out.error());
  const std::size_t index = entries_.size();
  entries_.push_back(Entry{std::move(spec), Millis{0}, false, std::nullopt});
  Entry& e = entries_.back();
  e.active = out->success();
  if (e.active) {
    e.last = *out;
    schedule_after(e, *out);
  }
  const bool epoch_valid = out->epoch_valid;
  const std::uint32_t epoch = out->response.epoch;
  emit(SessionEvent{SessionEvent::Kind::Created, index, std::move(*out), epoch, epoch_valid, {}});
  if (!epoch_valid) {
    emit(SessionEvent{SessionEvent::Kind::EpochInvalid, index, std::nullopt, epoch, false, {}});
    schedule_recreate();
  }
  return index;
}

void Session::schedule_after(Entry& e, const Outcome& out) {
  // RFC 6887 §11.2.1: renew between 1/2 and 5/8 of the granted lifetime. An error response's
  // lifetime says how long the same error will recur (§7.4): do not ask again before that.
  const double lifetime_ms = static_cast<double>(out.response.lifetime) * 1000.0;
  double wait_ms = out.success() ? lifetime_ms * random_.uniform(config_.renew_min, config_.renew_max)
                                 : lifetime_ms;
  Millis wait{static_cast<std::int64_t>(std::llround(wait_ms))};
  if (wait < config_.min_interval) wait = config_.min_interval;
  e.next_action = out.received_at + wait;
}

void Session::schedule_recreate() {
  if (recreate_at_) return;  // one re-creation covers every trigger until it runs
  const double max_ms = static_cast<double>(config_.recreate_delay_max.count());
  const Millis delay{static_cast<std::int64_t>(std::llround(random_.uniform(0.0, max_ms)))};
  recreate_at_ = client_.clock().now() + delay;  // R-ANN-6: random 0-5 s
  emit(SessionEvent{SessionEvent::Kind::RecreateScheduled, 0, std::nullopt, 0, true, delay});
}

std::optional<Millis> Session::next_deadline() const {
  std::optional<Millis> best = recreate_at_;
  for (const auto& e : entries_) {
    if (!e.active) continue;
    if (!best || e.next_action < *best) best = e.next_action;
  }
  return best;
}

std::optional<Millis> Session::renew_at(std::size_t mapping) const {
  if (mapping >= entries_.size() || !entries_[mapping].active) return std::nullopt;
  return entries_[mapping].next_action;
}

std::size_t Session::active_count() const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.active; }));
}

void Session::on_announcements(const std::vector<Announcement>& announcements) {
  for (const auto& a : announcements) {
    const bool valid = client_.check_epoch(a.epoch, a.received_at);  // RFC 6887 §8.5
    emit(SessionEvent{SessionEvent::Kind::Announce, 0, std::nullopt, a.epoch, valid, {}});
    if (!valid)
      emit(SessionEvent{SessionEvent::Kind::EpochInvalid, 0, std::nullopt, a.epoch, false, {}});
    // RFC 6887 §14.1.3, R-ANN-6: re-create after a random delay. A valid epoch still triggers
    // it (the server announced for a reason; a refresh with the same nonce is harmless, R-SEC-5).
    schedule_recreate();
  }
}

void Session::run_due() {
  on_announcements(client_.take_announcements());
  const Millis now = client_.clock().now();
  if (recreate_at_ && now >= *recreate_at_) {
    recreate_at_.reset();
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].active) refresh(i, SessionEvent::Kind::Recreated);
    return;
  }
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    // Each request advances the clock: re-read it so a late mapping is still served this round.
    if (entries_[i].active && client_.clock().now() >= entries_[i].next_action)
      refresh(i, SessionEvent::Kind::Renewed);
  }
}

void Session::refresh(std::size_t index, SessionEvent::Kind kind) {
  MappingSpec spec = entries_[index].spec;
  // RFC 6887 §11.2.1 / §11.3: renew and re-create with the same nonce, suggesting the external
  // address and port the server assigned before.
  if (const auto& last = entries_[index].last) {
    if (const auto* m = std::get_if<wire::MapBody>(&last->response.body)) {
      spec.suggested_external_port = m->external_port;
      spec.suggested_external_addr = m->external_addr;
    } else if (const auto* p = std::get_if<wire::PeerBody>(&last->response.body)) {
      spec.suggested_external_port = p->external_port;
      spec.suggested_external_addr = p->external_addr;
    }
  }
  auto out = client_.request(spec);
  Entry& e = entries_[index];
  if (!out) {
    e.next_action = client_.clock().now() + config_.retry_after;
    emit(SessionEvent{SessionEvent::Kind::NoAnswer, index, std::nullopt, 0, true, {}});
    return;
  }
  if (out->success()) e.last = *out;
  schedule_after(e, *out);
  const bool epoch_valid = out->epoch_valid;
  const std::uint32_t epoch = out->response.epoch;
  const bool mismatch = out->response.result == wire::ResultCode::AddressMismatch;
  emit(SessionEvent{kind, index, std::move(*out), epoch, epoch_valid, {}});
  if (mismatch) {
    // R-ADDR-2: a NAT between this host and the server; PCP cannot work from here.
    e.active = false;
    emit(SessionEvent{SessionEvent::Kind::Abandoned, index, std::nullopt, 0, true, {}});
  }
  if (!epoch_valid) {
    // RFC 6887 §8.5: the server lost state; re-create everything (R-ANN-6 delay).
    emit(SessionEvent{SessionEvent::Kind::EpochInvalid, index, std::nullopt, epoch, false, {}});
    schedule_recreate();
  }
}

void Session::stop() {
  recreate_at_.reset();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (!e.active) continue;
    e.active = false;
    if (e.spec.opcode != wire::Opcode::Map) continue;  // R-PEER-3: PEER cannot delete
    // RFC 6887 §15: lifetime 0, same nonce; the suggested external address and port are zero.
    MappingSpec spec = e.spec;
    spec.lifetime = 0;
    spec.suggested_external_port = 0;
    spec.suggested_external_addr.reset();
    spec.prefer_failure = false;
    spec.filters.clear();  // R-FLT-6: FILTER with lifetime 0 is MALFORMED_OPTION
    auto out = client_.request(spec);
    if (!out) {
      emit(SessionEvent{SessionEvent::Kind::NoAnswer, i, std::nullopt, 0, true, {}});
      continue;
    }
    const std::uint32_t epoch = out->response.epoch;
    const bool valid = out->epoch_valid;
    emit(SessionEvent{SessionEvent::Kind::Deleted, i, std::move(*out), epoch, valid, {}});
  }
}

}  // namespace pcpd::client
