// SPDX-License-Identifier: GPL-2.0-or-later
// Shared by the libFuzzer targets: FUZZ_CHECK fails the input when an invariant does not hold,
// naming the check. Under libFuzzer it aborts (a crash: the input is saved); in the doctest replay
// of the corpus (PCPD_FUZZ_REPLAY, tests/unit/fuzz.cmake) it throws, and the test names the file.
// Active in release builds too (no assert(), no NDEBUG).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef PCPD_FUZZ_REPLAY
#define PCPD_FUZZ_FAIL(where, what) throw std::runtime_error(std::string(where) + ": invariant failed: " + (what))
#else
#define PCPD_FUZZ_FAIL(where, what)                                      \
  do {                                                                   \
    std::fprintf(stderr, "%s: invariant failed: %s\n", where, what);     \
    std::abort();                                                        \
  } while (0)
#endif

#define PCPD_FUZZ_STR2(x) #x
#define PCPD_FUZZ_STR(x) PCPD_FUZZ_STR2(x)
#define FUZZ_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) PCPD_FUZZ_FAIL(__FILE__ ":" PCPD_FUZZ_STR(__LINE__), #cond); \
  } while (0)
