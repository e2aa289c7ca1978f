// SPDX-License-Identifier: GPL-2.0-or-later
#include "nft/element.hpp"

#include <algorithm>
#include <cerrno>
#include <tuple>
#include <string_view>
#include <unordered_map>

#include "nft/disjoint_filters.hpp"
#include "nft/element_comment.hpp"

namespace pcpd::nft {
namespace {

KeyBytes endpoint(const wire::IpAddr& a, std::uint8_t proto, std::uint16_t port) {
  return KeyWriter{}.addr(a).proto(proto).port(port).take();
}

void add_filters(const core::Mapping& m, const KeyBytes& ep, SetId on, SetId allow,
                 std::vector<Element>& out) {
  if (m.filters.empty()) return;
  out.push_back({on, ep, {}, {}, {}});
  for (const auto& f : disjoint_filters(m.filters, m.is_v4())) {
    auto lo = ep;
    auto hi = ep;
    auto lo_tail = KeyWriter{}
                       .addr(prefix_first(f.remote_addr, f.prefix_length))
                       .port(f.remote_port)
                       .take();
    auto hi_tail = KeyWriter{}
                       .addr(prefix_last(f.remote_addr, f.prefix_length))
                       .port(f.remote_port == 0 ? 0xffff : f.remote_port)
                       .take();
    lo.append(lo_tail);
    hi.append(hi_tail);
    out.push_back({allow, lo, hi, {}, {}});
  }
}

std::string element_id(SetId set, std::span<const std::uint8_t> key, std::span<const std::uint8_t> key_end) {
  std::string id;
  id.reserve(1 + key.size() + key_end.size());
  id += static_cast<char>(set);
  id.append(key.begin(), key.end());
  id.append(key_end.begin(), key_end.end());
  return id;
}

// Filters stored for the endpoint `ep` (the first ep.size() bytes of an allow key).
struct FilterIndex {
  std::unordered_map<std::string, std::vector<wire::Filter>> by_endpoint;

