// SPDX-License-Identifier: GPL-2.0-or-later
// wire::Reader / wire::Writer: the bounds-checked cursors every decode and encode goes through.
#include <array>

#include "wire/reader.hpp"
#include "wire/writer.hpp"
#include "wire_vectors.hpp"

using namespace pcpd;
using pcpd::test::Bytes;

TEST_CASE("Reader reads big-endian fields") {
  const Bytes b{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  wire::Reader r{b};
  CHECK(r.u8() == 0x01);
  CHECK(r.u16() == 0x0203);
  CHECK(r.u32() == 0x04050607u);
  CHECK(r.ok());
  CHECK(r.at_end());
  CHECK(r.offset() == 7);
}

TEST_CASE("Reader: a read past the end reads nothing and fails for good") {
  const Bytes b{0xaa, 0xbb, 0xcc};
  wire::Reader r{b};
  CHECK(r.u16() == 0xaabb);
  CHECK(r.u16() == 0);  // one byte left: nothing read
  CHECK_FALSE(r.ok());
  CHECK(r.remaining() == 0);
  CHECK(r.u8() == 0);  // sticky: even the byte that is there is not read
  CHECK_FALSE(r.ok());
}

TEST_CASE("Reader: addr, copy_to, bytes, text, sub and skip are bounds-checked") {
  Bytes b(20);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i);
  wire::Reader r{b};
  auto a = r.addr();
  CHECK(a.bytes[15] == 15);
  std::array<std::uint8_t, 4> four{};
  r.copy_to(four);
  CHECK(four == std::array<std::uint8_t, 4>{16, 17, 18, 19});
  CHECK(r.ok());
  std::array<std::uint8_t, 2> two{9, 9};
  r.copy_to(two);
  CHECK_FALSE(r.ok());
  CHECK(two == std::array<std::uint8_t, 2>{0, 0});

  wire::Reader r2{b};
  auto sub = r2.sub(4);
  CHECK(sub.remaining() == 4);
  CHECK(r2.offset() == 4);
  CHECK(r2.bytes(16).size() == 16);
  CHECK(r2.bytes(1).empty());
  CHECK_FALSE(r2.ok());

  wire::Reader r3{b};
  auto bad = r3.sub(21);
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(r3.ok());

  wire::Reader r5{b};
  r5.skip(2);
  CHECK(r5.u8() == 2);
  r5.skip(17);
  CHECK(r5.ok());
  CHECK(r5.at_end());
  r5.skip(1);
  CHECK_FALSE(r5.ok());

  wire::Reader r4{b};
  CHECK(r4.skip_up_to(30) == 20);
  CHECK(r4.ok());
  CHECK(r4.text(1).empty());
  CHECK_FALSE(r4.ok());
}

TEST_CASE("Writer writes big-endian fields and pads to 4") {
  Bytes out(12, 0xee);
  wire::Writer w{out};
  w.u8(0x01);
  w.u16(0x0203);
  w.pad4();
  w.u32(0x04050607);
  w.text("ab");
  w.pad4();
  CHECK(w.ok());
  CHECK(w.size() == 12);
  CHECK(out == Bytes{1, 2, 3, 0, 4, 5, 6, 7, 'a', 'b', 0, 0});
}

TEST_CASE("Writer: a write past the end writes nothing and fails for good") {
  Bytes out(3, 0xee);
  wire::Writer w{out};
  w.u16(0x0102);
  w.u16(0x0304);
  CHECK_FALSE(w.ok());
  CHECK(out == Bytes{1, 2, 0xee});
  w.u8(5);
  CHECK(out[2] == 0xee);
  Bytes big(10, 0);
  wire::Writer limited{big, 4};  // e.g. the 1100-byte limit
  limited.u32(1);
  CHECK(limited.ok());
  limited.u8(1);
  CHECK_FALSE(limited.ok());
}
