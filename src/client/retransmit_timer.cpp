// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/retransmit_timer.hpp"

#include <cmath>

namespace pcpd::client {

Millis RetransmitTimer::next() {
  const double irt = static_cast<double>(params_.irt.count());
  const double mrt = static_cast<double>(params_.mrt.count());
  double rt;
  // RFC 6887 §8.1.1: a new RAND for every computation.
  if (prev_ms_ == 0) {
    rt = irt + random_.uniform(-kRandMax, kRandMax) * irt;
  } else {
    rt = 2 * prev_ms_ + random_.uniform(-kRandMax, kRandMax) * prev_ms_;
    if (mrt > 0 && rt > mrt) rt = mrt + random_.uniform(-kRandMax, kRandMax) * mrt;
  }
  if (rt < 1) rt = 1;
  prev_ms_ = rt;
  return Millis{static_cast<std::int64_t>(std::llround(rt))};
}

}  // namespace pcpd::client
