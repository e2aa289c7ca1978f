// SPDX-License-Identifier: GPL-2.0-or-later
// daemon::HaPeer over an in-memory link and a fake clock: the primary holds the response to an
// honoured CHECKPOINT_REQUIRED until the standby's ack (RFC 7767 §3), serves it without the
// option when the ack does not come in time or the peer goes down (§3.2), and the standby
// installs what it receives before it acks. Two routers, each with its own core::Server over a
// FakeDatapath, no socket and no sleeping.
#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <deque>

#include "pcpd/ha_peer.hpp"
#include "unit/core_fixture.hpp"
#include "wire/codec.hpp"

namespace pcpd::test {
namespace {

using Queue = std::deque<std::vector<std::uint8_t>>;

// One direction of the sync network: what one side sent and the other has not read yet.
class MemSocket final : public daemon::LinkSocket {
 public:
  MemSocket(Queue& out, Queue& in, IpAddr from, bool& cut) : out_(out), in_(in), from_(from), cut_(cut) {}
  [[nodiscard]] int fd() const override { return -1; }
  bool send(std::span<const std::uint8_t> d) override {
    if (!cut_) out_.emplace_back(d.begin(), d.end());
    return true;
  }
  std::optional<Received> receive(std::span<std::uint8_t> buf) override {
    if (in_.empty()) {
      errno = EAGAIN;
      return std::nullopt;
    }
    const auto d = std::move(in_.front());
    in_.pop_front();
    REQUIRE(d.size() <= buf.size());
    std::copy(d.begin(), d.end(), buf.begin());
    return Received{d.size(), from_, 5352};
  }

 private:
  Queue& out_;
  Queue& in_;
  IpAddr from_;
  bool& cut_;  // the sender's cable pulled: what it sends is lost
};

struct Router {
  Router(const IpAddr& peer, Queue& out, Queue& in, const FakeClock& clock, std::uint32_t ack_timeout_ms)
      : tap(kernel), server(default_policy(), tap, clock) {
    config::Config::Ha cfg;
    cfg.enabled = true;
    cfg.peer = peer;
    cfg.ack_timeout_ms = ack_timeout_ms;
    std::vector<std::uint8_t> bytes(32, 0x5a);
    auto key = ha::LinkKey::from_bytes(bytes);
    REQUIRE(key);
    std::string error;
    link = daemon::HaPeer::with_socket(cfg, std::move(*key), std::make_unique<MemSocket>(out, in, peer, cut), server,
                                       kernel, tap, clock, nullptr, error);
    REQUIRE_MESSAGE(link, error);
  }
  FakeDatapath kernel;
  daemon::ChangeTap tap;
  core::Server server;
  bool cut = false;
  std::unique_ptr<daemon::HaPeer> link;
};

struct Pair {
  explicit Pair(std::uint32_t ack_timeout_ms = 200)
      : a(ip("198.51.100.2"), to_b, to_a, clock, ack_timeout_ms), b(ip("198.51.100.1"), to_a, to_b, clock, ack_timeout_ms) {
    (void)a.link->set_role(ha::Role::Primary);
    (void)b.link->set_role(ha::Role::Backup);
    settle(3000);
    REQUIRE(a.link->readiness().ready);
    REQUIRE(b.link->readiness().ready);  // holds the primary's (empty) set
  }
  // Delivers what is in flight, in both directions, until nothing moves.
  void deliver() {
    for (int i = 0; i < 50 && (!to_a.empty() || !to_b.empty()); ++i) {
      b.link->on_readable();
      a.link->on_readable();
    }
  }
  // `ms` of time in 100 ms steps, the timers run, traffic delivered.
  void settle(int ms) {
    for (int t = 0; t < ms; t += 100) {
      clock.advance(core::Millis(100));
      a.link->on_timer();
      b.link->on_timer();
      deliver();
    }
  }
  // A MAP with CHECKPOINT_REQUIRED through the primary as the daemon runs it; the reply, if any
  // was sent yet, lands in `sent`.
  // The request's datagram and reply buffer are overwritten right after, as the daemon's next
  // receive overwrites its batch buffers.
  bool request(std::vector<std::uint8_t>& sent, bool& was_sent, std::optional<std::string_view> description = {}) {
    std::array<std::uint8_t, 1100>& req = rx;
    std::array<std::uint8_t, 1100>& out = tx;
    wire::Request r = with_ckpt(map_req({}));
    r.options.description = description;
    const std::size_t n = wire::encode_request(r, req);
    REQUIRE(n > 0);
    core::BurstItem it;
    it.datagram = std::span(req.data(), n);
    it.ctx = ctx(ip("192.0.2.10"));
    it.ctx.checkpoint_available = a.link->checkpoint_available();
    it.out = out;
    a.server.handle_burst(std::span(&it, 1));
    REQUIRE(it.reply > 0);
    const bool held = a.link->after_request(it, [&](std::span<const std::uint8_t> bytes) {
      sent.assign(bytes.begin(), bytes.end());
      was_sent = true;
    });
    rx.fill(0xee);
    tx.fill(0xee);
    return held;
  }
  std::array<std::uint8_t, 1100> rx{}, tx{};
  static bool echoed(const std::vector<std::uint8_t>& bytes) {
    auto d = wire::decode_response(bytes);
    REQUIRE(std::holds_alternative<wire::Response>(d));
    const auto& r = std::get<wire::Response>(d);
    REQUIRE(r.result == wire::ResultCode::Success);
    return r.options.checkpoint_required;
  }
  std::optional<Mapping> mapping(const core::Server& s) const {
    return s.find(core::MappingKind::Map, ip("192.0.2.10"), kTcp, 8080, IpAddr{}, 0);
  }

