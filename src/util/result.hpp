// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::Result: the return type of every fallible call on the packet path and of the backends.
// Owns: Error and the Result alias. Includes only the standard library and tl::expected.
#pragma once

#include <cstring>
#include <string>

#include <tl/expected.hpp>

namespace pcpd {

enum class ErrorDomain { Netlink, Conntrack, Io, Config, Protocol, State };

// What went wrong, without formatting on the hot path: a domain, an errno or code, and a static
// context string (never a pointer to a temporary).
struct Error {
  ErrorDomain domain;
  int code;             // errno for Netlink/Conntrack/Io, otherwise domain-specific
  const char* context;  // static string: which step failed
  int index = -1;       // for a batch: which change of the ChangeSet the kernel refused, if known
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ErrorDomain d, int code, const char* context, int index = -1) {
  return tl::unexpected<Error>(Error{d, code, context, index});
}

const char* to_string(ErrorDomain d);

// "context: strerror(code)", for logs (not for the packet path's hot loop).
inline std::string error_text(const Error& e) {
  return std::string(e.context) + ": " + std::strerror(e.code);
}

}  // namespace pcpd

#define PCPD_ASSERT(cond)                                                     \
  do {                                                                        \
    if (!(cond)) ::pcpd::assert_failed(#cond, __FILE__, __LINE__);            \
  } while (0)

namespace pcpd {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line);
}
