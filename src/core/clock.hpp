// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Clock: the time source of core (mapping expiry, epoch). The daemon uses
// CLOCK_BOOTTIME (BootClock); tests use FakeClock (tests/fakes). Standard library only.
#pragma once

#include <chrono>
#include <cstdint>

namespace pcpd::core {

// Milliseconds on a monotonic clock that keeps counting across suspend (CLOCK_BOOTTIME), so a
// mapping's expiry and the epoch never jump with wall-clock changes (R-EPOCH-2).
using Millis = std::chrono::duration<std::int64_t, std::milli>;
using Seconds = std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Millis now() const = 0;
};

// CLOCK_BOOTTIME, as the daemon uses it.
class BootClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override;
};

}  // namespace pcpd::core