  FakeClock clock;
  Queue to_a, to_b;
  Router a, b;
};

}  // namespace

TEST_CASE("HaPeer: the response to an honoured election waits for the standby's ack, then goes out with the option") {
  Pair p;
  std::vector<std::uint8_t> sent;
  bool was_sent = false;
  CHECK(p.request(sent, was_sent));  // held
  CHECK_FALSE(was_sent);
  CHECK(p.a.link->counters().waits == 1);
  p.deliver();  // the change to the standby, its ack back
  REQUIRE(was_sent);
  CHECK(Pair::echoed(sent));  // RFC 7767 §3: honoured
  CHECK(p.a.link->counters().acked == 1);
  // The standby installed it in its kernel, then in its table, elected.
  const auto copy = p.mapping(p.b.server);
  REQUIRE(copy);
  CHECK(copy->checkpoint);
  CHECK(p.b.kernel.calls() >= 1);
}

TEST_CASE("HaPeer: no ack within ack_timeout: served without the option, the election withdrawn and deferred") {
  Pair p;
  p.b.cut = true;  // the standby's acks are lost
  std::vector<std::uint8_t> sent;
  bool was_sent = false;
  REQUIRE(p.request(sent, was_sent));
  p.deliver();
  CHECK_FALSE(was_sent);
  p.clock.advance(core::Millis(150));
  p.a.link->on_timer();
  CHECK_FALSE(was_sent);  // 150 ms < 200 ms
  p.clock.advance(core::Millis(60));
  p.a.link->on_timer();
  REQUIRE(was_sent);
  CHECK_FALSE(Pair::echoed(sent));  // RFC 7767 §3.2: not honoured
  CHECK(p.a.link->counters().timeouts == 1);
  const auto m = p.mapping(p.a.server);
  REQUIRE(m);
  CHECK_FALSE(m->checkpoint);
  CHECK(m->checkpoint_deferred);  // elected again once the peer answers (Server::reelect_deferred)
}

TEST_CASE("HaPeer: the peer goes silent: held responses go out as peer_lost; elections wait and come back with it") {
  Pair p(10'000);  // an ack bound longer than the peer timeout (3 s): the peer-down path releases
  p.b.cut = true;
  std::vector<std::uint8_t> sent;
  bool was_sent = false;
  REQUIRE(p.request(sent, was_sent));
  for (int i = 0; i < 40 && !was_sent; ++i) {
    p.clock.advance(core::Millis(100));
    p.a.link->on_timer();
    p.to_b.clear();  // the standby hears nothing either
  }
  REQUIRE(was_sent);
  CHECK_FALSE(Pair::echoed(sent));
  CHECK(p.a.link->counters().peer_lost == 1);
  CHECK(p.a.link->counters().timeouts == 0);
  // While the peer is down a request is not held (nothing could ack it): the caller answers at
  // once, without the option, and the wish is kept (checkpoint_deferred).
  std::vector<std::uint8_t> second;
  bool second_sent = false;
  CHECK_FALSE(p.request(second, second_sent));
  auto m = p.mapping(p.a.server);
  REQUIRE(m);
  CHECK_FALSE(m->checkpoint);
  CHECK(m->checkpoint_deferred);
  // The standby is back: the deferred election is made and reaches it.
  p.b.cut = false;
  p.settle(4000);
  m = p.mapping(p.a.server);
  REQUIRE(m);
  CHECK(m->checkpoint);
  const auto copy = p.mapping(p.b.server);
  REQUIRE(copy);
  CHECK(copy->checkpoint);
}

TEST_CASE("HaPeer: a held response keeps its DESCRIPTION after the request's buffer is reused") {
  Pair p;
  std::vector<std::uint8_t> sent;
  bool was_sent = false;
  REQUIRE(p.request(sent, was_sent, std::string_view("printer")));  // held; buffers overwritten
  p.deliver();
  REQUIRE(was_sent);
  auto d = wire::decode_response(sent);
  REQUIRE(std::holds_alternative<wire::Response>(d));
  const auto& r = std::get<wire::Response>(d);
  CHECK(r.options.checkpoint_required);
  REQUIRE(r.options.description);
  CHECK(*r.options.description == "printer");
}

}  // namespace pcpd::test
