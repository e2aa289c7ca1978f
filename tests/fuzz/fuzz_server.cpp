// SPDX-License-Identifier: GPL-2.0-or-later
// fuzz_server: the whole request handler. A fresh core::Server over FakeDatapath and FakeClock
// per input; the input is a policy byte, then records, each one datagram:
//   ctl(1) advance(1) length(2, big endian) datagram(length, or what is left)
//   ctl 0x80: NAT-PMP (handle_natpmp), else PCP (handle_datagram)
//       0x40: call expire() after the datagram      0x20: advance is in minutes, not seconds
//       0x10: the datapath refuses the next apply()  0x08: source = a fixed address (low bits),
//             else the datagram's PCP client address (bytes 8..23), so ADDRESS_MISMATCH passes
// After every record the invariants are checked: reply length (PCP <= 1100, a multiple of 4;
// NAT-PMP 8, 12 or 16) and a success reply decodes; mapping count within the quotas; no two
// internal endpoints share an external endpoint and one internal endpoint has one external
// endpoint (EIM, R-MAP-12); FakeDatapath's installed set (the accepted ChangeSets replayed) equals
// Server::mappings(); next_expiry() is the earliest expiry; the epoch never goes back. The records
// then run again as bursts (run_bursts, Server::handle_burst).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <tuple>
#include <variant>
#include <vector>

#include "core/server.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/fake_datapath.hpp"
#include "fuzz/fuzz_check.hpp"
#include "wire/codec.hpp"
#include "wire/natpmp.hpp"

namespace core = pcpd::core;
namespace wire = pcpd::wire;
using core::Millis;
using wire::IpAddr;

