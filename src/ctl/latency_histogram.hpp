// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ctl LatencyHistogram: request handling time in fixed buckets (Prometheus histogram
// shape: cumulative counts per upper bound, a sum and a count). Fixed size, no allocation on
// record(): it sits on the packet path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pcpd::ctl {

class LatencyHistogram {
 public:
  // Upper bounds in microseconds; a last, implicit bucket is +Inf.
  static constexpr std::array<std::uint32_t, 12> kBoundsUs{25,   50,    100,   250,   500,    1000,
                                                           2500, 5000, 10000, 25000, 100000, 1000000};

  void record(std::uint64_t micros) {
    std::size_t i = 0;
    while (i < kBoundsUs.size() && micros > kBoundsUs[i]) ++i;
    ++counts_[i];
    sum_us_ += micros;
    ++count_;
  }
  // Observations at or below kBoundsUs[i] (i == kBoundsUs.size(): all of them).
  [[nodiscard]] std::uint64_t cumulative(std::size_t i) const {
    std::uint64_t n = 0;
    for (std::size_t j = 0; j <= i && j < counts_.size(); ++j) n += counts_[j];
    return n;
  }
  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t sum_us() const { return sum_us_; }

 private:
  std::array<std::uint64_t, kBoundsUs.size() + 1> counts_{};
  std::uint64_t sum_us_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace pcpd::ctl
