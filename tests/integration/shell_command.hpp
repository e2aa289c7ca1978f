// SPDX-License-Identifier: GPL-2.0-or-later
// A shell command's exit status and output (stdout and stderr together), for the kernel tests
// that look at the kernel with the CLIs (nft, conntrack) beside the netlink code under test.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace pcpd::integration {

struct Cmd {
  int rc = -1;
  std::string out;
};

inline Cmd sh(const std::string& cmd) {
  Cmd r;
  FILE* p = popen(("( " + cmd + " ) 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  for (std::size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace pcpd::integration
