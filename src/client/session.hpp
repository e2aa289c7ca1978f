// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::Session: keeps a set of mappings alive with one server. Renews each between 1/2
// and 5/8 of its lifetime (RFC 6887 §11.2.1), re-creates all of them after an epoch anomaly
// (§8.5, R-EPOCH-6) or an unsolicited ANNOUNCE (§14.1.3), after a random 0-5 s delay (R-ANN-6),
// and deletes them on stop(). Single-threaded and driven from outside: the caller waits until
// next_deadline() or until an ANNOUNCE arrives, then calls run_due() / on_announcements().
// Tests drive it with a fake Transport and Clock; nothing here sleeps or reads the time itself.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "client/client.hpp"

namespace pcpd::client {

struct SessionConfig {
  double renew_min = 0.5;    // RFC 6887 §11.2.1: renew between 1/2 ...
  double renew_max = 0.625;  // ... and 5/8 of the lifetime
  Millis recreate_delay_max{5000};  // R-ANN-6: random 0-5 s before re-creating (0 in tests)
  Millis retry_after{30000};        // next try after a request got no answer at all
  Millis min_interval{1000};        // never schedule a request sooner than this after the last
};

struct SessionEvent {
  enum class Kind {
    Created,            // first response to add() (success or error)
    Renewed,            // response to a renewal
    Recreated,          // response to a re-creation
    Deleted,            // response to the delete sent by stop()
    NoAnswer,           // a request got no response (MRD/MRC reached); will retry
    EpochInvalid,       // R-EPOCH-6 failed on a response or ANNOUNCE
    Announce,           // an unsolicited ANNOUNCE from the server arrived
    RecreateScheduled,  // all mappings will be re-created after `delay`
    Abandoned,          // a mapping is no longer renewed (ADDRESS_MISMATCH, R-ADDR-2)
  };
  Kind kind;
  std::size_t mapping = 0;          // index returned by add(); 0 for session-wide events
  std::optional<Outcome> outcome;   // the response, when there is one
  std::uint32_t epoch = 0;          // Announce / EpochInvalid
  bool epoch_valid = true;          // Announce
  Millis delay{0};                  // RecreateScheduled
};

[[nodiscard]] const char* to_string(SessionEvent::Kind kind);

class Session {
 public:
  using EventSink = std::function<void(const SessionEvent&)>;

  Session(Client& client, Random& random, SessionConfig config, EventSink sink)
      : client_(client), random_(random), config_(config), sink_(std::move(sink)) {}

  // Creates a mapping now (blocking request through the client) and keeps it alive if the
  // server answered SUCCESS. The nonce is fixed here (random unless spec.nonce is set) and kept
  // for renewals, re-creation and deletion. Returns the index for events, or the request error.
  [[nodiscard]] Result<std::size_t> add(MappingSpec spec);

  // The earliest time at which run_due() has work (renewal, retry or re-creation); nullopt if
  // none.
  [[nodiscard]] std::optional<Millis> next_deadline() const;
  // Does everything due at clock.now(): first the ANNOUNCEs the client saw on its socket, then
  // a scheduled re-creation of all mappings, then individual renewals.
  void run_due();
  // Unsolicited ANNOUNCEs from the server (already source-checked): checks the epoch and
  // schedules the re-creation of every mapping (RFC 6887 §14.1.3, R-ANN-6).
  void on_announcements(const std::vector<Announcement>& announcements);
  // Deletes every MAP mapping (lifetime 0, same nonce, RFC 6887 §15). PEER mappings cannot be
  // deleted (R-PEER-3) and are left to expire.
  void stop();

  [[nodiscard]] std::size_t active_count() const;
  [[nodiscard]] std::optional<Millis> recreate_at() const { return recreate_at_; }
  [[nodiscard]] std::optional<Millis> renew_at(std::size_t mapping) const;

 private:
  struct Entry {
    MappingSpec spec;      // with the nonce filled in
    Millis next_action{};  // when to renew or retry
    bool active = false;
    std::optional<Outcome> last;  // last successful response
  };

  void refresh(std::size_t index, SessionEvent::Kind kind);
  void schedule_after(Entry& e, const Outcome& out);
  void schedule_recreate();
  void emit(SessionEvent ev) { if (sink_) sink_(ev); }

  Client& client_;
  Random& random_;
  SessionConfig config_;
  EventSink sink_;
  std::vector<Entry> entries_;
  std::optional<Millis> recreate_at_;
};

}  // namespace pcpd::client
