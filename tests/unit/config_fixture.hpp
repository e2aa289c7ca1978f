// SPDX-License-Identifier: GPL-2.0-or-later
// Helpers shared by the config parser tests: a minimal valid file and an error expectation.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "config/config_parser.hpp"

namespace pcpd::config::test {

// The smallest valid pcpd.conf: lines 1-3.
inline const std::string kMinimal = "[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n";

inline Config parse(const std::string& text) { return parse_config_text(text, "test.conf"); }

// Parses `text`, expects a ConfigError at `line` of test.conf whose message starts with
// "test.conf:<line>: " and contains `needle`.
inline void expect_error(const std::string& text, int line, const std::string& needle) {
  CAPTURE(text);
  try {
    (void)parse(text);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(e.file == "test.conf");
    CHECK(e.line == line);
    CHECK(what.rfind("test.conf:" + std::to_string(line) + ": ", 0) == 0);
    CHECK(what.find(needle) != std::string::npos);
  }
}

}  // namespace pcpd::config::test
