// SPDX-License-Identifier: GPL-2.0-or-later
#include "util/clock.hpp"

#include <time.h>

namespace pcpd::util {

Millis BootClock::now() const {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return Millis{std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000};
}

}  // namespace pcpd::util