namespace {

constexpr std::uint32_t kPerClient = 4;
constexpr std::uint32_t kTotal = 12;

IpAddr v6(std::uint8_t last) {
  IpAddr a;
  a.bytes[0] = 0x20;
  a.bytes[1] = 0x01;
  a.bytes[2] = 0x0d;
  a.bytes[3] = 0xb8;
  a.bytes[15] = last;
  return a;
}

const std::array<IpAddr, 8> kSources{
    IpAddr::from_v4(0xc0000202), IpAddr::from_v4(0xc0000209), IpAddr::from_v4(0xc000020a),
    IpAddr::from_v4(0xc6336407), v6(2),  v6(7), v6(0x10), IpAddr::from_v4(0xcb007101)};

core::Policy make_policy(std::uint8_t flags) {
  core::Policy p;
  if ((flags & 0x10) == 0) p.external_v4 = {IpAddr::from_v4(0xcb007101), IpAddr::from_v4(0xcb007102)};
  p.max_mappings_per_client = kPerClient;
  p.max_mappings = kTotal;
  p.max_filters_per_mapping = 3;
  p.denied_internal_ports = {22};
  p.description_max = 16;
  p.checkpoint.max_total = 5;
  p.checkpoint.max_per_client = 2;
  p.checkpoint.rate_per_client = 1.0;
  p.checkpoint.burst_per_client = 2.0;
  if (flags & 0x01) {
    p.third_party = true;
    p.third_party_allow = {wire::Prefix{IpAddr::from_v4(0xc0000200), 120}, wire::Prefix{v6(0), 32}};
  }
  p.allow_all_ports = (flags & 0x02) != 0;
  if (flags & 0x04) {
    wire::CapabilitySet caps;
    caps.set(1);    // NAT44
    caps.set(32);   // IPv6 firewall
    caps.set(119);  // TCP (UDP's bit 120 clear: UDP is refused with UNSUPP_PROTOCOL)
    p.capabilities = caps;
    p.capability_always = (flags & 0x08) != 0;
  }
  p.natpmp = (flags & 0x20) == 0;
  if (flags & 0x40) p.checkpoint.enabled = false;
  if (flags & 0x80) {  // a tiny pool: port exhaustion and CANNOT_PROVIDE_EXTERNAL
    p.port_min = 40000;
    p.port_max = 40003;
  }
  return p;
}

using Key = std::tuple<core::MappingKind, std::uint8_t, IpAddr, std::uint16_t, IpAddr, std::uint16_t>;

Key key_of(const core::Mapping& m) {
  return {m.kind, m.protocol, m.internal_addr, m.internal_port,
          m.kind == core::MappingKind::Peer ? m.remote_addr : IpAddr{},
          m.kind == core::MappingKind::Peer ? m.remote_port : std::uint16_t{0}};
}

// `a` as the datapath has it, `b` as the server has it, at `now`. The expiry may differ in one
// case: when removing an expired mapping failed, the server keeps it and retries a second later
// (server.cpp expire()); the kernel element has expired by its own timeout meanwhile.
bool same_state(const core::Mapping& a, const core::Mapping& b, Millis now) {
  const bool expiry_ok =
      a.expires == b.expires || (a.expires <= now && b.expires <= now + Millis(1000));
  const bool same = a.external_addr == b.external_addr && a.external_port == b.external_port &&
                    expiry_ok && a.lifetime == b.lifetime && a.filters == b.filters &&
                    a.description == b.description && a.checkpoint == b.checkpoint &&
                    a.nonce == b.nonce && a.origin == b.origin && a.third_party == b.third_party;
  if (!same) {
    auto show = [](const char* what, const core::Mapping& m) {
      std::fprintf(stderr,
                   "%s: kind %d proto %u %s:%u -> %s:%u expires %lld lifetime %u filters %zu "
                   "description '%s' checkpoint %d origin %d third_party %d nonce[0] %u\n",
                   what, static_cast<int>(m.kind), m.protocol, m.internal_addr.to_string().c_str(),
                   m.internal_port, m.external_addr.to_string().c_str(), m.external_port,
                   static_cast<long long>(m.expires.count()), m.lifetime, m.filters.size(),
                   m.description.c_str(), m.checkpoint, static_cast<int>(m.origin), m.third_party,
                   m.nonce[0]);
    };
    show("datapath", a);
    show("server  ", b);
  }
  return same;
}

// The kernel's view: the accepted ChangeSets, replayed in order.
class Installed {
 public:
  void replay(const pcpd::test::FakeDatapath& dp, Millis now) {
    const auto& acc = dp.accepted();
    for (; seen_ < acc.size(); ++seen_) {
      for (const auto& c : acc[seen_].changes) {
        const Key k = key_of(c.mapping);
        switch (c.op) {
          case core::Change::Op::Add:
            FUZZ_CHECK(!set_.contains(k));  // never installed twice
            set_.emplace(k, c.mapping);
            break;
          case core::Change::Op::Remove:
            FUZZ_CHECK(set_.contains(k));  // only what is installed is removed
            set_.erase(k);
            break;
          case core::Change::Op::Replace: {
            FUZZ_CHECK(key_of(c.previous) == k);  // a replace keeps the key
            auto it = set_.find(k);
            FUZZ_CHECK(it != set_.end());
            FUZZ_CHECK(same_state(it->second, c.previous, now));  // `previous` is what is installed
            it->second = c.mapping;
            break;
          }
        }
      }
    }
  }
  [[nodiscard]] const std::map<Key, core::Mapping>& set() const { return set_; }

