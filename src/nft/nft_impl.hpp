// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::NftDatapath::Impl: the state the three parts of the nft backend share. Private to
// pcp_nft. The parts: nft_datapath.cpp (transactions: apply, the external interface, counters),
// nft_schema.cpp (the table's sets checked against the layout, probes, gc-interval, the
// ruleset stamp, open) and nft_recovery.cpp (recovery by set dump, the table watch and
// re-install). Sequence numbers belong to NetlinkSession.
#pragma once

#include <libnftnl/set.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nft/batch_builder.hpp"
#include "nft/element.hpp"
#include "nft/netlink_session.hpp"
#include "nft/nft_datapath.hpp"

namespace pcpd::nft {

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;

struct NftDatapath::Impl {
  TableSpec spec;
  std::unique_ptr<NetlinkSession> nl;
  NftCounters counters;

  // Sends `build(begin_seq)`'s batch; when every refusal is an ENOENT on a deletion (the kernel
  // already expired the element: same end state), resends once without those deletions.
  Result<void> transact(const std::function<Result<Batch>(std::uint32_t, const std::vector<bool>&)>& build);
  // `changes` as one Grouping::PerSet batch: true when committed, false when refused.
  Result<bool> try_grouped(const core::ChangeSet& changes);
  // Every element of `set` (a dump), or with `only` just the element with its key (nft get
  // element; empty when the set has none).
  Result<std::vector<DumpedElement>> read_elements(std::string_view set, const Element* only = nullptr);
  // Whether the kernel restarts an element's timer when the element is re-added without
  // NLM_F_EXCL (Linux 6.10+, 4201f3938914; older kernels accept the message and change nothing).
  bool probe_refresh_in_place();
  bool refresh_in_place = false;
  void count(const Batch& batch);

  // Datapath failure recovery (check_table(), reinstall()).
  std::uint64_t table_handle = 0;             // handle of the table the mappings are in
  bool table_lost = false;                    // seen Missing since the last reinstall()
  std::vector<std::string> external_ifnames;  // the last set_external_interfaces()
  // The handle of table inet <spec.table>; nullopt when there is no such table.
  Result<std::optional<std::uint64_t>> read_table_handle();
  // What does not match in the table's sets (empty: all match); fails with ENOENT without table.
  Result<std::vector<std::string>> verify_sets();
  // The sets of the table as the kernel describes them (nft list sets table inet <table>).
  Result<std::vector<SetPtr>> dump_sets();
  // The table's timeout sets of pcpd's layout: (id, kernel gc-interval in ms, 0 when unset).
  struct GcState {
    SetId id;
    std::uint32_t gc_ms;
    nftnl_set* set;  // in the dump it came from
  };
  static std::vector<GcState> gc_states(const std::vector<SetPtr>& sets);
};

}  // namespace pcpd::nft
