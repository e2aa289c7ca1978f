// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/epoch_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include "util/unique_fd.hpp"

namespace pcpd::daemon {

std::string format_epoch_record(const EpochRecord& record) {
  return "boot_id=" + record.boot_id + "\norigin_ms=" + std::to_string(record.origin.count()) + "\n";
}

std::optional<EpochRecord> parse_epoch_record(std::string_view text) {
  std::optional<std::string> boot_id;
  std::optional<std::int64_t> origin;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto key = line.substr(0, eq);
    auto value = line.substr(eq + 1);
    if (key == "boot_id") {
      if (value.empty()) return std::nullopt;
      boot_id = std::string(value);
    } else if (key == "origin_ms") {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc{} || p != value.data() + value.size() || value.empty() || v < 0)
        return std::nullopt;
      origin = v;
    } else {
      return std::nullopt;
    }
  }
  if (!boot_id || !origin) return std::nullopt;
  return EpochRecord{*boot_id, core::Millis(*origin)};
}

bool keep_epoch(const std::optional<EpochRecord>& stored, std::string_view boot_id,
                bool fully_recovered, core::Millis now) {
  return stored.has_value() && fully_recovered && !boot_id.empty() && stored->boot_id == boot_id &&
         stored->origin <= now;
}

std::optional<std::string> read_boot_id(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  if (!in || !std::getline(in, id) || id.empty()) return std::nullopt;
  return id;
}

EpochStore::EpochStore(std::string state_dir) : dir_(std::move(state_dir)), path_(dir_ + "/epoch") {}

std::optional<EpochRecord> EpochStore::load() const {
  std::ifstream in(path_);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return parse_epoch_record(text.str());
}

Result<void> EpochStore::save(const EpochRecord& record) const {
  if (::mkdir(dir_.c_str(), 0750) != 0 && errno != EEXIST) return fail(ErrorDomain::Io, errno, "mkdir state_dir");
  const std::string tmp = path_ + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return fail(ErrorDomain::Io, errno, "open epoch.tmp");
  const std::string text = format_epoch_record(record);
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, "write epoch.tmp");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail(ErrorDomain::Io, errno, "fsync epoch.tmp");
  fd.reset();
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return fail(ErrorDomain::Io, errno, "rename epoch");
  return {};
}

}  // namespace pcpd::daemon
