// pcpd::ct::Conntrack: the libnetfilter_conntrack adapter. After a mapping is deleted (not merely
// refreshed), forget() drops the connections it created so that no translated or pinholed flow
// outlives it. Owns Conntrack, FlowTuple, belongs_to(). Never runs the conntrack CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/mapping.hpp"
#include "util/result.hpp"

struct nfct_handle;

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

 private:
  Conntrack(nfct_handle* dump, nfct_handle* cmd) : dump_(dump), cmd_(cmd) {}
  nfct_handle* dump_;
  nfct_handle* cmd_;
};

}  // namespace pcpd::ct
