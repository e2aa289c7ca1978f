// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ha::ReplayWindow: anti-replay for one sender id's datagram sequence numbers, as IPsec
// does it (RFC 4303 §3.4.3): a sequence is accepted once, if it is above the highest seen or
// within the last kReplayWindow below it and not seen yet. Reordered datagrams therefore survive;
// duplicates and anything older than the window are replays. Header-only, pure.
#pragma once

#include <cstdint>

namespace pcpd::ha {

inline constexpr std::uint64_t kReplayWindow = 64;

class ReplayWindow {
 public:
  // True (and remembered) the first time `seq` is seen; false for a replay. seq 0 is never valid.
  bool accept(std::uint64_t seq) {
    if (seq == 0) return false;
    if (seq > highest_) {
      const std::uint64_t shift = seq - highest_;
      seen_ = shift >= kReplayWindow ? 0 : seen_ << shift;
      seen_ |= 1;
      highest_ = seq;
      return true;
    }
    const std::uint64_t age = highest_ - seq;
    if (age >= kReplayWindow) return false;
    const std::uint64_t bit = std::uint64_t{1} << age;
    if ((seen_ & bit) != 0) return false;
    seen_ |= bit;
    return true;
  }
  [[nodiscard]] std::uint64_t highest() const { return highest_; }
  void reset() { *this = ReplayWindow{}; }

 private:
  std::uint64_t highest_ = 0;
  std::uint64_t seen_ = 0;  // bit i: highest_ - i was seen
};

}  // namespace pcpd::ha
