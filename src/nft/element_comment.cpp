// SPDX-License-Identifier: GPL-2.0-or-later
#include "nft/element_comment.hpp"

#include <charconv>

namespace pcpd::nft {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the valid UTF-8 sequence (2..4 bytes) starting at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned min = 0;
  unsigned cp = 0;
  if (b >= 0xc2 && b <= 0xdf) {
    n = 2;
    min = 0x80;
    cp = b & 0x1fu;
  } else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    min = 0x800;
    cp = b & 0x0fu;
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    min = 0x10000;
    cp = b & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// One unit of the escaped description starting at s[i]: its text and how many input bytes it eats.
std::string_view escape_unit(std::string_view s, std::size_t i, char (&tmp)[4], std::size_t& used) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b >= 0x20 && b <= 0x7e && b != '"' && b != '\\') {
    used = 1;
    return s.substr(i, 1);
  }
  if (auto n = utf8_sequence(s, i); n != 0) {
    used = n;
    return s.substr(i, n);
  }
  tmp[0] = '\\';
  tmp[1] = 'x';
  tmp[2] = kHex[b >> 4];
  tmp[3] = kHex[b & 0xf];
  used = 1;
  return {tmp, 4};
}

}  // namespace

ElementComment ElementComment::from(const core::Mapping& m) {
  ElementComment c;
  c.origin = m.origin;
  c.kind = m.kind;
  if (m.client_addr != m.internal_addr) c.client = m.client_addr;
  c.nonce = m.nonce;
  c.lifetime = m.lifetime;
  c.third_party = m.third_party;
  c.checkpoint = m.checkpoint;
  c.checkpoint_deferred = m.checkpoint_deferred;
  c.description = m.description;
  return c;
}

std::string ElementComment::encode(std::size_t max_length) const {
  std::string out;
  out.reserve(max_length);
  out += origin == core::Origin::NatPmp ? "pmp" : origin == core::Origin::Static ? "static" : "pcp";
  out += kind == core::MappingKind::Peer ? " peer" : " map";
  if (client) {
    out += " c=";
    out += client->to_string();
  }
  out += " n=";
  for (auto b : nonce) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  out += " l=";
  out += std::to_string(lifetime);
  if (third_party || checkpoint || checkpoint_deferred) {
    out += " f=";
    if (third_party) out += 't';
    if (checkpoint) out += 'k';
    if (checkpoint_deferred) out += 'w';
  }
  if (description.empty() && !description_truncated) return out;

  std::string body;
  bool cut = description_truncated;
  // " d~=" is the longer prefix: reserve room for it so a cut never overflows.
  const std::size_t room = max_length > out.size() + 4 ? max_length - out.size() - 4 : 0;
  char tmp[4];
  for (std::size_t i = 0; i < description.size();) {
    std::size_t used = 0;
    auto unit = escape_unit(description, i, tmp, used);
    if (body.size() + unit.size() > room) {
      cut = true;
      break;
    }
    body += unit;
    i += used;
  }
  out += cut ? " d~=" : " d=";
  out += body;
  return out;
}

std::optional<ElementComment> ElementComment::parse(std::string_view text) {
  ElementComment c;
  auto next_token = [&text]() {
    auto sp = text.find(' ');
    auto tok = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
    return tok;
  };
  auto origin = next_token();
  if (origin == "pcp")
    c.origin = core::Origin::Pcp;
  else if (origin == "pmp")
    c.origin = core::Origin::NatPmp;
  else if (origin == "static")
    c.origin = core::Origin::Static;
  else
    return std::nullopt;
  auto kind = next_token();
  if (kind == "map")
    c.kind = core::MappingKind::Map;
  else if (kind == "peer")
    c.kind = core::MappingKind::Peer;
  else
    return std::nullopt;

  bool have_nonce = false;
  bool have_lifetime = false;
  while (!text.empty()) {
    if (text.starts_with("d=") || text.starts_with("d~=")) {
      c.description_truncated = text[1] == '~';
      auto body = text.substr(c.description_truncated ? 3 : 2);
      for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] != '\\') {
          c.description += body[i];
          continue;
        }
        if (i + 3 >= body.size() || body[i + 1] != 'x') return std::nullopt;
        int hi = hex_value(body[i + 2]);
        int lo = hex_value(body[i + 3]);
        if (hi < 0 || lo < 0) return std::nullopt;
        c.description += static_cast<char>((hi << 4) | lo);
        i += 3;
      }
      text = {};
      break;
    }
    auto tok = next_token();
    if (tok.starts_with("c=")) {
      auto a = wire::IpAddr::parse(tok.substr(2));
      if (!a) return std::nullopt;
      c.client = *a;
    } else if (tok.starts_with("n=")) {
      auto hex = tok.substr(2);
      if (hex.size() != 24) return std::nullopt;
      for (std::size_t i = 0; i < 12; ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        c.nonce[i] = static_cast<std::uint8_t>((hi << 4) | lo);
      }
      have_nonce = true;
    } else if (tok.starts_with("l=")) {
      auto v = tok.substr(2);
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), c.lifetime);
      if (ec != std::errc{} || p != v.data() + v.size() || v.empty()) return std::nullopt;
      have_lifetime = true;
    } else if (tok.starts_with("f=")) {
      for (char f : tok.substr(2)) {
        if (f == 't')
          c.third_party = true;
        else if (f == 'k')
          c.checkpoint = true;
        else if (f == 'w')
          c.checkpoint_deferred = true;
        else
          return std::nullopt;
      }
    } else {
      return std::nullopt;
    }
  }
  if (!have_nonce || !have_lifetime) return std::nullopt;
  return c;
}

}  // namespace pcpd::nft
