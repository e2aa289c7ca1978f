// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Epoch: the PCP Epoch Time (RFC 6887 §8.5), seconds since an origin on the core Clock.
// One epoch for PCP and NAT-PMP (R-PMP-5). Standard library only.
#pragma once

#include <cstdint>

#include "core/clock.hpp"

namespace pcpd::core {

class Epoch {
 public:
  // R-EPOCH-2: advances by one every second, from a monotonic clock; never negative. Never 0
  // either: Apple's mDNSResponder keeps a server epoch of 0 as 1, so a server that answers 0 in
  // its first second looks rebooted at every later answer, and the client re-creates its
  // mappings with new nonces (a storm of NOT_AUTHORIZED). The first second reads 1, like the
  // second; a client's check of the epoch (RFC 6887 §8.5) allows that second of slack.
  [[nodiscard]] std::uint32_t at(Millis now) const {
    if (now <= origin_) return 1;
    const auto seconds = static_cast<std::uint32_t>((now - origin_).count() / 1000);
    return seconds == 0 ? 1 : seconds;
  }
  [[nodiscard]] Millis origin() const { return origin_; }
  void set_origin(Millis origin) { origin_ = origin; }  // R-EPOCH-3: continuity after a restore
  void reset(Millis now) { origin_ = now; }             // R-EPOCH-3/4: state lost, address changed

 private:
  Millis origin_{0};
};

}  // namespace pcpd::core
