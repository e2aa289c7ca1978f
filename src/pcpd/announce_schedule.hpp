// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::AnnounceSchedule: when to send the copies of an unsolicited announcement
// (RFC 6887 §14.1.3, R-ANN-4; RFC 6886 §3.2.1, R-PMP-4): the first at once, then gaps of 250 ms,
// 500 ms, 1 s, ... (each at least double the one before), `copies` in all. Pure: times are
// core::Millis from the caller's clock. A restart (new epoch reset) begins a fresh round.
#pragma once

#include "core/clock.hpp"

namespace pcpd::daemon {

class AnnounceSchedule {
 public:
  static constexpr core::Millis kFirstGap{250};

  AnnounceSchedule() = default;
  // Begins a round of `copies` announcements, the first due at `now`.
  void start(unsigned copies, core::Millis now);
  void cancel() { remaining_ = 0; }
  [[nodiscard]] bool active() const { return remaining_ > 0; }
  // When the next copy is due; Millis::max() when none is.
  [[nodiscard]] core::Millis next_due() const;
  // True when a copy is due at `now`: the caller sends it. Schedules the next one a gap after
  // `now` (so a late timer never shortens the following gap).
  [[nodiscard]] bool take(core::Millis now);
  [[nodiscard]] unsigned sent() const { return sent_; }

 private:
  unsigned remaining_ = 0;
  unsigned sent_ = 0;
  core::Millis due_{0};
  core::Millis gap_{kFirstGap};
};

}  // namespace pcpd::daemon
