// SPDX-License-Identifier: GPL-2.0-or-later
// Annotated hex test vectors (tests/vectors/*.hex), PowerDNS style: bytes written with their
// meaning beside them. File format:
//   == name      starts a vector (a name may be followed by a "#" comment)
//   # ...        comment to the end of the line
//   @name        inserts the bytes of a vector defined earlier in the same file
//   anything else: hex digits; whitespace between them is free
// A malformed file or an unknown name throws, which fails the test that asked for it.
#pragma once

#include <cctype>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef PCPD_SOURCE_DIR
#error "PCPD_SOURCE_DIR must name the source tree (set by pcpd_add_test)"
#endif

namespace pcpd::test {

using Bytes = std::vector<std::uint8_t>;

namespace detail {

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline std::map<std::string, Bytes> parse_vectors(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::map<std::string, Bytes> out;
  std::string current, line, digits;
  int line_no = 0;
  auto flush = [&] {
    if (current.empty()) return;
    if (digits.size() % 2 != 0)
      throw std::runtime_error(path + ": vector " + current + " has an odd number of hex digits");
    Bytes& b = out[current];
    for (std::size_t i = 0; i < digits.size(); i += 2)
      b.push_back(static_cast<std::uint8_t>(hex_value(digits[i]) * 16 + hex_value(digits[i + 1])));
    digits.clear();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) continue;
    if (word == "==") {
      flush();
      if (!(words >> current)) throw std::runtime_error(path + ": name missing after ==");
      if (out.count(current) != 0) throw std::runtime_error(path + ": duplicate vector " + current);
      out[current];
      continue;
    }
    if (current.empty())
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": bytes before any ==");
    do {
      if (word[0] == '@') {
        flush();  // the digits so far belong before the inserted vector
        auto it = out.find(word.substr(1));
        if (it == out.end() || it->first == current)
          throw std::runtime_error(path + ":" + std::to_string(line_no) + ": unknown " + word);
        Bytes& b = out[current];
        b.insert(b.end(), it->second.begin(), it->second.end());
        continue;
      }
      for (char c : word) {
        if (hex_value(c) < 0)
          throw std::runtime_error(path + ":" + std::to_string(line_no) + ": not hex: " + word);
        digits.push_back(c);
      }
    } while (words >> word);
  }
  flush();
  return out;
}

}  // namespace detail

// The bytes of vector `name` in tests/vectors/<file>.
inline Bytes vec(const std::string& file, const std::string& name) {
  static std::map<std::string, std::map<std::string, Bytes>> cache;
  auto it = cache.find(file);
  if (it == cache.end())
    it = cache
             .emplace(file, detail::parse_vectors(std::string(PCPD_SOURCE_DIR) + "/tests/vectors/" +
                                                  file))
             .first;
  auto v = it->second.find(name);
  if (v == it->second.end()) throw std::runtime_error(file + ": no vector " + name);
  return v->second;
}

inline Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// "02 81 00 ..." for failure messages.
inline std::string hex(const Bytes& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i != 0) s += (i % 4 == 0) ? "  " : " ";
    s += digits[b[i] >> 4];
    s += digits[b[i] & 0xf];
  }
  return s;
}

}  // namespace pcpd::test

// ---- helpers shared by the wire tests ----
#include <doctest/doctest.h>

#include <variant>

#include "wire/codec.hpp"

namespace pcpd::test {

// The Request a datagram decodes to; fails the test if it was rejected. The Request views the
// bytes (codec.hpp), so a temporary buffer is refused at compile time.
wire::Request decode_ok(Bytes&& b, const wire::OptionCodes& codes = {}) = delete;
inline wire::Request decode_ok(const Bytes& b, const wire::OptionCodes& codes = {}) {
  auto d = wire::decode_request(b, codes);
  if (auto* rej = std::get_if<wire::Reject>(&d)) {
    FAIL_CHECK("rejected: " << (rej->action == wire::Reject::Action::Drop ? "drop " : "respond ")
                            << wire::to_string(rej->code) << " for " << hex(b));
    return {};
  }
  return std::get<wire::Request>(d);
}

// The Reject a datagram decodes to; fails the test if it decoded.
inline wire::Reject decode_reject(const Bytes& b) {
  auto d = wire::decode_request(b);
  if (!std::holds_alternative<wire::Reject>(d)) {
    FAIL_CHECK("decoded, expected a reject: " << hex(b));
    return {};
  }
  return std::get<wire::Reject>(d);
}

inline void check_drop(const Bytes& b) {
  auto r = decode_reject(b);
  CHECK(r.action == wire::Reject::Action::Drop);
}

inline void check_respond(const Bytes& b, wire::ResultCode code) {
  auto r = decode_reject(b);
  CHECK(r.action == wire::Reject::Action::Respond);
  CHECK_MESSAGE(r.code == code, "got ", wire::to_string(r.code), " want ", wire::to_string(code));
}

// A request that decodes but whose options carry `code` (Request::option_error).
inline void check_option_error(const Bytes& b, wire::ResultCode code) {
  auto req = decode_ok(b);
  REQUIRE_MESSAGE(req.option_error.has_value(), "no option error for ", hex(b));
  CHECK_MESSAGE(*req.option_error == code, "got ", wire::to_string(*req.option_error), " want ",
                wire::to_string(code));
}

inline wire::IpAddr ip(const char* text) {
  auto a = wire::IpAddr::parse(text);
  REQUIRE_MESSAGE(a.has_value(), "bad address in test: ", text);
  return *a;
}

}  // namespace pcpd::test
