// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/client.hpp"

#include <array>
#include <cerrno>
#include <limits>
#include <string_view>

#include "client/request_builder.hpp"
#include "wire/codec.hpp"
#include "wire/utf8.hpp"

namespace pcpd::client {

std::optional<wire::CapabilitySet> capability_of(const wire::Response& response) {
  if (!response.options.capability) return std::nullopt;
  return wire::CapabilitySet::from_bytes(*response.options.capability);
}

wire::Nonce Client::random_nonce() {
  wire::Nonce n{};
  random_.fill(n);
  return n;
}

Result<Outcome> Client::request(const MappingSpec& spec) {
  const wire::Nonce nonce = spec.nonce ? *spec.nonce : random_nonce();
  const wire::IpAddr client_addr = transport_.local_address();
  const wire::Request req = build_request(spec, nonce, client_addr);
  return exchange(req, internal_address(spec, client_addr));
}

Result<Outcome> Client::announce(bool capability) {
  const wire::IpAddr client_addr = transport_.local_address();
  return exchange(build_announce(client_addr, capability), client_addr);
}

Result<Outcome> Client::exchange(const wire::Request& request, const wire::IpAddr& internal) {
  std::array<std::uint8_t, wire::kMaxMessageSize> buf{};
  const std::size_t len = wire::encode_request(request, buf, config_.codes);
  if (len == 0) return fail(ErrorDomain::Protocol, EMSGSIZE, "request does not fit 1100 bytes");
  const std::span<const std::uint8_t> bytes(buf.data(), len);

  RetransmitTimer timer(config_.retransmit, random_);
  const Millis start = clock_.now();
  const Millis deadline = config_.retransmit.mrd > Millis{0}
                              ? start + config_.retransmit.mrd
                              : Millis{std::numeric_limits<std::int64_t>::max() / 2};
  std::uint32_t transmissions = 0;
  for (;;) {
    if (auto sent = transport_.send(bytes); !sent) return tl::unexpected(sent.error());
    ++transmissions;
    // RFC 6887 §8.1.1: wait RT for an answer, never past MRD.
    Millis wait_end = clock_.now() + timer.next();
    if (wait_end > deadline) wait_end = deadline;
    for (;;) {
      const Millis now = clock_.now();
      if (now >= wait_end) break;
      auto got = transport_.receive(wait_end - now);
      if (!got) return tl::unexpected(got.error());
      if (!*got) continue;  // timed out: the loop head sees wait_end reached
      if (auto out = accept(request, internal, **got, transmissions)) return std::move(*out);
    }
    if (clock_.now() >= deadline) break;
    if (config_.retransmit.mrc != 0 && transmissions >= config_.retransmit.mrc) break;
  }
  return fail(ErrorDomain::Io, ETIMEDOUT, "no response from the PCP server");
}

std::optional<Outcome> Client::accept(const wire::Request& request, const wire::IpAddr& internal,
                                      const Datagram& datagram, std::uint32_t transmissions) {
  auto decoded = wire::decode_response(datagram.bytes, config_.codes);
  // RFC 6887 §8.3: silently ignore what is not a well-formed response.
  auto* response = std::get_if<wire::Response>(&decoded);
  if (!response) return std::nullopt;
  const Millis now = clock_.now();
  if (response->opcode == wire::Opcode::Announce && request.opcode != wire::Opcode::Announce) {
    // RFC 6887 §14.1.3 / R-ANN-4: an unsolicited ANNOUNCE sent to the request port.
    announcements_.push_back(Announcement{response->epoch, now, datagram.source, capability_of(*response)});
    return std::nullopt;
  }
  // RFC 6887 §8.3, §11.4, §12.4: a response for another request (nonce, protocol, port,
  // remote peer) is ignored.
  if (!response_matches(request, *response)) return std::nullopt;
  Outcome out;
  out.response = *response;
  // RFC 7220 §3: an invalid UTF-8 DESCRIPTION is ignored, as the server does;
  // it would also make pcpc --json throw (nlohmann::json::dump, found by fuzz_decode_response).
  if (response->options.description && wire::valid_utf8(*response->options.description))
    out.description = std::string(response->options.description->begin(),
                                  response->options.description->end());
  out.response.options.description.reset();  // do not keep a view into `datagram`
  out.internal_addr = internal;
  out.epoch_valid = epoch_.check(response->epoch, now);  // RFC 6887 §8.5, R-EPOCH-6
  out.received_at = now;
  out.transmissions = transmissions;
  return out;
}

Result<void> Client::poll() {
  for (;;) {
    auto got = transport_.receive(Millis{0});
    if (!got) return tl::unexpected(got.error());
    if (!*got) return {};
    auto decoded = wire::decode_response((*got)->bytes, config_.codes);
    auto* response = std::get_if<wire::Response>(&decoded);
    if (response && response->opcode == wire::Opcode::Announce)
      announcements_.push_back(
          Announcement{response->epoch, clock_.now(), (*got)->source, capability_of(*response)});
  }
}

std::vector<Announcement> Client::take_announcements() {
  std::vector<Announcement> out;
  out.swap(announcements_);
  return out;
}

}  // namespace pcpd::client
