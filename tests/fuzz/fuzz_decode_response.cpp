// SPDX-License-Identifier: GPL-2.0-or-later
// fuzz_decode_response: what a PCP client does with a datagram from the server. The input is one
// datagram, given to wire::decode_response, to the ANNOUNCE checks of the 5350 listener
// (client::decode_announce) and, through a scripted transport, as the answer to a MAP, a PEER and
// an ANNOUNCE request of client::Client (response matching, epoch check, RFC 6887 §8.3, §8.5);
// an accepted Outcome is printed as pcpc does (human line and JSON, docs/interfaces.md).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "client/announce_listener.hpp"
#include "client/client.hpp"
#include "fuzz/fuzz_check.hpp"
#include "pcpc/output.hpp"
#include "wire/codec.hpp"

namespace wire = pcpd::wire;
namespace client = pcpd::client;
using client::Millis;

namespace {

class ManualClock final : public client::Clock {
 public:
  [[nodiscard]] Millis now() const override { return now_; }
  void advance(Millis d) { now_ += d; }

 private:
  Millis now_{5'000'000};
};

class FixedRandom final : public client::Random {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = 0x5a;
  }
  double uniform(double lo, double /*hi*/) override { return lo; }
};

// Answers the first request with the fuzz input, then nothing (time passes instead).
class ScriptedTransport final : public client::Transport {
 public:
  ScriptedTransport(ManualClock& clock, std::span<const std::uint8_t> reply)
      : clock_(clock), reply_(reply) {}
  pcpd::Result<void> send(std::span<const std::uint8_t> datagram) override {
    FUZZ_CHECK(!datagram.empty() && datagram.size() <= wire::kMaxMessageSize);
    ++sent_;
    return {};
  }
  pcpd::Result<std::optional<client::Datagram>> receive(Millis timeout) override {
    if (!delivered_ && sent_ > 0) {
      delivered_ = true;
      return client::Datagram{std::vector<std::uint8_t>(reply_.begin(), reply_.end()), server_,
                              wire::kServerPort};
    }
    clock_.advance(timeout);
    return std::optional<client::Datagram>{};
  }
  [[nodiscard]] wire::IpAddr local_address() const override { return local_; }
  [[nodiscard]] std::uint16_t local_port() const override { return 40000; }
  [[nodiscard]] wire::IpAddr server_address() const override { return server_; }
  void rearm() { delivered_ = false; }

 private:
  ManualClock& clock_;
  std::span<const std::uint8_t> reply_;
  bool delivered_ = false;
  int sent_ = 0;
  wire::IpAddr local_ = wire::IpAddr::from_v4(0xc0000202);   // 192.0.2.2, as in tests/vectors
  wire::IpAddr server_ = wire::IpAddr::from_v4(0xc0000201);  // 192.0.2.1
};

// The specs of tests/vectors/pcp_requests.hex "map" and "peer", so a response seed can match.
client::MappingSpec map_spec() {
  client::MappingSpec s;
  s.opcode = wire::Opcode::Map;
  s.protocol = 6;
  s.internal_port = 8080;
  s.suggested_external_port = 8080;
  s.lifetime = 7200;
  s.nonce = wire::Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  s.description = "fuzz";
  return s;
}

client::MappingSpec peer_spec() {
  client::MappingSpec s;
  s.opcode = wire::Opcode::Peer;
  s.protocol = 17;
  s.internal_port = 5001;
  s.lifetime = 3600;
  s.nonce = wire::Nonce{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac};
  s.remote_addr = wire::IpAddr::from_v4(0xc6336407);  // 198.51.100.7
  s.remote_port = 80;
  return s;
}

void print_outcome(const client::Outcome& o) {
  FUZZ_CHECK(!o.response.options.description.has_value());  // no view into the datagram kept
  const std::string line = pcpd::pcpc::human_line(o);
  FUZZ_CHECK(!line.empty());
  const std::string json = pcpd::pcpc::response_json(o).dump();
  FUZZ_CHECK(!json.empty());
  client::SessionEvent ev{};
  ev.kind = client::SessionEvent::Kind::Created;
  ev.outcome = o;
  (void)pcpd::pcpc::json_event(ev).dump();
  (void)pcpd::pcpc::human_event(ev);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  const wire::OptionCodes codes{};

  const auto decoded = wire::decode_response(in, codes);
  if (const auto* r = std::get_if<wire::Response>(&decoded)) {
    // RFC 6887 §8.3: only 24..1100 bytes, a multiple of 4, with the R bit, reach a Response.
    FUZZ_CHECK(size >= wire::kHeaderSize && size <= wire::kMaxMessageSize && size % 4 == 0);
    FUZZ_CHECK((data[1] & 0x80) != 0);
    FUZZ_CHECK(r->options.filter_count <= wire::kMaxFilters);
    if (const auto& d = r->options.description) {
      const auto* begin = reinterpret_cast<const std::uint8_t*>(d->data());
      FUZZ_CHECK(d->empty() || (begin >= data && begin + d->size() <= data + size));
    }
    if (auto cap = client::capability_of(*r)) (void)pcpd::pcpc::capability_line(wire::IpAddr{}, *cap);
  }

  // The 5350 listener (RFC 6887 §14.1.3, R-SEC-5): from the server and from anyone.
  const wire::IpAddr server = wire::IpAddr::from_v4(0xc0000201);
  const auto from_server = client::decode_announce(in, server, server, Millis{1000}, codes);
  const auto from_any = client::decode_announce(in, server, std::nullopt, Millis{1000}, codes);
  FUZZ_CHECK(from_server.has_value() == from_any.has_value());
  const auto epoch = client::accept_announce(in, server, server, codes);
  FUZZ_CHECK(epoch.has_value() == from_server.has_value());
  if (from_any) {
    FUZZ_CHECK(std::holds_alternative<wire::Response>(decoded));
    (void)pcpd::pcpc::announce_line(*from_any, true);
    (void)pcpd::pcpc::announce_json(*from_any, false).dump();
  }

  // The client library: the input answers a MAP, a PEER and an ANNOUNCE request in turn.
  ManualClock clock;
  FixedRandom random;
  ScriptedTransport transport(clock, in);
  client::ClientConfig config;
  config.retransmit.mrc = 1;
  client::Client c(transport, clock, random, config);
  for (int i = 0; i < 3; ++i) {
    transport.rearm();
    auto got = i == 0 ? c.request(map_spec()) : i == 1 ? c.request(peer_spec()) : c.announce(true);
    if (got) {
      FUZZ_CHECK(std::holds_alternative<wire::Response>(decoded));
      FUZZ_CHECK(got->transmissions == 1);
      print_outcome(*got);
    }
  }
  (void)c.take_announcements();
  return 0;
}
