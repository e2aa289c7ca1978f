// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::EpochValidator: the client side of the epoch check (RFC 6887 §8.5, R-EPOCH-6),
// one per server. Pure: the caller passes the local time.
#pragma once

#include <cstdint>
#include <optional>

#include "client/clock.hpp"

namespace pcpd::client {

// RFC 6887 §8.5 in integer arithmetic. `client_delta_s`: whole seconds of local time since the
// previous response; the epochs are the previous and the current Epoch Time. A decrease is
// invalid (R-EPOCH-6).
[[nodiscard]] bool epoch_valid(std::uint32_t previous_epoch, std::uint32_t epoch,
                               std::int64_t client_delta_s);

class EpochValidator {
 public:
  // Checks `epoch` received at `now` against the previous response and then records it (the
  // previous values are replaced whether or not the check passed). The first one is valid.
  [[nodiscard]] bool check(std::uint32_t epoch, Millis now);
  void reset() { previous_.reset(); }
  [[nodiscard]] std::optional<std::uint32_t> previous_epoch() const {
    return previous_ ? std::optional<std::uint32_t>(previous_->epoch) : std::nullopt;
  }

 private:
  struct Sample {
    std::uint32_t epoch;
    Millis at;
  };
  std::optional<Sample> previous_;
};

}  // namespace pcpd::client
