// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/announce_schedule.hpp"

namespace pcpd::daemon {

void AnnounceSchedule::start(unsigned copies, core::Millis now) {
  remaining_ = copies;
  sent_ = 0;
  due_ = now;
  gap_ = kFirstGap;
}

core::Millis AnnounceSchedule::next_due() const {
  return remaining_ > 0 ? due_ : core::Millis::max();
}

bool AnnounceSchedule::take(core::Millis now) {
  if (remaining_ == 0 || now < due_) return false;
  --remaining_;
  ++sent_;
  // RFC 6887 §14.1.3: first gap at least 250 ms, each later gap at least double the previous.
  due_ = now + gap_;
  gap_ *= 2;
  return true;
}

}  // namespace pcpd::daemon