 private:
  std::size_t seen_ = 0;
  std::map<Key, core::Mapping> set_;
};

void check_state(const core::Server& server, const pcpd::test::FakeDatapath& dp, Installed& installed,
                 Millis now, bool after_expire) {
  installed.replay(dp, now);
  const auto maps = server.mappings();
  FUZZ_CHECK(maps.size() == server.mapping_count());
  FUZZ_CHECK(maps.size() <= kTotal);  // R-QUOTA: NO_RESOURCES beyond the system-wide limit

  std::map<IpAddr, std::uint32_t> per_internal;
  // external endpoint (protocol, address, port) -> internal endpoint (address, port)
  std::map<std::tuple<std::uint8_t, IpAddr, std::uint16_t>, std::pair<IpAddr, std::uint16_t>> owner;
  // internal endpoint -> external endpoint (endpoint-independent mapping, R-MAP-12)
  std::map<std::tuple<std::uint8_t, IpAddr, std::uint16_t>, std::pair<IpAddr, std::uint16_t>> binding;
  Millis earliest = Millis::max();
  for (const auto& m : maps) {
    FUZZ_CHECK(++per_internal[m.internal_addr] <= kPerClient);  // USER_EX_QUOTA
    earliest = std::min(earliest, m.expires);
    if (after_expire) FUZZ_CHECK(m.expires > now);  // R-LIFE-7
    FUZZ_CHECK(m.lifetime <= server.policy().max_lifetime);
    FUZZ_CHECK(m.filters.size() <= server.policy().max_filters_per_mapping);
    FUZZ_CHECK(m.description.size() <= server.policy().description_max);
    if (m.external_port != 0) {
      const auto ext = std::make_tuple(m.protocol, m.external_addr, m.external_port);
      const auto in = std::make_pair(m.internal_addr, m.internal_port);
      auto [it, fresh] = owner.emplace(ext, in);
      FUZZ_CHECK(fresh || it->second == in);  // no two internal endpoints on one external one
    }
    const auto in = std::make_tuple(m.protocol, m.internal_addr, m.internal_port);
    const auto ext = std::make_pair(m.external_addr, m.external_port);
    auto [it, fresh] = binding.emplace(in, ext);
    FUZZ_CHECK(fresh || it->second == ext);
    // The datapath has exactly this mapping installed.
    auto inst = installed.set().find(key_of(m));
    FUZZ_CHECK(inst != installed.set().end());
    FUZZ_CHECK(same_state(inst->second, m, now));
  }
  FUZZ_CHECK(installed.set().size() == maps.size());
  FUZZ_CHECK(server.next_expiry() == earliest);
}

void check_pcp_reply(std::span<const std::uint8_t> reply, const wire::OptionCodes& codes) {
  if (reply.empty()) return;
  FUZZ_CHECK(reply.size() >= wire::kHeaderSize);
  FUZZ_CHECK(reply.size() <= wire::kMaxMessageSize);  // RFC 6887 §7
  FUZZ_CHECK(reply.size() % 4 == 0);
  FUZZ_CHECK(reply[0] == wire::kVersion && (reply[1] & 0x80) != 0);
  if (reply[3] == static_cast<std::uint8_t>(wire::ResultCode::Success)) {
    // A success response is built field by field: a client must be able to read it.
    const auto d = wire::decode_response(reply, codes);
    FUZZ_CHECK(std::holds_alternative<wire::Response>(d));
  }
}

void check_natpmp_reply(std::span<const std::uint8_t> reply, std::span<const std::uint8_t> request) {
  if (reply.empty()) return;
  const bool unsupported_opcode = reply.size() >= 4 && reply[2] == 0 &&
                                  reply[3] == static_cast<std::uint8_t>(wire::natpmp::Result::UnsupportedOpcode);
  if (unsupported_opcode) {
    // RFC 6886 §3.5: the whole request back, top bit of the opcode set, result 5.
    FUZZ_CHECK(request.size() >= 2 && request[1] < 128);
    FUZZ_CHECK(reply.size() == std::min<std::size_t>(std::max<std::size_t>(4, request.size()), 1100));
    FUZZ_CHECK(reply[0] == request[0] && reply[1] == (request[1] | 0x80));
    for (std::size_t i = 4; i < std::min(reply.size(), request.size()); ++i) FUZZ_CHECK(reply[i] == request[i]);
    return;
  }
  FUZZ_CHECK(reply.size() == 8 || reply.size() == 12 || reply.size() == 16);
  const auto d = wire::natpmp::decode_response(reply);
  FUZZ_CHECK(std::holds_alternative<wire::natpmp::Response>(d));
}

// One record of the input (see the header comment).
struct Record {
  std::uint8_t ctl = 0;
  std::uint8_t advance = 0;
  std::span<const std::uint8_t> datagram;

