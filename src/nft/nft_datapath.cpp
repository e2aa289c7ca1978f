// SPDX-License-Identifier: GPL-2.0-or-later
// The nft backend's transaction part: core's change sets as nftables batches (apply), with the
// grouped-then-per-element fallback; the external interface set; counters.
#include "nft/nft_datapath.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "nft/batch_builder.hpp"
#include "nft/element.hpp"
#include "nft/netlink_session.hpp"
#include "nft/nft_impl.hpp"
#include "util/log.hpp"

namespace pcpd::nft {

Result<void> NftDatapath::Impl::transact(
    const std::function<Result<Batch>(std::uint32_t, const std::vector<bool>&)>& build) {
  std::vector<bool> skip;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto batch = build(nl->next_seq(), skip);
    if (!batch) return tl::unexpected(batch.error());
    auto errors = nl->send_batch(*batch);
    if (!errors) {
      ++counters.batch_failures;
      return tl::unexpected(errors.error());
    }
    if (errors->empty()) {
      count(*batch);
      return {};
    }
    bool only_expired = attempt == 0;
    for (const auto& e : *errors) {
      const auto* m = batch->message(e.seq);
      if (m == nullptr || m->op != MessageRef::Op::Delete || e.error != ENOENT) only_expired = false;
    }
    if (only_expired) {
      skip.assign(batch->messages.size(), false);
      for (const auto& e : *errors) skip[e.seq - batch->begin_seq - 1] = true;
      counters.already_expired += errors->size();
      log::debug("nft.already_expired", {{"elements", errors->size()}});
      continue;
    }
    ++counters.batch_failures;
    // Report the refusal earliest in the batch; a commit failure (BEGIN) names no change.
    auto first = std::min_element(errors->begin(), errors->end(),
                                  [](const BatchError& a, const BatchError& b) { return a.seq < b.seq; });
    const auto* m = batch->message(first->seq);
    const int change = m != nullptr ? m->change_index : -1;
    log::warn("nft.apply_failed", {{"errno", first->error},
                                   {"error", std::strerror(first->error)},
                                   {"change", change},
                                   {"set", m != nullptr ? std::string(set_spec(m->set).name) : std::string("-")},
                                   {"refused", errors->size()}});
    return fail(ErrorDomain::Netlink, first->error, "nft: batch refused", change);
  }
  return fail(ErrorDomain::Netlink, EIO, "nft: batch refused twice");
}


void NftDatapath::Impl::count(const Batch& batch) {
  ++counters.batches;
  for (const auto& m : batch.messages) {
    if (m.op == MessageRef::Op::Add) counters.elements_added += m.elements;
    if (m.op == MessageRef::Op::Delete) counters.elements_deleted += m.elements;
    if (m.op == MessageRef::Op::Update) counters.elements_updated += m.elements;
  }
}


NftDatapath::NftDatapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NftDatapath::~NftDatapath() = default;

Result<bool> NftDatapath::Impl::try_grouped(const core::ChangeSet& changes) {
  auto batch = BatchBuilder::for_changes(changes, spec.table, spec.grace_seconds, nl->next_seq(), {},
                                         Grouping::PerSet, refresh_in_place);
  if (!batch) return tl::unexpected(batch.error());
  auto errors = nl->send_batch(*batch);
  if (!errors) {
    ++counters.batch_failures;
    return tl::unexpected(errors.error());
  }
  if (!errors->empty()) {
    ++counters.grouped_refused;
    return false;
  }
  count(*batch);
  return true;
}

Result<void> NftDatapath::apply(const core::ChangeSet& changes) {
  if (changes.empty()) return {};
  // Several changes (a receive burst, a bulk delete): first as one message per set, which the
  // kernel parses faster; refused (nothing applied), they go again one message per element, which
  // names the refused change and drops deletions of elements the kernel already expired.
  bool done = false;
  if (changes.changes.size() > 1) {
    auto g = impl_->try_grouped(changes);
    if (!g) return tl::unexpected(g.error());
    done = *g;
  }
  if (!done) {
    auto r = impl_->transact([&](std::uint32_t seq, const std::vector<bool>& skip) {
      return BatchBuilder::for_changes(changes, impl_->spec.table, impl_->spec.grace_seconds, seq, skip,
                                       Grouping::PerElement, impl_->refresh_in_place);
    });
    if (!r) return r;
  }
  return {};
}


Result<void> NftDatapath::set_external_interfaces(const std::vector<std::string>& names) {
  std::vector<std::string> unique = names;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  for (const auto& n : unique)
    if (n.empty() || n.size() > 15 || n.find('\0') != std::string::npos)
      return fail(ErrorDomain::Netlink, EINVAL, "nft: interface name");
  impl_->external_ifnames = unique;  // reinstall() puts them back
  return impl_->transact([&](std::uint32_t seq, const std::vector<bool>&) -> Result<Batch> {
    // nft flush set inet pcpd wan_ifnames; nft add element inet pcpd wan_ifnames { "wan0" }
    BatchBuilder b(impl_->spec.table, seq);
    b.flush(SetId::WanIfnames);
    for (const auto& n : unique) b.add({SetId::WanIfnames, KeyWriter{}.ifname(n).take(), {}, {}, {}}, 0, -1);
    return b.finish();
  });
}

Result<void> NftDatapath::flush() {
  return impl_->transact([&](std::uint32_t seq, const std::vector<bool>&) -> Result<Batch> {
    BatchBuilder b(impl_->spec.table, seq);
    for (const auto& s : all_sets())
      if (s.id != SetId::WanIfnames) b.flush(s.id);
    return b.finish();
  });
}


NftCounters NftDatapath::counters() const { return impl_->counters; }

NetlinkSession::Commits NftDatapath::commits() const { return impl_->nl->commits(); }

}  // namespace pcpd::nft
