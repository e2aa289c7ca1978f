// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::RetransmitTimer: the request retransmission schedule of RFC 6887 §8.1.1
// (IRT 3 s, MRT 1024 s, MRC 0, MRD 0 = no limit; RAND uniform in [-0.1, +0.1], new each time).
#pragma once

#include <cstdint>

#include "client/clock.hpp"
#include "client/random.hpp"

namespace pcpd::client {

struct RetransmitParams {
  Millis irt{3000};        // initial retransmission time
  Millis mrt{1024000};     // maximum retransmission time (0: no cap)
  std::uint32_t mrc = 0;   // maximum transmissions (0: no limit)
  Millis mrd{0};           // maximum total duration (0: no limit)
};

inline constexpr double kRandMax = 0.1;  // RFC 6887 §8.1.1: RAND in [-0.1, +0.1]

class RetransmitTimer {
 public:
  RetransmitTimer(const RetransmitParams& params, Random& random) : params_(params), random_(random) {}
  // The next retransmission timeout: first IRT + RAND*IRT, then 2*RTprev + RAND*RTprev, capped at
  // MRT + RAND*MRT (RFC 6887 §8.1.1). Never less than 1 ms.
  [[nodiscard]] Millis next();

 private:
  RetransmitParams params_;
  Random& random_;
  double prev_ms_ = 0;  // 0: nothing sent yet
};

}  // namespace pcpd::client
