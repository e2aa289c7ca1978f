// SPDX-License-Identifier: GPL-2.0-or-later
// Fakes for the pcp_client unit tests: a clock that only moves when told (or when the fake
// transport "waits"), a scripted Random, and a Transport whose server is a test function.
// Nothing sleeps: FakeTransport::receive advances the FakeClock instead.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "client/pcp_client.hpp"
#include "wire/codec.hpp"

namespace pcpd::client::test {

class FakeClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override { return now_; }
  void set(Millis t) { now_ = t; }
  void advance(Millis d) { now_ += d; }

 private:
  Millis now_{1'000'000};
};

// uniform() returns lo + fraction * (hi - lo), fraction taken from a list in turn (default 0.5:
// the midpoint); fill() writes counter bytes so every nonce differs.
class FakeRandom final : public Random {
 public:
  std::vector<double> fractions{0.5};
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(++counter_);
  }
  [[nodiscard]] double uniform(double lo, double hi) override {
    const double f = fractions[next_++ % fractions.size()];
    return lo + f * (hi - lo);
  }

 private:
  unsigned counter_ = 0;
  std::size_t next_ = 0;
};

// A response the fake server sends: the bytes and how long after the request it arrives.
struct Scheduled {
  std::vector<std::uint8_t> bytes;
  Millis delay{0};
};

class FakeTransport final : public Transport {
 public:
  // Called for every request sent; returns the datagrams the "server" answers with.
  using Server = std::function<std::vector<Scheduled>(const wire::Request&, std::size_t index)>;

  FakeTransport(FakeClock& clock, wire::IpAddr local, wire::IpAddr server)
      : clock_(clock), local_(local), server_(server) {}

  Server server_fn;
  struct Sent {
    std::vector<std::uint8_t> bytes;
    Millis at;
    [[nodiscard]] wire::Request decode() const {
      auto d = wire::decode_request(bytes);
      return std::get<wire::Request>(d);  // views `bytes`
    }
  };
  std::deque<Sent> sent;  // deque: stable addresses for the views of decode()

  [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override {
    sent.push_back(Sent{{datagram.begin(), datagram.end()}, clock_.now()});
    if (server_fn) {
      const auto& s = sent.back();
      for (auto& r : server_fn(s.decode(), sent.size() - 1))
        inject(std::move(r.bytes), clock_.now() + r.delay);
    }
    return {};
  }

  // A datagram from the server arriving at `at` (e.g. an unsolicited ANNOUNCE).
  void inject(std::vector<std::uint8_t> bytes, Millis at) {
    auto pos = queue_.begin();
    while (pos != queue_.end() && pos->at <= at) ++pos;
    queue_.insert(pos, Queued{std::move(bytes), at});
  }

  [[nodiscard]] Result<std::optional<Datagram>> receive(Millis timeout) override {
    const Millis limit = clock_.now() + timeout;
    if (!queue_.empty() && queue_.front().at <= limit) {
      if (queue_.front().at > clock_.now()) clock_.set(queue_.front().at);
      Datagram d{std::move(queue_.front().bytes), server_, wire::kServerPort};
      queue_.pop_front();
      return std::optional<Datagram>{std::move(d)};
    }
    clock_.set(limit);
    return std::optional<Datagram>{};
  }

  [[nodiscard]] wire::IpAddr local_address() const override { return local_; }
  [[nodiscard]] std::uint16_t local_port() const override { return 40000; }
  [[nodiscard]] wire::IpAddr server_address() const override { return server_; }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }

 private:
  struct Queued {
    std::vector<std::uint8_t> bytes;
    Millis at;
  };
  FakeClock& clock_;
  wire::IpAddr local_, server_;
  std::deque<Queued> queue_;
};

inline wire::IpAddr ip(const char* text) { return *wire::IpAddr::parse(text); }

// The success response a server would send to `req`: body copied, external endpoint assigned.
inline wire::Response answer(const wire::Request& req, std::uint32_t lifetime, std::uint32_t epoch,
                             wire::ResultCode result = wire::ResultCode::Success,
                             wire::IpAddr ext = ip("203.0.113.1"), std::uint16_t ext_port = 0) {
  wire::Response r;
  r.opcode = req.opcode;
  r.result = result;
  r.lifetime = lifetime;
  r.epoch = epoch;
  r.body = req.body;
  if (auto* m = std::get_if<wire::MapBody>(&r.body)) {
    m->external_addr = ext;
    m->external_port = ext_port ? ext_port : m->internal_port;
  } else if (auto* p = std::get_if<wire::PeerBody>(&r.body)) {
    p->external_addr = ext;
    p->external_port = ext_port ? ext_port : p->internal_port;
  }
  return r;
}

inline std::vector<std::uint8_t> encode(const wire::Response& r) {
  std::vector<std::uint8_t> buf(wire::kMaxMessageSize);
  buf.resize(wire::encode_response(r, buf));
  return buf;
}

inline std::vector<std::uint8_t> announce_bytes(std::uint32_t epoch) {
  wire::Response r;
  r.opcode = wire::Opcode::Announce;
  r.epoch = epoch;
  return encode(r);
}

}  // namespace pcpd::client::test
