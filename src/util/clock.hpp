// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::util::Clock: the one time source of the server core (mapping expiry, epoch) and of the
// client library (retransmission, epoch check, renewals). Programs use BootClock; tests drive a
// fake one (tests/fakes). Standard library only.
#pragma once

#include <chrono>
#include <cstdint>

namespace pcpd::util {

// Milliseconds on a monotonic clock that keeps counting across suspend (CLOCK_BOOTTIME): a
// mapping's expiry and the epoch never jump with wall-clock changes (R-EPOCH-2), and a suspended
// client does not see a false epoch anomaly (RFC 6887 §8.5).
using Millis = std::chrono::duration<std::int64_t, std::milli>;
using Seconds = std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Millis now() const = 0;
};

// CLOCK_BOOTTIME.
class BootClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override;
};

}  // namespace pcpd::util
