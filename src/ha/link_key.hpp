// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ha::LinkKey: the shared secret that authenticates the peer link (HMAC-SHA256, libsodium).
// Owns LinkKey, load_link_key(), random_sender_id(). Reads one file at startup; no sockets.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace pcpd::ha {

inline constexpr std::size_t kMinKeyBytes = 32;

// Why a key file with these permissions must not be used (the text names the fix), or nullopt.
// Others never get access. Group read is accepted only when the group is pcpd's own
// (`root:pcpd 0640`, the usual way to hand a daemon a root-owned secret; the unit's user pcpd
// cannot read a root-owned 0600 file), or when the file is in systemd's credentials directory
// (LoadCredential=: systemd restricts that directory to the service, and its ACLs show up in
// the group bits). Never group write.
[[nodiscard]] std::optional<std::string> key_file_problem(mode_t mode, gid_t file_gid, gid_t own_gid,
                                                          bool in_credentials_dir);

// The key bytes, wiped on destruction. Move-only. Both routers must hold byte-identical keys
// (the whole file is the key, a trailing newline included).
class LinkKey {
 public:
  // Error{Config, EINVAL} when shorter than kMinKeyBytes; Error{State} when libsodium fails to start.
  [[nodiscard]] static Result<LinkKey> from_bytes(std::span<const std::uint8_t> bytes);

  LinkKey(LinkKey&& other) noexcept;
  LinkKey& operator=(LinkKey&& other) noexcept;
  LinkKey(const LinkKey&) = delete;
  LinkKey& operator=(const LinkKey&) = delete;
  ~LinkKey();

  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return bytes_; }

 private:
  explicit LinkKey(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  void wipe();
  std::vector<std::uint8_t> bytes_;
};

// Reads the key file (at least kMinKeyBytes bytes). Error{Io, errno} when unreadable,
// Error{Config, EINVAL} when too short.
[[nodiscard]] Result<LinkKey> load_link_key(const std::string& path);

// A random non-zero sender id, drawn once per process start (the peer sees a new id as a restart).
[[nodiscard]] std::uint32_t random_sender_id();

// sodium_init(); safe to call more than once. False when libsodium cannot start.
[[nodiscard]] bool crypto_start();

}  // namespace pcpd::ha