  [[nodiscard]] bool natpmp() const { return (ctl & 0x80) != 0; }
  [[nodiscard]] Millis step() const { return Millis(std::int64_t{advance} * ((ctl & 0x20) ? 60'000 : 1'000)); }
  [[nodiscard]] core::Context context() const {
    IpAddr source = kSources[ctl & 0x07];
    if (!natpmp() && (ctl & 0x08) == 0 && datagram.size() >= 24)
      std::copy_n(datagram.begin() + 8, 16, source.bytes.begin());
    const IpAddr local = source.is_v4() ? IpAddr::from_v4(0xc0000201) : v6(1);
    return core::Context{source, static_cast<std::uint16_t>(40000 + (ctl & 0x07)), local};
  }
};

// The records after the policy byte, at most 64.
std::vector<Record> parse_records(const std::uint8_t* data, std::size_t size) {
  std::vector<Record> out;
  std::size_t pos = 1;
  while (pos + 4 <= size && out.size() < 64) {
    Record r;
    r.ctl = data[pos];
    r.advance = data[pos + 1];
    std::size_t len = (std::size_t{data[pos + 2]} << 8) | data[pos + 3];
    pos += 4;
    len = std::min(len, size - pos);
    r.datagram = std::span<const std::uint8_t>(data + pos, len);
    pos += len;
    out.push_back(r);
  }
  return out;
}

// The same records a second time, through Server::handle_burst on a fresh server: a record whose
// advance byte is 0 joins the burst of the record before it (at most 16 per burst). A record with
// ctl 0x10 at position i of its burst makes the datapath refuse apply() number i + 1 from the
// burst's start: i = 0 is the burst's own transaction (then every request is retried alone), the
// others hit those retries. The same invariants are checked after every burst; in particular
// FakeDatapath's installed set must still equal the table after a rollback (R-HDR-10).
void run_bursts(const std::uint8_t* data, std::size_t size) {
  pcpd::test::FakeClock clock;
  pcpd::test::FakeDatapath dp;
  core::Server server(make_policy(data[0]), dp, clock);
  const wire::OptionCodes codes = server.policy().option_codes;
  Installed installed;
  constexpr std::size_t kMaxBurst = 16;
  std::array<std::array<std::uint8_t, 1500>, kMaxBurst> outs{};
  std::vector<core::BurstItem> items;
  std::vector<std::size_t> fail_at;
  bool expire_after = false;
  auto flush = [&]() {
    if (items.empty()) return;
    for (std::size_t at : fail_at) dp.fail_calls({at});
    server.handle_burst(items);
    for (const core::BurstItem& it : items) {
      const auto reply = std::span<const std::uint8_t>(it.out.data(), it.reply);
      if (it.natpmp)
        check_natpmp_reply(reply, it.datagram);
      else
        check_pcp_reply(reply, codes);
    }
    dp.clear_failures();
    if (expire_after) server.expire();
    check_state(server, dp, installed, clock.now(), expire_after);
    items.clear();
    fail_at.clear();
    expire_after = false;
  };
  for (const Record& rec : parse_records(data, size)) {
    if (rec.advance != 0 || items.size() == kMaxBurst) flush();
    clock.advance(rec.step());
    core::BurstItem it;
    it.datagram = rec.datagram;
    it.ctx = rec.context();
    it.natpmp = rec.natpmp();
    it.out = outs[items.size()];
    if (rec.ctl & 0x10) fail_at.push_back(items.size() + 1);
    expire_after = expire_after || (rec.ctl & 0x40) != 0;
    items.push_back(it);
  }
  flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  run_bursts(data, size);
  pcpd::test::FakeClock clock;
  pcpd::test::FakeDatapath dp;
  core::Server server(make_policy(data[0]), dp, clock);
  const wire::OptionCodes codes = server.policy().option_codes;
  Installed installed;
  std::array<std::uint8_t, 1500> out{};
  std::uint32_t last_epoch = server.epoch();

  for (const Record& rec : parse_records(data, size)) {
    clock.advance(rec.step());
    if (rec.ctl & 0x10) dp.fail_nth(1);
    const core::Context ctx = rec.context();
    if (rec.natpmp()) {
      const std::size_t n = server.handle_natpmp(rec.datagram, ctx, out);
      check_natpmp_reply(std::span<const std::uint8_t>(out.data(), n), rec.datagram);
    } else {
      const std::size_t n = server.handle_datagram(rec.datagram, ctx, out);
      check_pcp_reply(std::span<const std::uint8_t>(out.data(), n), codes);
    }
    dp.fail_all(false);
    dp.fail_nth(0x7fffffff);  // disarm a refusal that was not used
    if (rec.ctl & 0x40) server.expire();
    check_state(server, dp, installed, clock.now(), (rec.ctl & 0x40) != 0);

    const std::uint32_t epoch = server.epoch();
    FUZZ_CHECK(epoch >= last_epoch);  // RFC 6887 §8.5: the epoch only counts up here
    last_epoch = epoch;
  }
  // Unsolicited announcements are well formed too (RFC 6887 §14.1.3, RFC 6886 §3.2.1).
  for (bool with : {false, true}) {
    const std::size_t n = server.encode_announce(out, with);
    FUZZ_CHECK(n >= wire::kHeaderSize);
    check_pcp_reply(std::span<const std::uint8_t>(out.data(), n), codes);
  }
  const std::size_t n = server.encode_natpmp_announce(out);
  check_natpmp_reply(std::span<const std::uint8_t>(out.data(), n), {});
  return 0;
}
