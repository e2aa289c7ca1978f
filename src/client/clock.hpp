// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client's time source is util::Clock (util/clock.hpp), under the client library's names.
#pragma once

#include "util/clock.hpp"

namespace pcpd::client {

using util::BootClock;
using util::Clock;
using util::Millis;

}  // namespace pcpd::client
