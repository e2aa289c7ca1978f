// SPDX-License-Identifier: GPL-2.0-or-later
// LinkKey: key bytes held in memory that is wiped on release (sodium_memzero).
#include "ha/link_key.hpp"

#include <cstdio>

#include <sodium.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <utility>

namespace pcpd::ha {

std::optional<std::string> key_file_problem(mode_t mode, gid_t file_gid, gid_t own_gid,
                                            bool in_credentials_dir) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  if ((mode & 007) != 0)
    return std::string("mode ") + text + " lets others access the key; chmod o= it (0600 or 0640 root:pcpd)";
  if ((mode & 020) != 0) return std::string("mode ") + text + " lets the group write the key; chmod g-w it";
  if ((mode & 070) != 0 && file_gid != own_gid && !in_credentials_dir)
    return std::string("mode ") + text + " lets group " + std::to_string(file_gid) +
           " read the key, which is not pcpd's group; chown root:pcpd it, or chmod 0600 and chown it to pcpd's user";
  return std::nullopt;
}

bool crypto_start() { return sodium_init() >= 0; }

Result<LinkKey> LinkKey::from_bytes(std::span<const std::uint8_t> bytes) {
  if (!crypto_start()) return fail(ErrorDomain::State, 0, "sodium_init");
  if (bytes.size() < kMinKeyBytes) return fail(ErrorDomain::Config, EINVAL, "peer key shorter than 32 bytes");
  return LinkKey(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

LinkKey::LinkKey(LinkKey&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }

LinkKey& LinkKey::operator=(LinkKey&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

LinkKey::~LinkKey() { wipe(); }

void LinkKey::wipe() {
  if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
  bytes_.clear();
}

Result<LinkKey> load_link_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorDomain::Io, errno != 0 ? errno : ENOENT, "open peer key file");
  std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return fail(ErrorDomain::Io, EIO, "read peer key file");
  auto key = LinkKey::from_bytes(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

std::uint32_t random_sender_id() {
  if (!crypto_start()) return 0;
  std::uint32_t id = 0;
  while (id == 0) id = randombytes_random();
  return id;
}

}  // namespace pcpd::ha
