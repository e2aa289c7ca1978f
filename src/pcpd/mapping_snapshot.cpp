#include "pcpd/mapping_snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/mapping_record.hpp"
#include "util/unique_fd.hpp"
#include "wire/messages.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::daemon {
namespace {

using core::get_u64;
using core::put_u64;

constexpr std::array<std::uint8_t, 8> kMagic = {'P', 'C', 'P', 'D', 'S', 'N', 'A', 'P'};
constexpr std::size_t kTrailer = 8;
// Smallest header: magic, version, boot id length 0, generation, handle, written_at, count.
constexpr std::size_t kMinHeader = kMagic.size() + 2 + 1 + 4 + 8 + 8 + 8;
// written_at + a record's largest remaining lifetime must fit the boot clock's int64 ms.
constexpr std::uint64_t kMaxWrittenAt =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() - core::kMappingRecordMaxRemaining.count());

Result<void> write_all(int fd, std::span<const std::uint8_t> bytes, const char* what) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, what);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

std::size_t stamp_size(const SnapshotStamp& s) { return 1 + std::min(s.boot_id.size(), kMaxBootId) + 4 + 8; }

void put_stamp(wire::Writer& w, const SnapshotStamp& s) {
  const std::size_t nb = std::min(s.boot_id.size(), kMaxBootId);
  w.u8(static_cast<std::uint8_t>(nb));
  w.text(std::string_view(s.boot_id).substr(0, nb));
  w.u32(s.generation);
  put_u64(w, s.table_handle);
}

bool get_stamp(wire::Reader& r, SnapshotStamp& s) {
  const std::uint8_t nb = r.u8();
  if (!r.ok() || nb > kMaxBootId) return false;
  s.boot_id = std::string(r.text(nb));
  s.generation = r.u32();
  s.table_handle = get_u64(r);
  return r.ok();
}

bool beyond_core_limits(const core::Mapping& m) {
  return m.filters.size() > wire::kMaxFilters || m.description.size() > wire::kMaxDescription;
}

// Core never holds more than kMaxFilters (one request's worth) or a longer description, so the
// decoders reject anything beyond; such a mapping is stored cut (a copy in `scratch`).
const core::Mapping& within_core_limits(const core::Mapping& m, core::Mapping& scratch) {
  if (!beyond_core_limits(m)) return m;
  scratch = m;
  if (scratch.filters.size() > wire::kMaxFilters) scratch.filters.resize(wire::kMaxFilters);
  if (scratch.description.size() > wire::kMaxDescription) scratch.description.resize(wire::kMaxDescription);
  return scratch;
}

const char* to_string(SnapshotError e) {
  switch (e) {
    case SnapshotError::BadMagic: return "bad_magic";
    case SnapshotError::BadVersion: return "bad_version";
    case SnapshotError::Truncated: return "truncated";
    case SnapshotError::BadChecksum: return "bad_checksum";
    case SnapshotError::BadHeader: return "bad_header";
    case SnapshotError::BadRecord: return "bad_record";
    case SnapshotError::CountMismatch: return "count_mismatch";
  }
  return "unknown";
}

const char* to_string(SnapshotReject r) {
  switch (r) {
    case SnapshotReject::NoFile: return "no_snapshot";
    case SnapshotReject::Unreadable: return "unreadable";
    case SnapshotReject::Corrupt: return "corrupt";
    case SnapshotReject::OtherBoot: return "boot_id_changed";
    case SnapshotReject::GenerationChanged: return "nft_generation_changed";
    case SnapshotReject::TableChanged: return "table_handle_changed";
    case SnapshotReject::NoStamp: return "kernel_state_unreadable";
  }
  return "unknown";
}

std::uint64_t snapshot_checksum(std::span<const std::uint8_t> bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
  for (std::uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;  // FNV prime
  }
  return h;
}

std::vector<std::uint8_t> encode_snapshot(const SnapshotStamp& stamp, std::span<const core::Mapping> mappings,
                                          core::Millis now) {
  const core::Millis written_at = now < core::Millis(0) ? core::Millis(0) : now;
  core::Mapping scratch;
  std::size_t size = kMagic.size() + 2 + stamp_size(stamp) + 8 + 8 + kTrailer;
  for (const auto& m : mappings) size += core::mapping_record_size(within_core_limits(m, scratch));
  std::vector<std::uint8_t> out(size);
  wire::Writer w(out);
  w.bytes(kMagic);
  w.u16(kSnapshotVersion);
  put_stamp(w, stamp);
  put_u64(w, static_cast<std::uint64_t>(written_at.count()));
  put_u64(w, mappings.size());
  for (const auto& m : mappings) core::put_mapping(w, within_core_limits(m, scratch), written_at);
  // Every record is within the record's limits (stored() cuts to core's, which are lower), so
  // the sizes above are exact; anything else is a bug, and an empty file is refused as BadMagic.
  if (!w.ok() || w.size() != size - kTrailer) return {};
  put_u64(w, snapshot_checksum(std::span<const std::uint8_t>(out).first(size - kTrailer)));
  return out;
}

