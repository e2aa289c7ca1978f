// SPDX-License-Identifier: GPL-2.0-or-later
// The key file's permissions (ha::key_file_problem): the recipes operators are given must pass,
// a key others (or another group) can read must not.
#include <doctest/doctest.h>

#include "ha/link_key.hpp"

using pcpd::ha::key_file_problem;

namespace {
constexpr gid_t kPcpd = 998;
constexpr gid_t kRoot = 0;
}  // namespace

TEST_CASE("ha key file: 0600 or 0400 pass, whoever owns them (pcpd opens it or cannot read it)") {
  CHECK_FALSE(key_file_problem(0100600, kRoot, kPcpd, false));
  CHECK_FALSE(key_file_problem(0100400, kPcpd, kPcpd, false));
}

TEST_CASE("ha key file: root:pcpd 0640 passes (the documented recipe under the unit's user)") {
  CHECK_FALSE(key_file_problem(0100640, kPcpd, kPcpd, false));
  CHECK_FALSE(key_file_problem(0100440, kPcpd, kPcpd, false));
}

TEST_CASE("ha key file: group read for another group, group write, or any access for others: refused") {
  const auto other_group = key_file_problem(0100640, kRoot, kPcpd, false);
  REQUIRE(other_group);
  CHECK(other_group->find("not pcpd's group") != std::string::npos);
  CHECK(other_group->find("0640") != std::string::npos);
  REQUIRE(key_file_problem(0100660, kPcpd, kPcpd, false));
  CHECK(key_file_problem(0100660, kPcpd, kPcpd, false)->find("write") != std::string::npos);
  for (mode_t m : {0100604, 0100644, 0100602, 0100601, 0100666})
    CHECK(key_file_problem(m, kPcpd, kPcpd, true));
}

TEST_CASE("ha key file: in systemd's credentials directory the group bits (its ACL mask) are systemd's") {
  CHECK_FALSE(key_file_problem(0100440, kRoot, kPcpd, true));
  CHECK(key_file_problem(0100444, kRoot, kPcpd, true));  // others: never
}