  void add(const DumpedElement& e, std::size_t ep_len, bool v4) {
    if (e.key.size() <= ep_len || e.key_end.size() != e.key.size()) return;
    KeyReader lo(std::span(e.key).subspan(ep_len));
    KeyReader hi(std::span(e.key_end).subspan(ep_len));
    auto first = v4 ? lo.v4() : lo.v6();
    auto last = v4 ? hi.v4() : hi.v6();
    auto plo = lo.port();
    auto phi = hi.port();
    if (!first || !last || !plo || !phi) return;
    auto len = range_prefix(*first, *last);
    if (!len) return;
    std::uint16_t port = 0;
    if (*plo == *phi)
      port = *plo;
    else if (*plo != 0 || *phi != 0xffff)
      return;
    std::string ep(e.key.begin(), e.key.begin() + static_cast<std::ptrdiff_t>(ep_len));
    by_endpoint[ep].push_back({*len, port, *first});
  }
  std::vector<wire::Filter> get(std::span<const std::uint8_t> ep) const {
    auto it = by_endpoint.find(std::string(ep.begin(), ep.end()));
    return it == by_endpoint.end() ? std::vector<wire::Filter>{} : it->second;
  }
};

// The mapping a primary element describes (without filters), or nullopt.
std::optional<core::Mapping> decode_primary(SetId set, const DumpedElement& e) {
  auto comment = ElementComment::parse(e.comment);
  if (!comment) return std::nullopt;
  core::Mapping m;
  m.kind = comment->kind;
  m.origin = comment->origin;
  m.nonce = comment->nonce;
  m.lifetime = comment->lifetime;
  m.third_party = comment->third_party;
  m.checkpoint = comment->checkpoint;
  m.checkpoint_deferred = comment->checkpoint_deferred && !comment->checkpoint;
  m.description = comment->description;

  KeyReader k(e.key);
  KeyReader d(e.data);
  const bool v4 = set == SetId::Map4Dnat || set == SetId::Peer4Snat;
  auto read_addr = [v4](KeyReader& r) { return v4 ? r.v4() : r.v6(); };
  std::optional<wire::IpAddr> a1, a2, a3;
  std::optional<std::uint8_t> proto;
  std::optional<std::uint16_t> p1, p2, p3;
  switch (set) {
    case SetId::Map4Dnat:  // ext . proto . ext_port : int . int_port
      if (m.kind != core::MappingKind::Map) return std::nullopt;
      a1 = k.v4(), proto = k.proto(), p1 = k.port(), a2 = d.v4(), p2 = d.port();
      if (!a1 || !proto || !p1 || !a2 || !p2) return std::nullopt;
      m.external_addr = *a1, m.external_port = *p1, m.internal_addr = *a2, m.internal_port = *p2;
      break;
    case SetId::Map4DnatAll:  // ext . proto : int  (all ports: both ports 0)
      if (m.kind != core::MappingKind::Map) return std::nullopt;
      a1 = k.v4(), proto = k.proto(), a2 = d.v4();
      if (!a1 || !proto || !a2) return std::nullopt;
      m.external_addr = *a1, m.internal_addr = *a2;
      break;
    case SetId::Pin6All:  // int . proto  (all ports)
      if (m.kind != core::MappingKind::Map) return std::nullopt;
      a1 = k.v6(), proto = k.proto();
      if (!a1 || !proto) return std::nullopt;
      m.internal_addr = m.external_addr = *a1;
      break;
    case SetId::Pin6:  // int . proto . port
      if (m.kind != core::MappingKind::Map) return std::nullopt;
      a1 = k.v6(), proto = k.proto(), p1 = k.port();
      if (!a1 || !proto || !p1) return std::nullopt;
      m.internal_addr = m.external_addr = *a1;
      m.internal_port = m.external_port = *p1;
      break;
    case SetId::Peer4Snat:
    case SetId::Peer6:  // int . proto . int_port . remote . remote_port [: ext . ext_port]
      if (m.kind != core::MappingKind::Peer) return std::nullopt;
      a1 = read_addr(k), proto = k.proto(), p1 = k.port(), a3 = read_addr(k), p3 = k.port();
      if (!a1 || !proto || !p1 || !a3 || !p3) return std::nullopt;
      m.internal_addr = *a1, m.internal_port = *p1, m.remote_addr = *a3, m.remote_port = *p3;
      if (set == SetId::Peer4Snat) {
        a2 = d.v4(), p2 = d.port();
        if (!a2 || !p2) return std::nullopt;
        m.external_addr = *a2, m.external_port = *p2;
      } else {
        m.external_addr = *a1, m.external_port = *p1;
      }
      break;
    default:
      return std::nullopt;
  }
  if (!k.at_end()) return std::nullopt;
  m.protocol = *proto;
  m.client_addr = comment->client.value_or(m.internal_addr);
  return m;
}

// RFC 7767: the keys pcpd.nft's elect4/elect6 chains match to elect the mapping's connections.
// `primary` is the index in `out` of the mapping's primary element.
void add_election(const core::Mapping& m, std::vector<Element>& out, std::size_t primary) {
  if (!m.checkpoint) return;
  const bool v4 = m.is_v4();
  if (m.kind == core::MappingKind::Peer) {
    out.push_back({v4 ? SetId::Elect4Peer : SetId::Elect6Peer, out[primary].key, {}, {}, {}});
    return;
  }
  if (v4) {
    out.push_back({SetId::Elect4Dst, endpoint(m.external_addr, m.protocol, m.external_port), {}, {}, {}});
    out.push_back({SetId::Elect4Src, endpoint(m.internal_addr, m.protocol, m.internal_port), {}, {}, {}});
  } else {
    auto ep = endpoint(m.internal_addr, m.protocol, m.internal_port);
    out.push_back({SetId::Elect6Dst, ep, {}, {}, {}});
    out.push_back({SetId::Elect6Src, std::move(ep), {}, {}, {}});
  }
}

// An all-ports MAP (RFC 6887 §11.1 internal port 0): one host's every port of one protocol, on
// its external address (NAT44: DNAT and SNAT by address, ports kept) or its own (a pinhole).
// No FILTER and no election keys: core never gives an all-ports mapping either.
Result<void> append_all_ports(const core::Mapping& m, const ElementComment& comment, std::vector<Element>& out) {
  if (m.kind != core::MappingKind::Map || m.external_port != 0 || !m.filters.empty() || m.checkpoint)
    return fail(ErrorDomain::Netlink, EOPNOTSUPP, "nft: all-ports mapping with ports, FILTER or election");
  if (m.is_v4()) {
    if (!m.external_addr.is_v4()) return fail(ErrorDomain::Netlink, EAFNOSUPPORT, "nft: MAP external endpoint");
    out.push_back({SetId::Map4DnatAll, KeyWriter{}.v4(m.external_addr).proto(m.protocol).take(), {},
                   KeyWriter{}.v4(m.internal_addr).take(), comment.encode()});
    out.push_back({SetId::Map4SnatAll, KeyWriter{}.v4(m.internal_addr).proto(m.protocol).take(), {},
                   KeyWriter{}.v4(m.external_addr).take(), {}});
  } else {
    out.push_back({SetId::Pin6All, KeyWriter{}.v6(m.internal_addr).proto(m.protocol).take(), {}, {}, comment.encode()});
  }
  return {};
}

}  // namespace

Result<void> append_mapping_elements(const core::Mapping& m, std::vector<Element>& out) {
  // All-protocols mappings (RFC 6887 §11.1 protocol 0) need maps keyed by address alone, which
  // the table lacks.
  if (m.protocol == 0) return fail(ErrorDomain::Netlink, EOPNOTSUPP, "nft: all-protocols mapping");
  const std::size_t first = out.size();
  const bool v4 = m.is_v4();
  ElementComment comment = ElementComment::from(m);
  if (m.internal_port == 0) return append_all_ports(m, comment, out);
  if (m.kind == core::MappingKind::Map) {
    if (v4) {
      if (!m.external_addr.is_v4() || m.external_port == 0)
        return fail(ErrorDomain::Netlink, EAFNOSUPPORT, "nft: MAP external endpoint");
      auto ext = endpoint(m.external_addr, m.protocol, m.external_port);
      auto in = endpoint(m.internal_addr, m.protocol, m.internal_port);
      auto ext_data = KeyWriter{}.v4(m.external_addr).port(m.external_port).take();
      auto in_data = KeyWriter{}.v4(m.internal_addr).port(m.internal_port).take();
      out.push_back({SetId::Map4Dnat, ext, {}, std::move(in_data), comment.encode()});
      out.push_back({SetId::Map4Snat, std::move(in), {}, std::move(ext_data), {}});
      add_filters(m, ext, SetId::Filt4On, SetId::Filt4Allow, out);
    } else {
      auto pin = endpoint(m.internal_addr, m.protocol, m.internal_port);
      out.push_back({SetId::Pin6, pin, {}, {}, comment.encode()});
      add_filters(m, pin, SetId::Filt6On, SetId::Filt6Allow, out);
    }
    add_election(m, out, first);
    return {};
  }
  // PEER
  if (m.remote_addr.is_v4() != v4 || m.remote_port == 0)
    return fail(ErrorDomain::Netlink, EAFNOSUPPORT, "nft: PEER remote endpoint");
  auto key = KeyWriter{}
                 .addr(m.internal_addr)
                 .proto(m.protocol)
                 .port(m.internal_port)
                 .addr(m.remote_addr)
                 .port(m.remote_port)
                 .take();
  if (v4) {
    if (!m.external_addr.is_v4() || m.external_port == 0)
      return fail(ErrorDomain::Netlink, EAFNOSUPPORT, "nft: PEER external endpoint");
    auto data = KeyWriter{}.v4(m.external_addr).port(m.external_port).take();
    out.push_back({SetId::Peer4Snat, std::move(key), {}, std::move(data), comment.encode()});
  } else {
    out.push_back({SetId::Peer6, std::move(key), {}, {}, comment.encode()});
  }
  add_election(m, out, first);
  return {};
}

Result<std::vector<Element>> mapping_elements(const core::Mapping& m) {
  std::vector<Element> out;
  out.reserve(2 + (m.filters.empty() ? 0 : 1 + m.filters.size()) + (m.checkpoint ? 2 : 0));
  auto r = append_mapping_elements(m, out);
  if (!r) return tl::unexpected(r.error());
  return out;
}

Rebuilt rebuild_mappings(const SetContents& sets, core::Millis now, std::uint32_t grace_seconds) {
  struct Slot {
    const DumpedElement* e;
    bool used;
  };
  std::unordered_map<std::string, Slot> index;
  FilterIndex filters4, filters6;
  for (const auto& spec : all_sets()) {
    if (spec.id == SetId::WanIfnames) continue;
    for (const auto& e : sets[static_cast<std::size_t>(spec.id)]) {
      index.emplace(element_id(spec.id, e.key, e.key_end), Slot{&e, false});
      if (spec.id == SetId::Filt4Allow) filters4.add(e, 12, true);
      if (spec.id == SetId::Filt6Allow) filters6.add(e, 24, false);
    }
  }

  Rebuilt out;
  for (SetId primary : {SetId::Map4Dnat, SetId::Pin6, SetId::Peer4Snat, SetId::Peer6, SetId::Map4DnatAll, SetId::Pin6All}) {
    for (const auto& e : sets[static_cast<std::size_t>(primary)]) {
      auto m = decode_primary(primary, e);
      if (!m) continue;
      if (primary == SetId::Map4Dnat) m->filters = filters4.get(e.key);
      if (primary == SetId::Pin6) m->filters = filters6.get(e.key);
      auto expected = mapping_elements(*m);
      if (!expected) continue;
      bool complete = true;
      for (std::size_t i = 1; i < expected->size() && complete; ++i) {
        const auto& x = (*expected)[i];
        auto it = index.find(element_id(x.set, x.key, x.key_end));
        complete = it != index.end() && !it->second.used && it->second.e->data == x.data;
      }
      if (!complete) continue;
      for (const auto& x : *expected) index.at(element_id(x.set, x.key, x.key_end)).used = true;
      // A static mapping's elements have no timeout: it does not expire.
      m->expires = m->is_static() ? core::kNever
                                  : now + core::Millis(static_cast<std::int64_t>(e.expiration_ms)) -
                                        core::Millis(std::int64_t{grace_seconds} * 1000);
      out.mappings.push_back(std::move(*m));
    }
  }
  for (const auto& spec : all_sets()) {
    if (spec.id == SetId::WanIfnames) continue;
    for (const auto& e : sets[static_cast<std::size_t>(spec.id)]) {
      if (index.at(element_id(spec.id, e.key, e.key_end)).used) continue;
      out.leftovers.push_back({spec.id, e.key, e.key_end, e.data, {}});
    }
  }
  return out;
}

Rebuilt reconcile(Rebuilt first, Rebuilt second) {
  auto order = [](const Element& a, const Element& b) {
    return std::tie(a.set, a.key, a.key_end) < std::tie(b.set, b.key, b.key_end);
  };
  std::sort(second.leftovers.begin(), second.leftovers.end(), order);
  Rebuilt out;
  out.mappings = std::move(first.mappings.size() > second.mappings.size() ? first.mappings : second.mappings);
  for (Element& e : first.leftovers)
    if (std::binary_search(second.leftovers.begin(), second.leftovers.end(), e, order))
      out.leftovers.push_back(std::move(e));
  return out;
}

}  // namespace pcpd::nft
