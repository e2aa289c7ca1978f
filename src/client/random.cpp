// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pcpd::client {

void SystemRandom::fill(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // getrandom cannot fail on Linux >= 3.17 once the pool is initialised; a nonce must never
      // be predictable, so refuse to go on rather than fall back to something weaker.
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

double SystemRandom::uniform(double lo, double hi) {
  std::uint8_t b[8];
  fill(b);
  std::uint64_t v = 0;
  for (auto x : b) v = (v << 8) | x;
  // 53 random bits -> [0, 1].
  double unit = static_cast<double>(v >> 11) / static_cast<double>((std::uint64_t{1} << 53) - 1);
  return lo + (hi - lo) * unit;
}

}  // namespace pcpd::client
