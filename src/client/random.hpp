// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::Random: nonces (96 random bits, RFC 6887 §11.1) and the RAND factor of the
// retransmission timer (§8.1.1). SystemRandom reads getrandom(2); tests use a scripted one.
#pragma once

#include <cstdint>
#include <span>

namespace pcpd::client {

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;
  // Uniform in [lo, hi].
  [[nodiscard]] virtual double uniform(double lo, double hi) = 0;
};

class SystemRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
  [[nodiscard]] double uniform(double lo, double hi) override;
};

}  // namespace pcpd::client
