#include "nft/batch_builder.hpp"
#include "nft/element_comment.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace pcpd::nft {
namespace {

// Large enough for one element message: keys/data <= 2 x 64 bytes, userdata <= 256 bytes.
constexpr std::size_t kScratchSize = 8192;
// NFT_USERDATA_MAXLEN in the kernel (include/net/netfilter/nf_tables.h)
constexpr std::uint32_t kUserdataMax = 256;

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
struct UdataDeleter {
  void operator()(nftnl_udata_buf* b) const { nftnl_udata_buf_free(b); }
};

}  // namespace

const MessageRef* Batch::message(std::uint32_t seq) const {
  if (seq <= begin_seq) return nullptr;
  std::uint32_t i = seq - begin_seq - 1;
  return i < messages.size() ? &messages[i] : nullptr;
}

BatchBuilder::BatchBuilder(std::string_view table, std::uint32_t begin_seq)
    : table_(table), scratch_(kScratchSize) {
  batch_.begin_seq = begin_seq;
  auto* nlh = nftnl_batch_begin(scratch_.data(), begin_seq);
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  batch_.bytes.assign(p, p + nlh->nlmsg_len);
}

void BatchBuilder::append_elem_message(std::uint16_t type, std::uint16_t flags, const Element& e,
                                       const std::uint64_t* timeout_ms) {
  const auto& spec = set_spec(e.set);
  const std::uint32_t seq = batch_.end_seq();
  auto* nlh = nftnl_nlmsg_build_hdr(scratch_.data(), type, NFPROTO_INET, flags, seq);
  std::unique_ptr<nftnl_set, SetDeleter> set(nftnl_set_alloc());
  nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, table_.c_str());
  nftnl_set_set_str(set.get(), NFTNL_SET_NAME, std::string(spec.name).c_str());
  auto* elem = nftnl_set_elem_alloc();
  nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY, e.key.data(), static_cast<std::uint32_t>(e.key.size()));
  if (!e.key_end.empty())
    nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY_END, e.key_end.data(),
                       static_cast<std::uint32_t>(e.key_end.size()));
  if (timeout_ms != nullptr) {
    if (!e.data.empty())
      nftnl_set_elem_set(elem, NFTNL_SET_ELEM_DATA, e.data.data(), static_cast<std::uint32_t>(e.data.size()));
    if (spec.flags & kSetFlagTimeout) nftnl_set_elem_set_u64(elem, NFTNL_SET_ELEM_TIMEOUT, *timeout_ms);
    if (!e.comment.empty()) {
      // nft writes the comment as one NFTNL_UDATA_SET_ELEM_COMMENT TLV holding a NUL-terminated
      // string; the kernel refuses more than 254 bytes of userdata (see element_comment.hpp).
      // Precondition: e.comment.size() <= kMaxCommentLength (ElementComment::encode keeps it).
      PCPD_ASSERT(e.comment.size() <= kMaxCommentLength);
      std::unique_ptr<nftnl_udata_buf, UdataDeleter> ud(nftnl_udata_buf_alloc(kUserdataMax));
      const bool stored = nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_ELEM_COMMENT, e.comment.c_str());
      PCPD_ASSERT(stored);
      nftnl_set_elem_set(elem, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
                         nftnl_udata_buf_len(ud.get()));
    }
  }
  nftnl_set_elem_add(set.get(), elem);  // the set owns elem now
  nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  last_message_ = batch_.bytes.size();
  batch_.bytes.insert(batch_.bytes.end(), p, p + nlh->nlmsg_len);
}

void BatchBuilder::add(const Element& e, std::uint64_t timeout_ms, int change_index) {
  // nft create element inet pcpd map4_dnat { 203.0.113.1 . tcp . 8080 timeout 3630s
  //     comment "pcp map n=... l=3600" : 192.0.2.10 . 80 }
  append_elem_message(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, e, &timeout_ms);
  batch_.messages.push_back({MessageRef::Op::Add, e.set, change_index});
}

