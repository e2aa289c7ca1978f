// SPDX-License-Identifier: GPL-2.0-or-later
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
#include "util/log.hpp"

namespace pcpd::nft {
namespace {

constexpr const char* kLoadHint =
    "load the ruleset with `nft -f /usr/share/pcpd/pcpd.nft` (in the source tree: "
    "nft-rules/pcpd.nft)";

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;
struct GenDeleter {
  void operator()(nftnl_gen* g) const { nftnl_gen_free(g); }
};
using GenPtr = std::unique_ptr<nftnl_gen, GenDeleter>;
struct TableDeleter {
  void operator()(nftnl_table* t) const { nftnl_table_free(t); }
};
using TablePtr = std::unique_ptr<nftnl_table, TableDeleter>;

struct SetInfo {
  std::uint32_t key_type = 0, key_len = 0, data_type = 0, data_len = 0, flags = 0;
};

std::string hex(std::uint32_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

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

Result<std::optional<std::uint64_t>> NftDatapath::Impl::read_table_handle() {
  std::optional<std::uint64_t> handle;
  auto build = [&](char* buf, std::uint32_t seq) {
    // nft list tables inet
    return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
  };
  auto on_message = [&](const nlmsghdr* nlh) {
    TablePtr t(nftnl_table_alloc());
    if (nftnl_table_nlmsg_parse(nlh, t.get()) < 0) return;
    const char* name = nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME);
    if (name == nullptr || spec.table != name || !nftnl_table_is_set(t.get(), NFTNL_TABLE_HANDLE)) return;
    handle = nftnl_table_get_u64(t.get(), NFTNL_TABLE_HANDLE);
  };
  auto r = nl->dump(build, on_message, [&] { handle.reset(); });
  if (!r) return tl::unexpected(r.error());
  return handle;
}

Result<std::vector<SetPtr>> NftDatapath::Impl::dump_sets() {
  // nft list sets table inet pcpd
  std::vector<SetPtr> sets;
  auto build = [&](char* buf, std::uint32_t seq) {
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
    nftnl_set_nlmsg_build_payload(nlh, s.get());
    return nlh;
  };
  auto on_message = [&](const nlmsghdr* nlh) {
    SetPtr s(nftnl_set_alloc());
    if (nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return;
    const char* table = nftnl_set_get_str(s.get(), NFTNL_SET_TABLE);
    if (table == nullptr || spec.table != table || !nftnl_set_is_set(s.get(), NFTNL_SET_NAME)) return;
    sets.push_back(std::move(s));
  };
  auto r = nl->dump(build, on_message, [&] { sets.clear(); });
  if (!r) return tl::unexpected(r.error());
  return sets;
}

Result<std::vector<std::string>> NftDatapath::Impl::verify_sets() {
  auto sets = dump_sets();
  if (!sets) return tl::unexpected(sets.error());
  std::map<std::string, SetInfo> found;
  for (const auto& s : *sets) {
    auto u32 = [&](std::uint16_t attr) {
      return nftnl_set_is_set(s.get(), attr) ? nftnl_set_get_u32(s.get(), attr) : 0u;
    };
    found[nftnl_set_get_str(s.get(), NFTNL_SET_NAME)] =
        SetInfo{u32(NFTNL_SET_KEY_TYPE), u32(NFTNL_SET_KEY_LEN), u32(NFTNL_SET_DATA_TYPE),
                u32(NFTNL_SET_DATA_LEN), u32(NFTNL_SET_FLAGS)};
  }
  std::vector<std::string> problems;
  for (const auto& s : all_sets()) {
    auto it = found.find(std::string(s.name));
    if (it == found.end()) {
      problems.push_back(std::string(s.name) + " is missing");
      continue;
    }
    const auto& f = it->second;
    const bool ok = f.key_type == s.key_type && f.key_len == s.key_len && (f.flags & s.flags) == s.flags &&
                    ((f.flags & kSetFlagMap) != 0) == ((s.flags & kSetFlagMap) != 0) &&
                    (s.data_type == 0 || (f.data_type == s.data_type && f.data_len == s.data_len));
    if (!ok)
      problems.push_back(std::string(s.name) + " has key type " + hex(f.key_type) + "/" +
                         std::to_string(f.key_len) + " bytes, data " + hex(f.data_type) + ", flags " +
                         hex(f.flags) + "; expected " + std::string(s.nft_type));
  }
  return problems;
}

Result<void> NftDatapath::Impl::transact(
    const std::function<Result<Batch>(std::uint32_t, const std::vector<bool>&)>& build) {
  std::vector<bool> skip;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto batch = build(nl->reserve_seq(0), skip);
    if (!batch) return tl::unexpected(batch.error());
    nl->reserve_seq(static_cast<std::uint32_t>(batch->messages.size()) + 2);
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

void NftDatapath::Impl::count(const Batch& batch) {
  ++counters.batches;
  for (const auto& m : batch.messages) {
    if (m.op == MessageRef::Op::Add) counters.elements_added += m.elements;
    if (m.op == MessageRef::Op::Delete) counters.elements_deleted += m.elements;
    if (m.op == MessageRef::Op::Update) counters.elements_updated += m.elements;
  }
}

bool NftDatapath::Impl::probe_refresh_in_place() {
  // A map4_snat element no mapping can have (0.0.0.0, protocol 0, port 0: wildcard mappings are
  // never installed), added with a 5 s timer, re-added without NLM_F_EXCL with a 600 s one, read
  // back, deleted. A leftover (pcpd killed in between) expires by itself or is removed by
  // recover() as an element of no mapping.
  const wire::IpAddr any = wire::IpAddr::v4_any();
  const Element probe{SetId::Map4Snat, KeyWriter{}.v4(any).proto(0).port(0).take(), {},
                      KeyWriter{}.v4(any).port(0).take(), {}};
  auto run = [&](auto&& fill) -> bool {
    BatchBuilder b(spec.table, nl->reserve_seq(0));
    fill(b);
    const Batch batch = b.finish();
    nl->reserve_seq(static_cast<std::uint32_t>(batch.messages.size()) + 2);
    auto errors = nl->send_batch(batch);
    return errors && errors->empty();
  };
  auto remove = [&](BatchBuilder& b) { b.remove(probe, -1); };
  bool added = run([&](BatchBuilder& b) { b.add(probe, 5000, -1); });
  if (!added) added = run(remove) && run([&](BatchBuilder& b) { b.add(probe, 5000, -1); });
  if (!added) {
    log::warn("nft.probe_failed", {{"what", "refresh in place"}, {"step", "add"}});
    return false;
  }
  bool ok = run([&](BatchBuilder& b) { b.update(probe, 600000, -1); });
  std::uint64_t remaining = 0;
  if (ok) {
    auto got = read_elements(set_spec(probe.set).name, &probe);
    ok = got && got->size() == 1;
    if (ok) remaining = got->front().expiration_ms;
  }
  if (!run(remove)) log::warn("nft.probe_failed", {{"what", "refresh in place"}, {"step", "delete"}});
  log::debug("nft.probe", {{"what", "refresh in place"}, {"expiration_ms", remaining}});
  return ok && remaining > 60000;
}

std::vector<NftDatapath::Impl::GcState> NftDatapath::Impl::gc_states(const std::vector<SetPtr>& sets) {
  std::vector<GcState> out;
  for (const auto& s : sets) {
    const std::string_view name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
    const auto spec = std::find_if(all_sets().begin(), all_sets().end(), [&](const SetSpec& x) { return x.name == name; });
    if (spec == all_sets().end() || !nftnl_set_is_set(s.get(), NFTNL_SET_FLAGS) ||
        (nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS) & kSetFlagTimeout) == 0)
      continue;
    const std::uint32_t gc =
        nftnl_set_is_set(s.get(), NFTNL_SET_GC_INTERVAL) ? nftnl_set_get_u32(s.get(), NFTNL_SET_GC_INTERVAL) : 0;
    out.push_back({spec->id, gc, s.get()});
  }
  return out;
}

Result<std::size_t> NftDatapath::tune_gc_interval() {
  auto& impl = *impl_;
  auto sets = impl.dump_sets();
  if (!sets) return tl::unexpected(sets.error());
  std::size_t ours = 0, asked = 0;
  BatchBuilder b(impl.spec.table, impl.nl->reserve_seq(0));
  for (const auto& g : Impl::gc_states(*sets)) {
    if (g.gc_ms == kGcIntervalMs) ++ours;
    if (g.gc_ms != 0) continue;  // pcpd's, or the operator's own: kept
    nftnl_set_set_u32(g.set, NFTNL_SET_GC_INTERVAL, kGcIntervalMs);
    b.update_set(g.id, g.set);
    ++asked;
  }
  if (asked == 0) return ours;
  const Batch batch = b.finish();
  impl.nl->reserve_seq(static_cast<std::uint32_t>(batch.messages.size()) + 2);
  auto errors = impl.nl->send_batch(batch);
  if (!errors) return tl::unexpected(errors.error());
  if (!errors->empty()) {
    const int e = errors->front().error;
    const auto* m = batch.message(errors->front().seq);
    log::warn("nft.gc_interval_refused", {{"sets", asked}, {"refused", errors->size()},
                                          {"first", m != nullptr ? std::string(set_spec(m->set).name) : std::string("-")},
                                          {"errno", e}, {"error", std::strerror(e)}});
    return ours;
  }
  // Kernels before 6.4 (123b99619cca) accept the update and keep the old interval: read back.
  auto after = impl.dump_sets();
  if (!after) return tl::unexpected(after.error());
  std::size_t now = 0;
  for (const auto& g : Impl::gc_states(*after)) now += g.gc_ms == kGcIntervalMs ? 1 : 0;
  log::info("nft.gc_interval", {{"interval_ms", kGcIntervalMs}, {"asked", asked}, {"applied", now - ours},
                                {"result", now - ours == asked ? "applied" : "kernel_kept_its_interval"}});
  return now;
}

bool NftDatapath::refresh_in_place() const { return impl_->refresh_in_place; }

bool NftDatapath::probe_refresh_in_place() {
  impl_->refresh_in_place = impl_->spec.refresh_in_place && impl_->probe_refresh_in_place();
  log::info("nft.refresh_in_place", {{"enabled", impl_->refresh_in_place}});
  return impl_->refresh_in_place;
}

NftDatapath::NftDatapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NftDatapath::~NftDatapath() = default;

std::unique_ptr<NftDatapath> NftDatapath::open(const TableSpec& spec) {
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  auto nl = NetlinkSession::open();
  if (!nl)
    throw SetupError("cannot open the nftables netlink socket: " + std::string(std::strerror(nl.error().code)) +
                     " (pcpd needs CAP_NET_ADMIN)");
  impl->nl = std::move(*nl);

  // Verify the table and every set: nft list sets table inet pcpd
  auto verified = impl->verify_sets();
  if (!verified) {
    if (verified.error().code == ENOENT)
      throw SetupError("nftables table inet " + spec.table + " not found: " + kLoadHint);
    throw SetupError("cannot list the sets of table inet " + spec.table + ": " +
                     std::strerror(verified.error().code));
  }
  const std::vector<std::string>& problems = *verified;
  if (!problems.empty()) {
    std::string msg = "nftables table inet " + spec.table + " does not match pcpd: ";
    for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    msg += ". Delete the table (nft delete table inet " + spec.table + ") and " + kLoadHint;
    throw SetupError(msg);
  }
  if (auto h = impl->read_table_handle(); h && *h) impl->table_handle = **h;
  return std::unique_ptr<NftDatapath>(new NftDatapath(std::move(impl)));
}

Result<bool> NftDatapath::Impl::try_grouped(const core::ChangeSet& changes) {
  auto batch = BatchBuilder::for_changes(changes, spec.table, spec.grace_seconds, nl->reserve_seq(0), {},
                                         Grouping::PerSet, refresh_in_place);
  if (!batch) return tl::unexpected(batch.error());
  nl->reserve_seq(static_cast<std::uint32_t>(batch->messages.size()) + 2);
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

NftCounters NftDatapath::counters() const { return impl_->counters; }

NetlinkSession::Commits NftDatapath::commits() const { return impl_->nl->commits(); }

Result<NftDatapath::RulesetStamp> NftDatapath::ruleset_stamp() {
  auto read_generation = [&]() -> Result<std::uint32_t> {
    std::optional<std::uint32_t> id;
    auto build = [](char* buf, std::uint32_t seq) {
      // What nft does before a transaction (mnl_genid_get); one NEWGEN reply, then the ack.
      return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, NFPROTO_UNSPEC, NLM_F_ACK, seq);
    };
    auto on_message = [&](const nlmsghdr* nlh) {
      GenPtr g(nftnl_gen_alloc());
      if (nftnl_gen_nlmsg_parse(nlh, g.get()) < 0 || !nftnl_gen_is_set(g.get(), NFTNL_GEN_ID)) return;
      id = nftnl_gen_get_u32(g.get(), NFTNL_GEN_ID);
    };
    auto r = impl_->nl->dump(build, on_message, [&] { id.reset(); });
    if (!r) return tl::unexpected(r.error());
    if (!id) return fail(ErrorDomain::Netlink, EPROTO, "nft: no generation id");
    return *id;
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto before = read_generation();
    if (!before) return tl::unexpected(before.error());
    auto handle = impl_->read_table_handle();
    if (!handle) return tl::unexpected(handle.error());
    auto after = read_generation();
    if (!after) return tl::unexpected(after.error());
    if (*before == *after) return RulesetStamp{*after, handle->value_or(0)};
  }
  return fail(ErrorDomain::Netlink, EAGAIN, "nft: ruleset kept changing");
}

}  // namespace pcpd::nft
