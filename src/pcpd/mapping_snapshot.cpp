#include "pcpd/mapping_snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"
#include "wire/messages.hpp"

namespace pcpd::daemon {
namespace {

constexpr std::array<std::uint8_t, 8> kMagic = {'P', 'C', 'P', 'D', 'S', 'N', 'A', 'P'};
constexpr std::size_t kMaxBootId = 64;
constexpr std::size_t kTrailer = 8;
// Smallest header: magic, version, boot id length 0, generation, handle, count.
constexpr std::size_t kMinHeader = kMagic.size() + 2 + 1 + 4 + 8 + 8;
// Smallest record: 4 flag bytes, four all-zero addresses (1 each), three ports, nonce, expires,
// lifetime, filter count, description length.
constexpr std::size_t kMinRecord = 4 + 4 * 1 + 3 * 2 + 12 + 8 + 4 + 1 + 2;
constexpr std::uint8_t kThirdParty = 0x1;
constexpr std::uint8_t kCheckpoint = 0x2;

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void addr(const wire::IpAddr& a) {
    if (a == wire::IpAddr{}) {
      u8(0);  // :: (e.g. the remote address of every MAP)
    } else if (a.is_v4()) {
      u8(4);
      bytes(a.bytes.data() + 12, 4);
    } else {
      u8(16);
      bytes(a.bytes.data(), 16);
    }
  }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t>& out_;
};

// Bounds-checked little-endian cursor; a read past the end fails for good (sticky).
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data) {}
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  bool bytes(void* out, std::size_t n) {
    if (!take(n)) return false;
    std::memcpy(out, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  // False (and the reader failed or the tag invalid) on anything but tag 0 (::), 4 or 16.
  bool addr(wire::IpAddr& a) {
    const std::uint8_t len = u8();
    if (len == 0 && ok()) {
      a = wire::IpAddr{};
      return true;
    }
    if (len == 4) {
      std::uint8_t b[4];
      if (!bytes(b, 4)) return false;
      a = wire::IpAddr::from_v4((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]});
      return true;
    }
    if (len == 16) return bytes(a.bytes.data(), 16);
    return false;
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::uint64_t le(std::size_t n) {
    if (!take(n)) return 0;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{data_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void encode_record(Writer& w, const core::Mapping& m) {
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u8(static_cast<std::uint8_t>(m.origin));
  w.u8(m.protocol);
  w.u8(static_cast<std::uint8_t>((m.third_party ? kThirdParty : 0) | (m.checkpoint ? kCheckpoint : 0)));
  w.addr(m.internal_addr);
  w.u16(m.internal_port);
  w.addr(m.external_addr);
  w.u16(m.external_port);
  w.addr(m.remote_addr);
  w.u16(m.remote_port);
  w.addr(m.client_addr);
  w.bytes(m.nonce.data(), m.nonce.size());
  w.u64(static_cast<std::uint64_t>(m.expires.count()));
  w.u32(m.lifetime);
  // Core never holds more than kMaxFilters (one request's worth) or a longer description; the
  // encoder stores at most that much so that decode_snapshot() can reject anything beyond.
  const std::size_t nf = std::min(m.filters.size(), wire::kMaxFilters);
  w.u8(static_cast<std::uint8_t>(nf));
  for (std::size_t i = 0; i < nf; ++i) {
    const wire::Filter& f = m.filters[i];
    w.u8(f.prefix_length);
    w.u16(f.remote_port);
    w.addr(f.remote_addr);
  }
  const std::size_t nd = std::min(m.description.size(), wire::kMaxDescription);
  w.u16(static_cast<std::uint16_t>(nd));
  w.bytes(m.description.data(), nd);
}

bool decode_record(Reader& r, core::Mapping& m) {
  const std::uint8_t kind = r.u8();
  const std::uint8_t origin = r.u8();
  m.protocol = r.u8();
  const std::uint8_t flags = r.u8();
  if (!r.ok() || kind > static_cast<std::uint8_t>(core::MappingKind::Peer) ||
      origin > static_cast<std::uint8_t>(core::Origin::NatPmp) || (flags & ~(kThirdParty | kCheckpoint)) != 0)
    return false;
  m.kind = static_cast<core::MappingKind>(kind);
  m.origin = static_cast<core::Origin>(origin);
  m.third_party = (flags & kThirdParty) != 0;
  m.checkpoint = (flags & kCheckpoint) != 0;
  if (!r.addr(m.internal_addr)) return false;
  m.internal_port = r.u16();
  if (!r.addr(m.external_addr)) return false;
  m.external_port = r.u16();
  if (!r.addr(m.remote_addr)) return false;
  m.remote_port = r.u16();
  if (!r.addr(m.client_addr) || !r.bytes(m.nonce.data(), m.nonce.size())) return false;
  m.expires = core::Millis(static_cast<std::int64_t>(r.u64()));
  m.lifetime = r.u32();
  const std::uint8_t nf = r.u8();
  if (!r.ok() || nf > wire::kMaxFilters) return false;
  m.filters.resize(nf);
  for (auto& f : m.filters) {
    f.prefix_length = r.u8();
    f.remote_port = r.u16();
    if (!r.addr(f.remote_addr) || f.prefix_length > 128) return false;
  }
  const std::uint16_t nd = r.u16();
  if (!r.ok() || nd > wire::kMaxDescription) return false;
  m.description.resize(nd);
  return r.bytes(m.description.data(), nd);
}

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

std::vector<std::uint8_t> encode_snapshot(const SnapshotStamp& stamp, std::span<const core::Mapping> mappings) {
  std::vector<std::uint8_t> out;
  out.reserve(kMinHeader + stamp.boot_id.size() + mappings.size() * 64 + kTrailer);
  Writer w(out);
  w.bytes(kMagic.data(), kMagic.size());
  w.u16(kSnapshotVersion);
  const std::size_t nb = std::min(stamp.boot_id.size(), kMaxBootId);
  w.u8(static_cast<std::uint8_t>(nb));
  w.bytes(stamp.boot_id.data(), nb);
  w.u32(stamp.generation);
  w.u64(stamp.table_handle);
  w.u64(mappings.size());
  for (const auto& m : mappings) encode_record(w, m);
  w.u64(snapshot_checksum(out));
  return out;
}

tl::expected<Snapshot, SnapshotError> decode_snapshot(std::span<const std::uint8_t> bytes) {
  using tl::unexpected;
  if (bytes.size() < kMagic.size() || std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0)
    return unexpected(SnapshotError::BadMagic);
  if (bytes.size() < kMagic.size() + 2) return unexpected(SnapshotError::Truncated);
  const auto version = static_cast<std::uint16_t>(bytes[8] | (bytes[9] << 8));
  if (version != kSnapshotVersion) return unexpected(SnapshotError::BadVersion);
  if (bytes.size() < kMinHeader + kTrailer) return unexpected(SnapshotError::Truncated);
  const auto body = bytes.first(bytes.size() - kTrailer);
  Reader trailer(bytes.last(kTrailer));
  if (trailer.u64() != snapshot_checksum(body)) return unexpected(SnapshotError::BadChecksum);

  Reader r(body);
  std::array<std::uint8_t, 10> skip{};
  r.bytes(skip.data(), skip.size());  // magic, version: checked above
  Snapshot s;
  const std::uint8_t nb = r.u8();
  if (!r.ok() || nb > kMaxBootId) return unexpected(SnapshotError::BadHeader);
  s.stamp.boot_id.resize(nb);
  if (!r.bytes(s.stamp.boot_id.data(), nb)) return unexpected(SnapshotError::BadHeader);
  s.stamp.generation = r.u32();
  s.stamp.table_handle = r.u64();
  const std::uint64_t count = r.u64();
  if (!r.ok()) return unexpected(SnapshotError::BadHeader);
  // Never trust the count for an allocation beyond what the bytes can hold.
  if (count > r.remaining() / kMinRecord) return unexpected(SnapshotError::CountMismatch);
  s.mappings.resize(static_cast<std::size_t>(count));
  for (auto& m : s.mappings) {
    if (r.remaining() == 0) return unexpected(SnapshotError::CountMismatch);
    if (!decode_record(r, m)) return unexpected(SnapshotError::BadRecord);
  }
  if (r.remaining() != 0) return unexpected(SnapshotError::CountMismatch);
  return s;
}

std::optional<SnapshotReject> check_stamp(const SnapshotStamp& saved, const SnapshotStamp& current) {
  if (saved.boot_id.empty() || saved.boot_id != current.boot_id) return SnapshotReject::OtherBoot;
  if (saved.generation != current.generation) return SnapshotReject::GenerationChanged;
  if (saved.table_handle == 0 || saved.table_handle != current.table_handle) return SnapshotReject::TableChanged;
  return std::nullopt;
}

Result<void> write_snapshot_file(const std::string& path, std::span<const std::uint8_t> bytes) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return fail(ErrorDomain::Io, errno, "open mappings.snapshot.tmp");
  if (auto r = write_all(fd.get(), bytes, "write mappings.snapshot.tmp"); !r) {
    ::unlink(tmp.c_str());
    return r;
  }
  if (::fsync(fd.get()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorDomain::Io, e, "fsync mappings.snapshot.tmp");
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(ErrorDomain::Io, e, "rename mappings.snapshot");
  }
  // The rename itself survives a crash only once the directory is on disk.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  return {};
}

Result<std::optional<std::vector<std::uint8_t>>> take_snapshot_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::vector<std::uint8_t>>{};
    const int e = errno;
    ::unlink(path.c_str());
    return fail(ErrorDomain::Io, e, "open mappings.snapshot");
  }
  // Gone before it is used: a crash while restoring falls back to the dump next time.
  const int unlinked = ::unlink(path.c_str()) == 0 ? 0 : errno;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(ErrorDomain::Io, errno, "stat mappings.snapshot");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, "read mappings.snapshot");
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  // A snapshot that cannot be removed could be used twice: refuse it.
  if (unlinked != 0) return fail(ErrorDomain::Io, unlinked, "unlink mappings.snapshot");
  return std::optional<std::vector<std::uint8_t>>(std::move(bytes));
}

}  // namespace pcpd::daemon
