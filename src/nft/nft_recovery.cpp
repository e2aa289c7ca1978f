// SPDX-License-Identifier: GPL-2.0-or-later
// The nft backend's recovery part: every set dumped and turned back into mappings (recover),
// the table watch (check_table) and the re-install of every mapping into a new table.
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
namespace {

std::string comment_of(nftnl_set_elem* e) {
  if (!nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)) return {};
  std::uint32_t len = 0;
  const void* ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &len);
  const nftnl_udata* comment = nullptr;
  auto cb = [](const nftnl_udata* attr, void* data) -> int {
    if (nftnl_udata_type(attr) == NFTNL_UDATA_SET_ELEM_COMMENT)
      *static_cast<const nftnl_udata**>(data) = attr;
    return 0;
  };
  if (nftnl_udata_parse(ud, len, cb, &comment) < 0 || comment == nullptr) return {};
  const char* text = static_cast<const char*>(nftnl_udata_get(comment));
  std::uint8_t n = nftnl_udata_len(comment);
  if (n == 0 || text[n - 1] != '\0') return {};
  return std::string(text, n - 1);
}

KeyBytes bytes_of(nftnl_set_elem* e, std::uint16_t attr) {
  if (!nftnl_set_elem_is_set(e, attr)) return {};
  std::uint32_t len = 0;
  const auto* p = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, attr, &len));
  // The kernel's keys and data are at most NFT_DATA_VALUE_MAXLEN (64) bytes; a longer one (which
  // no set of pcpd's verified layout holds) reads as empty, i.e. as no element of a mapping.
  if (len > kMaxKeyLen) return {};
  return KeyBytes(std::span(p, len));
}

DumpedElement dumped(nftnl_set_elem* e) {
  DumpedElement d;
  d.key = bytes_of(e, NFTNL_SET_ELEM_KEY);
  d.key_end = bytes_of(e, NFTNL_SET_ELEM_KEY_END);
  d.data = bytes_of(e, NFTNL_SET_ELEM_DATA);
  if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION))
    d.expiration_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
  d.comment = comment_of(e);
  return d;
}

}  // namespace

Result<std::vector<DumpedElement>> NftDatapath::Impl::read_elements(std::string_view set, const Element* only) {
  std::vector<DumpedElement> out;
  const std::string name(set);
  auto build = [&](char* buf, std::uint32_t seq) {
    // nft list set inet pcpd <set>   |   nft get element inet pcpd <set> { <key> }
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
                                      only == nullptr ? NLM_F_DUMP | NLM_F_ACK : NLM_F_ACK, seq);
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    if (only != nullptr) {
      auto* elem = nftnl_set_elem_alloc();
      nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY, only->key.data(), static_cast<std::uint32_t>(only->key.size()));
      nftnl_set_elem_add(s.get(), elem);  // owned by the set from here
    }
    nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
    return nlh;
  };
  auto on_message = [&](const nlmsghdr* nlh) {
    SetPtr s(nftnl_set_alloc());
    if (nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return;
    auto* it = nftnl_set_elems_iter_create(s.get());
    for (auto* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) {
      out.push_back(dumped(e));
    }
    nftnl_set_elems_iter_destroy(it);
  };
  auto r = nl->dump(build, on_message, [&] { out.clear(); });
  if (!r) {
    if (only != nullptr && r.error().code == ENOENT) return out;  // no such element
    return tl::unexpected(r.error());
  }
  return out;
}


