// SPDX-License-Identifier: GPL-2.0-or-later
// Replays every committed fuzz input (tests/fuzz/corpus/<target>/ and the crash regressions in
// tests/fuzz/regressions/<target>/) through the fuzz targets' own entry points and invariants, in
// the ordinary build (gcc, sanitizer and valgrind builds included): a regression that comes back
// fails here without clang or libFuzzer. FUZZ_CHECK throws in this build (fuzz_check.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int pcpd_fuzz_one_decode_request(const std::uint8_t* data, std::size_t size);
extern "C" int pcpd_fuzz_one_decode_response(const std::uint8_t* data, std::size_t size);
extern "C" int pcpd_fuzz_one_roundtrip(const std::uint8_t* data, std::size_t size);
extern "C" int pcpd_fuzz_one_natpmp(const std::uint8_t* data, std::size_t size);
extern "C" int pcpd_fuzz_one_server(const std::uint8_t* data, std::size_t size);

namespace {

using Entry = int (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& target, Entry entry) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(PCPD_SOURCE_DIR) / "tests" / "fuzz";
  std::size_t count = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = base / kind / target;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                            std::istreambuf_iterator<char>());
      INFO("input ", f.string());
      // A copy of exactly the input's size, as libFuzzer gives it (ASan sees an overread).
      auto* copy = new std::uint8_t[bytes.size() + 1];
      std::copy(bytes.begin(), bytes.end(), copy);
      CHECK_NOTHROW(entry(copy, bytes.size()));
      delete[] copy;
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("fuzz replay: decode_request corpus and regressions (RFC 6887 §8.2)") {
  CHECK(replay("decode_request", pcpd_fuzz_one_decode_request) > 0);
}
TEST_CASE("fuzz replay: decode_response corpus and regressions (RFC 6887 §8.3, RFC 7220)") {
  CHECK(replay("decode_response", pcpd_fuzz_one_decode_response) > 0);
}
TEST_CASE("fuzz replay: roundtrip corpus and regressions") {
  CHECK(replay("roundtrip", pcpd_fuzz_one_roundtrip) > 0);
}
TEST_CASE("fuzz replay: natpmp corpus and regressions (RFC 6886)") {
  CHECK(replay("natpmp", pcpd_fuzz_one_natpmp) > 0);
}
TEST_CASE("fuzz replay: server corpus and regressions (handle_datagram, handle_natpmp)") {
  CHECK(replay("server", pcpd_fuzz_one_server) > 0);
}
