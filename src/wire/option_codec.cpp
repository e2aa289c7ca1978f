// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/option_codec.hpp"

namespace pcpd::wire::detail {

namespace {

enum class Known : std::uint8_t {
  None,
  ThirdParty,
  PreferFailure,
  Filter,
  Description,
  CheckpointRequired,
  Capability
};

constexpr std::uint8_t code_of(OptionCode c) { return static_cast<std::uint8_t>(c); }

// The fixed codes win over the configurable ones (config rejects such a clash anyway).
Known identify(std::uint8_t code, const OptionCodes& codes) {
  switch (code) {
    case code_of(OptionCode::ThirdParty): return Known::ThirdParty;
    case code_of(OptionCode::PreferFailure): return Known::PreferFailure;
    case code_of(OptionCode::Filter): return Known::Filter;
    case code_of(OptionCode::Description): return Known::Description;
    default: break;
  }
  if (code == codes.checkpoint_required) return Known::CheckpointRequired;
  if (code == codes.capability) return Known::Capability;
  return Known::None;
}

// "Valid for" of each option: RFC 6887 §13.1-§13.3, RFC 7220 §3, RFC 7767 §4, hops-00 §3.
bool valid_for(Known k, Opcode op) {
  switch (k) {
    case Known::ThirdParty:
    case Known::Description:
    case Known::CheckpointRequired: return op == Opcode::Map || op == Opcode::Peer;
    case Known::PreferFailure:
    case Known::Filter: return op == Opcode::Map;
    case Known::Capability:
      return op == Opcode::Map || op == Opcode::Peer || op == Opcode::Announce;
    case Known::None: break;
  }
  return false;
}

bool length_ok(Known k, std::size_t len) {
  switch (k) {
    case Known::ThirdParty: return len == 16;                // RFC 6887 §13.1
    case Known::PreferFailure: return len == 0;              // RFC 6887 §13.2
    case Known::Filter: return len == 20;                    // RFC 6887 §13.3
    case Known::Description: return len <= kMaxDescription;  // RFC 7220 §3
    case Known::CheckpointRequired: return len == 0;         // RFC 7767 §4
    case Known::Capability: return len == kCapabilityBytes;  // hops-00 §3
    case Known::None: break;
  }
  return false;
}

// RFC 6887 §13.3, R-FLT-4: the prefix length counts bits of the 128-bit field, so an IPv4-mapped
// filter uses 96..128; 0 means "no filter" in either family. Anything else cannot be parsed.
bool filter_prefix_ok(const Filter& f) {
  if (f.prefix_length == 0) return true;
  if (f.prefix_length > 128) return false;
  return !f.remote_addr.is_v4() || f.prefix_length >= 96;
}

void count_ignored(Options& out) {
  if (out.ignored_optional < 255) ++out.ignored_optional;
}

// One known option whose length is right: store it. Returns an error for a duplicate beyond the
// option's maximum (request mode) or a FILTER that cannot be parsed.
std::optional<ResultCode> store(Known k, Reader& data, OptionMode mode, Options& out) {
  const bool strict = mode == OptionMode::Request;
  switch (k) {
    case Known::ThirdParty:  // RFC 6887 §13.1: at most once
      if (strict && out.third_party) return ResultCode::MalformedOption;
      out.third_party = data.addr();
      break;
    case Known::PreferFailure:  // RFC 6887 §13.2: at most once
      if (strict && out.prefer_failure) return ResultCode::MalformedOption;
      out.prefer_failure = true;
      break;
    case Known::Filter: {  // RFC 6887 §13.3: repeatable
      Filter f;
      data.skip(1);  // reserved, ignored on receipt (R-HDR-9)
      f.prefix_length = data.u8();
      f.remote_port = data.u16();
      f.remote_addr = data.addr();
      if (strict && !filter_prefix_ok(f)) return ResultCode::MalformedOption;
      // Cannot trigger within 1100 bytes (43 filters fit); kept so the array is never overrun.
      if (out.filter_count >= kMaxFilters) return ResultCode::MalformedOption;
      out.filters[out.filter_count] = f;
      ++out.filter_count;
      break;
    }
    case Known::Description:  // RFC 7220 §3: at most once
      if (strict && out.description) return ResultCode::MalformedOption;
      out.description = data.text(data.remaining());
      break;
    case Known::CheckpointRequired:  // RFC 7767 §4: at most once
      if (strict && out.checkpoint_required) return ResultCode::MalformedOption;
      out.checkpoint_required = true;
      break;
    case Known::Capability: {  // hops-00 §3: at most once
      if (strict && out.capability) return ResultCode::MalformedOption;
      std::array<std::uint8_t, kCapabilityBytes> bits{};
      data.copy_to(bits);
      out.capability = bits;
      break;
    }
    case Known::None: break;
  }
  return std::nullopt;
}

void option_header(Writer& w, std::uint8_t code, std::size_t length) {
  w.u8(code);
  w.u8(0);  // reserved (R-HDR-9)
  w.u16(static_cast<std::uint16_t>(length));
}

}  // namespace

std::optional<ResultCode> decode_options(Reader& r, Opcode op, OptionMode mode,
                                         const OptionCodes& codes, Options& out) {
  const bool strict = mode == OptionMode::Request;
  // RFC 6887 §7.3: options are processed in the order they appear; the first error wins.
  while (!r.at_end()) {
    // RFC 6887 §7.3: code(1) | reserved(1) | length(2) | data(length) | padding to 4 bytes.
    if (!r.has(4)) return ResultCode::MalformedOption;
    const std::uint8_t code = r.u8();
    r.skip(1);  // reserved, ignored on receipt (R-HDR-9)
    const std::size_t length = r.u16();
    const std::size_t padded = (length + 3u) & ~std::size_t{3};
    // RFC 6887 §7.3, R-OPT-4: an option running past the end of the message is malformed.
    if (!r.has(padded)) return ResultCode::MalformedOption;
    Reader data = r.sub(length);
    r.skip(padded - length);  // padding, ignored

    const Known k = identify(code, codes);
    if (k == Known::None) {
      // RFC 6887 §7.3, R-OPT-2: an unknown mandatory-to-process option is UNSUPP_OPTION; an
      // unknown optional-to-process one is skipped. A client ignores both.
      if (strict && !is_optional_option(code)) return ResultCode::UnsuppOption;
      count_ignored(out);
      continue;
    }
    if (strict && !valid_for(k, op)) {
      // RFC 6887 §12.1, R-PEER-5: PREFER_FAILURE in PEER is MALFORMED_REQUEST (MUST).
      if (k == Known::PreferFailure && op == Opcode::Peer) return ResultCode::MalformedRequest;
      // R-OPT-7, local decision (docs/design.md "Decisions"): mandatory-to-process and not valid for the opcode
      // -> MALFORMED_OPTION; optional-to-process -> ignored and not echoed. Checked before the
      // length: an option the opcode does not take is refused whatever its content.
      if (!is_optional_option(code)) return ResultCode::MalformedOption;
      count_ignored(out);
      continue;
    }
    // RFC 6887 §7.3, R-OPT-4: a known option with the wrong length cannot be parsed.
    if (!length_ok(k, length)) return ResultCode::MalformedOption;
    if (auto err = store(k, data, mode, out)) return err;
  }
  return std::nullopt;
}

void encode_options(Writer& w, const Options& o, const OptionCodes& codes) {
  if (o.third_party) {  // RFC 6887 §13.1
    option_header(w, code_of(OptionCode::ThirdParty), 16);
    w.addr(*o.third_party);
  }
  if (o.prefer_failure) option_header(w, code_of(OptionCode::PreferFailure), 0);  // §13.2
  if (o.filter_count > kMaxFilters) {
    w.fail();
    return;
  }
  for (const Filter& f : o.filter_list()) {  // RFC 6887 §13.3
    option_header(w, code_of(OptionCode::Filter), 20);
    w.u8(0);  // reserved
    w.u8(f.prefix_length);
    w.u16(f.remote_port);
    w.addr(f.remote_addr);
  }
  if (o.description) {  // RFC 7220 §3: at most 1016 bytes, padded
    if (o.description->size() > kMaxDescription) {
      w.fail();
      return;
    }
    option_header(w, code_of(OptionCode::Description), o.description->size());
    w.text(*o.description);
    w.pad4();
  }
  if (o.checkpoint_required) option_header(w, codes.checkpoint_required, 0);  // RFC 7767 §4
  if (o.capability) {                                                         // hops-00 §3
    option_header(w, codes.capability, kCapabilityBytes);
    w.bytes(*o.capability);
  }
}

}  // namespace pcpd::wire::detail
