// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core's time source is util::Clock (util/clock.hpp), under core's names.
#pragma once

#include "util/clock.hpp"

namespace pcpd::core {

using util::BootClock;
using util::Clock;
using util::Millis;
using util::Seconds;

}  // namespace pcpd::core
