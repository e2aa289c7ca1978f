// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/epoch_validator.hpp"

namespace pcpd::client {

bool epoch_valid(std::uint32_t previous_epoch, std::uint32_t epoch, std::int64_t client_delta_s) {
  // R-EPOCH-6: an Epoch Time lower than the previous one means the server lost its state.
  if (epoch < previous_epoch) return false;
  const std::int64_t server_delta = std::int64_t{epoch} - std::int64_t{previous_epoch};
  const std::int64_t client_delta = client_delta_s < 0 ? 0 : client_delta_s;
  // RFC 6887 §8.5: invalid if client_delta + 2 < server_delta - server_delta/16, or
  // server_delta + 2 < client_delta - client_delta/16 (integer division).
  if (client_delta + 2 < server_delta - server_delta / 16) return false;
  if (server_delta + 2 < client_delta - client_delta / 16) return false;
  return true;
}

bool EpochValidator::check(std::uint32_t epoch, Millis now) {
  bool valid = true;  // RFC 6887 §8.5: the first response from a server is always valid.
  if (previous_) {
    const std::int64_t client_delta_s = (now - previous_->at).count() / 1000;
    valid = epoch_valid(previous_->epoch, epoch, client_delta_s);
  }
  previous_ = Sample{epoch, now};
  return valid;
}

}  // namespace pcpd::client