void BatchBuilder::remove(const Element& e, int change_index) {
  // nft delete element inet pcpd map4_dnat { 203.0.113.1 . tcp . 8080 }
  append_elem_message(NFT_MSG_DELSETELEM, 0, e, nullptr);
  batch_.messages.push_back({MessageRef::Op::Delete, e.set, change_index});
}

void BatchBuilder::flush(SetId set) {
  // nft flush set inet pcpd map4_dnat   (DELSETELEM without an element list)
  const auto& spec = set_spec(set);
  auto* nlh = nftnl_nlmsg_build_hdr(scratch_.data(), NFT_MSG_DELSETELEM, NFPROTO_INET, 0, batch_.end_seq());
  std::unique_ptr<nftnl_set, SetDeleter> s(nftnl_set_alloc());
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table_.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, std::string(spec.name).c_str());
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  last_message_ = batch_.bytes.size();
  batch_.bytes.insert(batch_.bytes.end(), p, p + nlh->nlmsg_len);
  batch_.messages.push_back({MessageRef::Op::Flush, set, -1});
}

Batch BatchBuilder::finish() {
  // Only the last message asks for an ack: the kernel reports every refused message whatever its
  // flags, after the whole batch, in order, so that ack (0 or its own errno) comes last and says
  // the transaction is over. An ack per message cost one skb and one recv() each (issue 7).
  if (!batch_.messages.empty()) {
    nlmsghdr last{};
    std::memcpy(&last, batch_.bytes.data() + last_message_, sizeof last);
    last.nlmsg_flags |= NLM_F_ACK;
    std::memcpy(batch_.bytes.data() + last_message_, &last, sizeof last);
  }
  auto* nlh = nftnl_batch_end(scratch_.data(), batch_.end_seq());
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  batch_.bytes.insert(batch_.bytes.end(), p, p + nlh->nlmsg_len);
  Batch out = std::move(batch_);
  batch_ = Batch{};
  return out;
}

Result<Batch> BatchBuilder::for_changes(const core::ChangeSet& changes, std::string_view table,
                                        std::uint32_t grace_seconds, std::uint32_t begin_seq,
                                        const std::vector<bool>& skip) {
  BatchBuilder b(table, begin_seq);
  std::size_t ordinal = 0;
  auto skipped = [&]() { return ordinal < skip.size() && skip[ordinal]; };
  auto timeout_of = [grace_seconds](const core::Mapping& m) {
    std::uint64_t ms = (std::uint64_t{m.lifetime} + grace_seconds) * 1000;
    return std::max<std::uint64_t>(ms, 1000);
  };
  for (std::size_t i = 0; i < changes.changes.size(); ++i) {
    const auto& c = changes.changes[i];
    const int index = static_cast<int>(i);
    if (c.op == core::Change::Op::Remove || c.op == core::Change::Op::Replace) {
      const auto& old = c.op == core::Change::Op::Remove ? c.mapping : c.previous;
      auto elems = mapping_elements(old);
      if (!elems) return fail(elems.error().domain, elems.error().code, elems.error().context, index);
      // Election keys go first (un-election: no packet may re-mark a connection after the
      // mapping's other elements are gone; the transaction is atomic anyway).
      std::stable_partition(elems->begin(), elems->end(), [](const Element& e) { return is_election_set(e.set); });
      for (const auto& e : *elems) {
        if (!skipped()) b.remove(e, index);
        ++ordinal;
      }
    }
    if (c.op == core::Change::Op::Add || c.op == core::Change::Op::Replace) {
      auto elems = mapping_elements(c.mapping);
      if (!elems) return fail(elems.error().domain, elems.error().code, elems.error().context, index);
      for (const auto& e : *elems) {
        if (!skipped()) b.add(e, timeout_of(c.mapping), index);
        ++ordinal;
      }
    }
  }
  return b.finish();
}

}  // namespace pcpd::nft