tl::expected<Snapshot, SnapshotError> decode_snapshot(std::span<const std::uint8_t> bytes) {
  using tl::unexpected;
  if (bytes.size() < kMagic.size() || std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0)
    return unexpected(SnapshotError::BadMagic);
  if (bytes.size() < kMagic.size() + 2) return unexpected(SnapshotError::Truncated);
  const auto version = static_cast<std::uint16_t>((bytes[8] << 8) | bytes[9]);
  if (version != kSnapshotVersion) return unexpected(SnapshotError::BadVersion);
  if (bytes.size() < kMinHeader + kTrailer) return unexpected(SnapshotError::Truncated);
  const auto body = bytes.first(bytes.size() - kTrailer);
  wire::Reader trailer(bytes.last(kTrailer));
  if (get_u64(trailer) != snapshot_checksum(body)) return unexpected(SnapshotError::BadChecksum);

  wire::Reader r(body);
  r.skip(kMagic.size() + 2);  // magic, version: checked above
  Snapshot s;
  if (!get_stamp(r, s.stamp)) return unexpected(SnapshotError::BadHeader);
  const std::uint64_t written_at = get_u64(r);
  const std::uint64_t count = get_u64(r);
  if (!r.ok() || written_at > kMaxWrittenAt) return unexpected(SnapshotError::BadHeader);
  s.written_at = core::Millis(static_cast<std::int64_t>(written_at));
  // Never trust the count for an allocation beyond what the bytes can hold.
  if (count > r.remaining() / core::kMappingRecordFixedSize) return unexpected(SnapshotError::CountMismatch);
  s.mappings.resize(static_cast<std::size_t>(count));
  for (auto& m : s.mappings) {
    if (r.at_end()) return unexpected(SnapshotError::CountMismatch);
    if (!core::get_mapping(r, s.written_at, m) || beyond_core_limits(m)) return unexpected(SnapshotError::BadRecord);
  }
  if (!r.at_end()) return unexpected(SnapshotError::CountMismatch);
  return s;
}

std::optional<SnapshotReject> check_stamp(const SnapshotStamp& saved, const SnapshotStamp& current) {
  if (saved.boot_id.empty() || saved.boot_id != current.boot_id) return SnapshotReject::OtherBoot;
  if (saved.generation != current.generation) return SnapshotReject::GenerationChanged;
  if (saved.table_handle == 0 || saved.table_handle != current.table_handle) return SnapshotReject::TableChanged;
  return std::nullopt;
}

namespace {

Result<void> replace_file(const std::string& path, std::span<const std::uint8_t> bytes, bool durable) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return fail(ErrorDomain::Io, errno, "open state file .tmp");
  if (auto r = write_all(fd.get(), bytes, "write state file .tmp"); !r) {
    ::unlink(tmp.c_str());
    return r;
  }
  if (durable && ::fsync(fd.get()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorDomain::Io, e, "fsync state file .tmp");
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorDomain::Io, e, "rename state file");
  }
  if (!durable) return {};
  // The rename itself survives a crash only once the directory is on disk.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  return {};
}

// nullopt when there is no file. With `take`, the file is unlinked before it is read.
Result<std::optional<std::vector<std::uint8_t>>> read_file(const std::string& path, bool take) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::vector<std::uint8_t>>{};
    const int e = errno;
    if (take) ::unlink(path.c_str());
    return fail(ErrorDomain::Io, e, "open state file");
  }
  // Gone before it is used: a crash while restoring falls back to the dump next time.
  const int unlinked = !take || ::unlink(path.c_str()) == 0 ? 0 : errno;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(ErrorDomain::Io, errno, "stat state file");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, "read state file");
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  // A snapshot that cannot be removed could be used twice: refuse it.
  if (unlinked != 0) return fail(ErrorDomain::Io, unlinked, "unlink state file");
  return std::optional<std::vector<std::uint8_t>>(std::move(bytes));
}

}  // namespace

Result<void> write_snapshot_file(const std::string& path, std::span<const std::uint8_t> bytes) {
  return replace_file(path, bytes, true);
}

Result<void> replace_state_file(const std::string& path, std::span<const std::uint8_t> bytes) {
  return replace_file(path, bytes, false);
}

Result<std::optional<std::vector<std::uint8_t>>> take_snapshot_file(const std::string& path) {
  return read_file(path, true);
}

Result<std::optional<std::vector<std::uint8_t>>> read_state_file(const std::string& path) {
  return read_file(path, false);
}

}  // namespace pcpd::daemon
