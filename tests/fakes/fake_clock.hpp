// SPDX-License-Identifier: GPL-2.0-or-later
// FakeClock: a core::Clock tests set and advance by hand, so mappings expire without sleeping.
#pragma once

#include "core/clock.hpp"

namespace pcpd::test {

class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(core::Millis start = core::Millis(1'000'000)) : now_(start) {}
  [[nodiscard]] core::Millis now() const override { return now_; }
  void set(core::Millis t) { now_ = t; }
  void advance(core::Millis d) { now_ += d; }
  void advance_s(long long seconds) { now_ += core::Millis(seconds * 1000); }

 private:
  core::Millis now_;
};

}  // namespace pcpd::test
