// SPDX-License-Identifier: GPL-2.0-or-later
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

void StateChecksum::mix(std::uint64_t word) {
  h_ = (h_ ^ word) * 0xBF58476D1CE4E5B9ull;
  h_ ^= h_ >> 31;
}

void StateChecksum::update(std::span<const std::uint8_t> b) {
  total_ += b.size();
  std::size_t i = 0;
  for (; carry_len_ > 0 && carry_len_ < 8 && i < b.size(); ++i) carry_ |= std::uint64_t{b[i]} << (8 * carry_len_++);
  if (carry_len_ == 8) {
    mix(carry_);
    carry_ = 0;
    carry_len_ = 0;
  }
  for (; i + 8 <= b.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, b.data() + i, 8);  // host order: the files are read on the host that wrote them
    mix(w);
  }
  for (; i < b.size(); ++i) carry_ |= std::uint64_t{b[i]} << (8 * carry_len_++);
}

std::uint64_t StateChecksum::value() const {
  std::uint64_t h = (h_ ^ carry_) * 0x94D049BB133111EBull;
  h = (h ^ total_) * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

std::uint64_t state_checksum(std::span<const std::uint8_t> bytes) {
  StateChecksum c;
  c.update(bytes);
  return c.value();
}

SnapshotEncoder::SnapshotEncoder(const SnapshotStamp& stamp, std::uint64_t count, core::Millis now)
    : count_(count), written_at_(now < core::Millis(0) ? core::Millis(0) : now) {
  buf_.resize(kMagic.size() + 2 + stamp_size(stamp) + 8 + 8);
  wire::Writer w(buf_);
  w.bytes(kMagic);
  w.u16(kSnapshotVersion);
  put_stamp(w, stamp);
  put_u64(w, static_cast<std::uint64_t>(written_at_.count()));
  put_u64(w, count);
  PCPD_ASSERT(w.ok() && w.size() == buf_.size());
}

void SnapshotEncoder::add(const core::Mapping& m) {
  PCPD_ASSERT(!sealed_);
  core::Mapping scratch;
  const core::Mapping& s = within_core_limits(m, scratch);
  const std::size_t at = buf_.size();
  const std::size_t size = core::mapping_record_size(s);
  buf_.resize(at + size);
  wire::Writer w(std::span<std::uint8_t>(buf_).subspan(at));
  core::put_mapping(w, s, written_at_);
  // Every record is within the record's limits (within_core_limits cuts to core's, which are
  // lower), so the size is exact; anything else is a bug.
  PCPD_ASSERT(w.ok() && w.size() == size);
  ++added_;
}

bool SnapshotEncoder::finish() {
  if (added_ != count_) return false;
  sum_.update(buf_);
  const std::size_t at = buf_.size();
  buf_.resize(at + kTrailer);
  wire::Writer w(std::span<std::uint8_t>(buf_).subspan(at));
  put_u64(w, sum_.value());
  sealed_ = true;  // the rest of buf_ is in the checksum, and the trailer is not part of it
  return true;
}

std::span<const std::uint8_t> SnapshotEncoder::take() {
  if (!sealed_) sum_.update(buf_);
  out_.swap(buf_);
  buf_.clear();
  return out_;
}

std::vector<std::uint8_t> encode_snapshot(const SnapshotStamp& stamp, std::span<const core::Mapping> mappings,
                                          core::Millis now) {
  SnapshotEncoder e(stamp, mappings.size(), now);
  std::vector<std::uint8_t> out;
  for (const auto& m : mappings) e.add(m);
  if (!e.finish()) return {};
  const auto bytes = e.take();
  out.assign(bytes.begin(), bytes.end());
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
  if (get_u64(trailer) != state_checksum(body)) return unexpected(SnapshotError::BadChecksum);

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
  auto f = StateFileWriter::open(path);
  if (!f) return tl::unexpected(f.error());
  if (auto r = f->write(bytes); !r) return r;
  return f->commit(durable);
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

Result<StateFileWriter> StateFileWriter::open(const std::string& path) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return fail(ErrorDomain::Io, errno, "open state file .tmp");
  return StateFileWriter(path, std::move(fd));
}

Result<void> StateFileWriter::write(std::span<const std::uint8_t> bytes) {
  if (!fd_) return fail(ErrorDomain::Io, EBADF, "write state file .tmp");
  auto r = write_all(fd_.get(), bytes, "write state file .tmp");
  if (!r) discard();
  return r;
}

Result<void> StateFileWriter::commit(bool durable) {
  if (!fd_) return fail(ErrorDomain::Io, EBADF, "rename state file");
  if (durable && ::fsync(fd_.get()) != 0) {
    const int e = errno;
    discard();
    return fail(ErrorDomain::Io, e, "fsync state file .tmp");
  }
  fd_.reset();
  const std::string tmp = path_ + ".tmp";
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorDomain::Io, e, "rename state file");
  }
  if (!durable) return {};
  // The rename itself survives a crash only once the directory is on disk.
  const auto slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  return {};
}

void StateFileWriter::discard() {
  if (!fd_) return;
  fd_.reset();
  ::unlink((path_ + ".tmp").c_str());
}

StateFileWriter::~StateFileWriter() { discard(); }

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
