// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::Clock: the time source of the client library (retransmission, epoch check,
// renewals). Real programs use BootClock; tests drive a fake one. Standard library only.
#pragma once

#include <chrono>
#include <cstdint>

namespace pcpd::client {

using Millis = std::chrono::duration<std::int64_t, std::milli>;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Millis now() const = 0;
};

// CLOCK_BOOTTIME: keeps counting across suspend, as the server's epoch does (R-EPOCH-2), so a
// suspended client does not see a false epoch anomaly (RFC 6887 §8.5).
class BootClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override;
};

}  // namespace pcpd::client
