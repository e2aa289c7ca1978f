// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/clock.hpp"

#include <time.h>

namespace pcpd::core {

Millis BootClock::now() const {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return Millis(static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000);
}

}  // namespace pcpd::core
