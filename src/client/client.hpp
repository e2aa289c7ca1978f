// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::Client: sends one PCP request (MAP, PEER, ANNOUNCE) to one server and waits for
// the response that answers it, retransmitting per RFC 6887 §8.1.1, checking the epoch per §8.5.
// Owns the epoch state of its server. Talks only through Transport, Clock and Random.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/clock.hpp"
#include "client/epoch_validator.hpp"
#include "client/mapping_spec.hpp"
#include "client/random.hpp"
#include "client/retransmit_timer.hpp"
#include "client/transport.hpp"
#include "util/result.hpp"
#include "wire/capability.hpp"
#include "wire/messages.hpp"

namespace pcpd::client {

struct ClientConfig {
  RetransmitParams retransmit{};
  wire::OptionCodes codes{};
};

// A decoded response that answers a request. Owns everything it refers to.
struct Outcome {
  wire::Response response{};              // response.options.description is always empty:
  std::optional<std::string> description; // the DESCRIPTION that came back lives here
  wire::IpAddr internal_addr{};           // the mapping's internal address (client or THIRD_PARTY)
  bool epoch_valid = true;                // R-EPOCH-6 for this response
  Millis received_at{};
  std::uint32_t transmissions = 0;        // how many copies of the request were sent

  [[nodiscard]] bool success() const { return response.result == wire::ResultCode::Success; }
};

// An unsolicited ANNOUNCE (RFC 6887 §14.1.3) that reached the request socket (unicast, R-ANN-4)
// or the 5350 listener. The epoch is checked by whoever handles it (Session).
struct Announcement {
  std::uint32_t epoch = 0;
  Millis received_at{};
  wire::IpAddr source{};  // the server that sent it
  // hops-00: the CAPABILITY set it carried; it replaces that server's set (R-CAP-2).
  std::optional<wire::CapabilitySet> capability{};
};

// hops-00 CAPABILITY of a response (R-CAP-1), nullopt if it carried none.
[[nodiscard]] std::optional<wire::CapabilitySet> capability_of(const wire::Response& response);

class Client {
 public:
  Client(Transport& transport, const Clock& clock, Random& random, ClientConfig config = {})
      : transport_(transport), clock_(clock), random_(random), config_(config) {}

  // Sends the MAP or PEER request for `spec` (a fresh random nonce when spec.nonce is empty) and
  // returns the matching response. Error: ErrorDomain::Io, ETIMEDOUT when retransmission gave up
  // (MRC/MRD, RFC 6887 §8.1.1); other errno values for socket errors; EMSGSIZE if it cannot be
  // encoded.
  [[nodiscard]] Result<Outcome> request(const MappingSpec& spec);
  // request() with the opcode forced to MAP (RFC 6887 §11) or PEER (§12).
  [[nodiscard]] Result<Outcome> map(MappingSpec spec) {
    spec.opcode = wire::Opcode::Map;
    return request(spec);
  }
  [[nodiscard]] Result<Outcome> peer(MappingSpec spec) {
    spec.opcode = wire::Opcode::Peer;
    return request(spec);
  }
  // ANNOUNCE request (RFC 6887 §14.1.1), optionally asking for CAPABILITY.
  [[nodiscard]] Result<Outcome> announce(bool capability = false);

  // 96 random bits (R-MAP-1). A new one per request and per server (R-OWN-4).
  [[nodiscard]] wire::Nonce random_nonce();

  // Reads what is queued on the transport without waiting: unsolicited ANNOUNCEs are kept for
  // take_announcements(), anything else is ignored (late duplicates, RFC 6887 §8.3).
  [[nodiscard]] Result<void> poll();
  [[nodiscard]] std::vector<Announcement> take_announcements();
  // RFC 6887 §8.5 for an epoch that arrived at `at` outside request() (unsolicited ANNOUNCE).
  [[nodiscard]] bool check_epoch(std::uint32_t epoch, Millis at) { return epoch_.check(epoch, at); }

  [[nodiscard]] const Transport& transport() const { return transport_; }
  [[nodiscard]] const Clock& clock() const { return clock_; }
  [[nodiscard]] const ClientConfig& config() const { return config_; }

 private:
  [[nodiscard]] Result<Outcome> exchange(const wire::Request& request, const wire::IpAddr& internal);
  // Decodes `datagram`; returns the outcome if it answers `request`, else nullopt (and keeps an
  // unsolicited ANNOUNCE).
  std::optional<Outcome> accept(const wire::Request& request, const wire::IpAddr& internal,
                                const Datagram& datagram, std::uint32_t transmissions);

  Transport& transport_;
  const Clock& clock_;
  Random& random_;
  ClientConfig config_;
  EpochValidator epoch_;
  std::vector<Announcement> announcements_;
};

}  // namespace pcpd::client
