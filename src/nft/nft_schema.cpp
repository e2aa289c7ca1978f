// SPDX-License-Identifier: GPL-2.0-or-later
// The nft backend's schema part: table inet pcpd's sets checked against set_layout.hpp, the
// kernel probes (refresh in place), the sets' gc-interval, the ruleset stamp and open().
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

constexpr const char* kLoadHint =
    "load the ruleset with `nft -f /usr/share/pcpd/pcpd.nft` (in the source tree: "
    "nft-rules/pcpd.nft)";

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

}  // namespace

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


bool NftDatapath::Impl::probe_refresh_in_place() {
  // A map4_snat element no mapping can have (0.0.0.0, protocol 0, port 0: wildcard mappings are
  // never installed), added with a 5 s timer, re-added without NLM_F_EXCL with a 600 s one, read
  // back, deleted. A leftover (pcpd killed in between) expires by itself or is removed by
  // recover() as an element of no mapping.
  const wire::IpAddr any = wire::IpAddr::v4_any();
  const Element probe{SetId::Map4Snat, KeyWriter{}.v4(any).proto(0).port(0).take(), {},
                      KeyWriter{}.v4(any).port(0).take(), {}};
  auto run = [&](auto&& fill) -> bool {
    BatchBuilder b(spec.table, nl->next_seq());
    fill(b);
    const Batch batch = b.finish();
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
  BatchBuilder b(impl.spec.table, impl.nl->next_seq());
  for (const auto& g : Impl::gc_states(*sets)) {
    if (g.gc_ms == kGcIntervalMs) ++ours;
    if (g.gc_ms != 0) continue;  // pcpd's, or the operator's own: kept
    nftnl_set_set_u32(g.set, NFTNL_SET_GC_INTERVAL, kGcIntervalMs);
    b.update_set(g.id, g.set);
    ++asked;
  }
  if (asked == 0) return ours;
  const Batch batch = b.finish();
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
