// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::EpochStore: the epoch origin persisted in state_dir/epoch, so that a restart
// whose mappings were fully recovered from the kernel keeps the epoch continuous (RFC 6887 §8.5,
// R-EPOCH-3, docs/design.md "Epoch"). The origin is on CLOCK_BOOTTIME, which only means something
// within one boot: the record carries the kernel's boot id.
// File format (text): "boot_id=<uuid>\norigin_ms=<int>\n".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "util/result.hpp"

namespace pcpd::daemon {

struct EpochRecord {
  std::string boot_id;
  core::Millis origin{0};
  friend bool operator==(const EpochRecord&, const EpochRecord&) = default;
};

[[nodiscard]] std::string format_epoch_record(const EpochRecord& record);
// nullopt on anything malformed (missing key, bad number, empty boot id).
[[nodiscard]] std::optional<EpochRecord> parse_epoch_record(std::string_view text);

// R-EPOCH-3: keep the stored origin only when it is from this boot, the mapping state was fully
// recovered and the origin is not in the future.
[[nodiscard]] bool keep_epoch(const std::optional<EpochRecord>& stored, std::string_view boot_id,
                              bool fully_recovered, core::Millis now);

// The current boot id (/proc/sys/kernel/random/boot_id), without the newline; nullopt if
// unreadable.
[[nodiscard]] std::optional<std::string> read_boot_id(
    const std::string& path = "/proc/sys/kernel/random/boot_id");

class EpochStore {
 public:
  explicit EpochStore(std::string state_dir);
  [[nodiscard]] std::optional<EpochRecord> load() const;
  // Writes atomically (temporary file, fsync, rename); creates state_dir (one level) if missing.
  [[nodiscard]] Result<void> save(const EpochRecord& record) const;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace pcpd::daemon