Result<std::vector<core::Mapping>> NftDatapath::recover(core::Millis now) {
  auto dump = [&]() -> Result<Rebuilt> {
    SetContents contents;
    for (const auto& s : all_sets()) {
      if (s.id == SetId::WanIfnames) continue;
      auto d = impl_->read_elements(s.name);
      if (!d) return tl::unexpected(d.error());
      contents[static_cast<std::size_t>(s.id)] = std::move(*d);
    }
    return rebuild_mappings(contents, now, impl_->spec.grace_seconds);
  };
  auto first = dump();
  if (!first) return tl::unexpected(first.error());
  Rebuilt rebuilt = std::move(*first);
  if (!rebuilt.leftovers.empty()) {
    // Before deleting anything, a second dump (see reconcile()): one dump across a resize of a
    // set's hash table can miss elements. Leftovers are rare, so this costs nothing usually.
    auto second = dump();
    if (!second) return tl::unexpected(second.error());
    rebuilt = reconcile(std::move(rebuilt), std::move(*second));
  }
  if (!rebuilt.leftovers.empty()) {
    // Elements of no complete mapping (partly expired, foreign, or from an interrupted writer)
    // are removed, so that the kernel holds exactly the mappings returned.
    auto r = impl_->transact([&](std::uint32_t seq, const std::vector<bool>& skip) -> Result<Batch> {
      BatchBuilder b(impl_->spec.table, seq);
      for (std::size_t i = 0; i < rebuilt.leftovers.size(); ++i)
        if (i >= skip.size() || !skip[i]) b.remove(rebuilt.leftovers[i], -1);
      return b.finish();
    });
    if (!r) return tl::unexpected(r.error());
    impl_->counters.recovery_leftovers += rebuilt.leftovers.size();
    log::warn("nft.recovery_leftovers", {{"elements", rebuilt.leftovers.size()}});
  }
  log::info("nft.recovered", {{"mappings", rebuilt.mappings.size()}});
  return std::move(rebuilt.mappings);
}


Result<NftDatapath::TableState> NftDatapath::check_table() {
  auto& counters = impl_->counters;
  auto handle = impl_->read_table_handle();
  if (!handle) return tl::unexpected(handle.error());
  auto missing = [&](const std::string& why) {
    if (!impl_->table_lost) log::warn("nft.table_lost", {{"table", impl_->spec.table}, {"reason", why}});
    impl_->table_lost = true;
    ++counters.table_lost;
    return TableState::Missing;
  };
  if (!*handle) return missing("no such table");
  auto problems = impl_->verify_sets();
  if (!problems) {
    if (problems.error().code == ENOENT) return missing("no such table");
    return tl::unexpected(problems.error());
  }
  if (!problems->empty()) return missing(problems->front());
  if (impl_->table_lost || **handle != impl_->table_handle) return TableState::Replaced;
  return TableState::Same;
}

Result<std::size_t> NftDatapath::reinstall(const std::vector<core::Mapping>& mappings, core::Millis now) {
  auto& impl = *impl_;
  auto handle = impl.read_table_handle();
  if (!handle) return tl::unexpected(handle.error());
  if (!*handle) return fail(ErrorDomain::Netlink, ENOENT, "nft: reinstall: no table");
  std::size_t installed = 0, left_out = 0;
  auto r = impl.transact([&](std::uint32_t seq, const std::vector<bool>&) -> Result<Batch> {
    installed = left_out = 0;
    BatchBuilder b(impl.spec.table, seq);
    // nft flush set inet pcpd <set> (each), then the whole state again, in one transaction.
    for (const auto& s : all_sets()) b.flush(s.id);
    for (const auto& n : impl.external_ifnames)
      b.add({SetId::WanIfnames, KeyWriter{}.ifname(n).take(), {}, {}, {}}, 0, -1);
    for (const auto& m : mappings) {
      if (m.expires <= now) continue;  // expiry removes it from core
      auto elems = mapping_elements(m);
      if (!elems) {
        ++left_out;
        continue;
      }
      const auto left_ms = std::max<std::int64_t>((m.expires - now).count(), 1000);
      // A static mapping's elements have no timeout (0, see BatchBuilder::add).
      const std::uint64_t timeout =
          m.is_static() ? 0 : static_cast<std::uint64_t>(left_ms) + std::uint64_t{impl.spec.grace_seconds} * 1000;
      for (const auto& e : *elems) b.add(e, timeout, -1);
      ++installed;
    }
    return b.finish();
  });
  if (!r) {
    ++impl.counters.resync_failures;
    return tl::unexpected(r.error());
  }
  impl.table_handle = **handle;
  impl.table_lost = false;
  ++impl.counters.resyncs;
  impl.counters.resync_mappings += installed;
  log::info("nft.reinstalled", {{"mappings", installed}, {"left_out", left_out}, {"table", impl.spec.table}});
  // A table loaded anew has the kernel's 1 s gc-interval again.
  if (auto g = tune_gc_interval(); !g) log::warn("nft.gc_interval_failed", {{"error", error_text(g.error())}});
  return installed;
}


}  // namespace pcpd::nft
