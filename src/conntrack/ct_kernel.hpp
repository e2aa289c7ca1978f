// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct::CtKernel: the seam between ConntrackSync and the kernel's conntrack table. The netlink
// implementation is NetlinkCtKernel (ct_netlink.hpp); unit tests use a fake table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "conntrack/flow_match.hpp"
#include "util/result.hpp"

namespace pcpd::ct {

// One conntrack entry as ctnetlink describes it: what pcpd matches on and what it needs to name
// the entry again (family, protocol, original tuple, zone).
struct CtEntry {
  std::uint8_t family = 0;    // AF_INET or AF_INET6
  std::uint8_t protocol = 0;  // IANA number
  FlowTuple orig;
  FlowTuple reply;
  std::uint32_t mark = 0;
  std::uint16_t zone = 0;
};

// A change to one entry: delete it, or new mark = (mark & ~(set | clear)) | set, done by the
// kernel in one step (CTA_MARK with CTA_MARK_MASK), so a bit the nft rules set meanwhile is kept.
// Every mark write is reported to conntrackd even when the mark stays the same (ct-touch).
struct CtWrite {
  CtEntry entry;
  bool remove = false;
  std::uint32_t set = 0;
  std::uint32_t clear = 0;
};

struct CtWriteResult {
  std::size_t done = 0;    // applied
  std::size_t gone = 0;    // ENOENT: the entry ended meanwhile
  std::size_t failed = 0;  // refused otherwise
  int first_errno = 0;
};

class CtKernel {
 public:
  virtual ~CtKernel() = default;
  // Every entry with (mark & mask) == value, both families, filtered by the kernel (only those
  // cross to user space, the walk itself still visits the whole table). Returns how many.
  [[nodiscard]] virtual Result<std::size_t> walk(std::uint32_t mask, std::uint32_t value,
                                                 const std::function<void(const CtEntry&)>& each) = 0;
  // The entry with `key`'s family, protocol, original tuple and zone (a hash lookup in the
  // kernel); nullopt when there is none.
  [[nodiscard]] virtual Result<std::optional<CtEntry>> get(const CtEntry& key) = 0;
  // The writes, many per netlink send.
  virtual CtWriteResult write(std::span<const CtWrite> writes) = 0;

  // The connections pcpd.nft announces (NFLOG group `group`, one message per new connection of
  // a mapping): binds the group. Fails when another process holds it or the kernel has no
  // nfnetlink_log; pcpd then finds connections by walks only.
  [[nodiscard]] virtual Result<void> learn_start(std::uint16_t group) = 0;
  // Readable when announcements are queued; -1 when not learning.
  [[nodiscard]] virtual int learn_fd() const = 0;
  // Hands over every queued announcement, as a key (family, protocol, original tuple), without
  // blocking. `lost` is set when the kernel dropped some (the socket overflowed): from then on
  // the caller cannot trust what it learned until it has walked the table again.
  [[nodiscard]] virtual Result<std::size_t> learn(const std::function<void(const CtEntry&)>& each, bool& lost) = 0;
};

}  // namespace pcpd::ct
