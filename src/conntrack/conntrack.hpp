// pcpd::ct::Conntrack: the libnetfilter_conntrack adapter. After a mapping is deleted (not merely
// refreshed), forget() drops the connections it created so that no translated or pinholed flow
// outlives it. For checkpointing (RFC 7767, DESIGN.md "Checkpointing") it writes the ct mark bits
// of an elected mapping's connections (mark()), re-announces marked connections to conntrackd
// (touch()) and counts them (count()). Owns Conntrack, FlowTuple, belongs_to(),
// checkpoint_match(). Never runs the conntrack CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/mapping.hpp"
#include "util/result.hpp"

struct nfct_handle;
struct nf_conntrack;

namespace pcpd::ct {

struct FlowTuple {
  wire::IpAddr src{};
  wire::IpAddr dst{};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
};

// Whether the connection (protocol, original and reply tuples) belongs to mapping `m`:
//   MAP NAT44   inbound: orig dst = external endpoint and reply src = internal endpoint;
//               outbound through its SNAT: orig src = internal endpoint, reply dst = external
//   MAP IPv6    orig dst = the pinhole endpoint
//   PEER        orig src = internal endpoint and orig dst = remote endpoint
// Pure, for unit tests.
bool belongs_to(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig, const FlowTuple& reply);

// Whether the connection is one pcpd.nft's elect4/elect6 chains elect for mapping `m` (its election
// keys, see nft/element.hpp), so that marking at election time and the per-packet rule agree:
//   MAP NAT44   orig dst = external endpoint, or orig src = internal endpoint
//   MAP IPv6    orig dst = pinhole endpoint, or orig src = pinhole endpoint
//   PEER        the 5-tuple (orig src = internal endpoint, orig dst = remote endpoint)
// Pure, for unit tests.
bool checkpoint_match(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig);

struct ForgetResult {
  std::size_t deleted = 0;  // entries deleted
  std::size_t failed = 0;   // entries that matched but could not be deleted (other than ENOENT)
};

class Conntrack {
 public:
  static Result<std::unique_ptr<Conntrack>> open();
  ~Conntrack();
  Conntrack(const Conntrack&) = delete;
  Conntrack& operator=(const Conntrack&) = delete;

  // Deletes every conntrack entry belonging to one of `mappings`, with one table dump.
  // Fails only when the table cannot be read.
  [[nodiscard]] Result<ForgetResult> forget(std::span<const core::Mapping> mappings);

  struct MarkResult {
    std::size_t updated = 0;  // entries updated
    std::size_t failed = 0;   // updates refused (other than ENOENT: the entry ended meanwhile)
  };
  // For every entry matching one of `mappings` (checkpoint_match()): new mark = (mark & ~clear)
  // | set, written with a conntrack update (orig tuple + mark, no NLM_F_CREATE). When `set` is
  // non-zero every matching entry is updated even if its mark already has the bits, so the kernel
  // reports its full state (conntrackd replicates it now); otherwise only entries whose mark
  // changes are. One table dump. Fails only when the table cannot be read.
  [[nodiscard]] Result<MarkResult> mark(std::span<const core::Mapping> mappings, std::uint32_t set,
                                        std::uint32_t clear);
  // ct-touch (ha-recipe §2.4): every entry with (mark & bits) != 0 gets an update carrying its own
  // mark; the kernel reports it although nothing changed (the conntrack CLI skips such no-op
  // updates).
  [[nodiscard]] Result<MarkResult> touch(std::uint32_t bits);
  // Entries with (mark & bits) != 0.
  [[nodiscard]] Result<std::size_t> count(std::uint32_t bits);

 private:
  // Clones of the entries `keep` accepts, from one dump of the whole table (caller destroys).
  Result<std::vector<nf_conntrack*>> collect(const std::function<bool(const nf_conntrack*)>& keep);
  MarkResult update_marks(const std::vector<nf_conntrack*>& entries, std::uint32_t set,
                                  std::uint32_t clear, bool always);
  Conntrack(nfct_handle* dump, nfct_handle* cmd) : dump_(dump), cmd_(cmd) {}
  nfct_handle* dump_;
  nfct_handle* cmd_;
};

}  // namespace pcpd::ct
