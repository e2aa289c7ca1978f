// SPDX-License-Identifier: GPL-2.0-or-later
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
#include <cstddef>
#include <endian.h>
#include <vector>

namespace pcpd::nft {
namespace {

// Large enough for a message header and BEGIN / END.
constexpr std::size_t kScratchSize = 256;
// NFT_USERDATA_MAXLEN in the kernel (include/net/netfilter/nf_tables.h)
constexpr std::uint32_t kUserdataMax = 256;


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

// The element messages are written straight into batch_.bytes as netlink TLVs (the layout
// libnftnl's nftnl_set_elems_nlmsg_build_payload writes, which the unit tests parse back with
// libnftnl): no libnftnl object per element, i.e. no allocation per element. Offsets,
// not pointers, because the buffer grows.
void BatchBuilder::put_attr(std::uint16_t type, const void* data, std::size_t len) {
  auto& b = batch_.bytes;
  const nlattr hdr{static_cast<std::uint16_t>(NLA_HDRLEN + len), type};
  const std::size_t at = b.size();
  b.resize(at + NLA_HDRLEN + NLA_ALIGN(len));  // zero padding
  std::memcpy(b.data() + at, &hdr, sizeof hdr);
  if (len > 0) std::memcpy(b.data() + at + NLA_HDRLEN, data, len);
}

std::size_t BatchBuilder::open_nest(std::uint16_t type) {
  const std::size_t at = batch_.bytes.size();
  put_attr(NLA_F_NESTED | type, nullptr, 0);
  return at;
}

void BatchBuilder::close_nest(std::size_t at) {
  const std::size_t len = batch_.bytes.size() - at;
  PCPD_ASSERT(len <= 0xffff);
  const auto l = static_cast<std::uint16_t>(len);
  std::memcpy(batch_.bytes.data() + at + offsetof(nlattr, nla_len), &l, sizeof l);
}

std::size_t BatchBuilder::open_message(std::uint16_t type, std::uint16_t flags, SetId set) {
  // nlmsghdr + nfgenmsg, then NFTA_SET_ELEM_LIST_TABLE and NFTA_SET_ELEM_LIST_SET (strings with
  // their NUL, as mnl_attr_put_strz writes them).
  const std::uint32_t seq = batch_.end_seq();
  auto* nlh = nftnl_nlmsg_build_hdr(scratch_.data(), type, NFPROTO_INET, flags, seq);
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  const std::size_t at = batch_.bytes.size();
  batch_.bytes.insert(batch_.bytes.end(), p, p + nlh->nlmsg_len);
  put_attr(NFTA_SET_ELEM_LIST_TABLE, table_.c_str(), table_.size() + 1);
  const auto name = set_spec(set).name;
  char buf[64];
  PCPD_ASSERT(name.size() < sizeof buf);
  std::memcpy(buf, name.data(), name.size());
  buf[name.size()] = '\0';
  put_attr(NFTA_SET_ELEM_LIST_SET, buf, name.size() + 1);
  return at;
}

void BatchBuilder::close_message(std::size_t at) {
  const auto len = static_cast<std::uint32_t>(batch_.bytes.size() - at);
  std::memcpy(batch_.bytes.data() + at + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
  last_message_ = at;
}

void BatchBuilder::put_element(const Element& e, const std::uint64_t* timeout_ms, bool expiration) {
  // One NFTA_LIST_ELEM: KEY { DATA_VALUE }, [KEY_END { DATA_VALUE }], and for an add
  // [DATA { DATA_VALUE }], [TIMEOUT (ms, big endian)], [EXPIRATION (ms, an update: the kernel
  // restarts the timer only when given one or a new timeout)], [USERDATA: the comment TLV].
  const auto& spec = set_spec(e.set);
  const std::size_t elem = open_nest(NFTA_LIST_ELEM);
  const std::size_t key = open_nest(NFTA_SET_ELEM_KEY);
  put_attr(NFTA_DATA_VALUE, e.key.data(), e.key.size());
  close_nest(key);
  if (!e.key_end.empty()) {
    const std::size_t end = open_nest(NFTA_SET_ELEM_KEY_END);
    put_attr(NFTA_DATA_VALUE, e.key_end.data(), e.key_end.size());
    close_nest(end);
  }
  if (timeout_ms != nullptr) {
    if (!e.data.empty()) {
      const std::size_t data = open_nest(NFTA_SET_ELEM_DATA);
      put_attr(NFTA_DATA_VALUE, e.data.data(), e.data.size());
      close_nest(data);
    }
    // Timeout 0: no timeout, the element stays until deleted (a static mapping).
    if ((spec.flags & kSetFlagTimeout) && *timeout_ms != 0) {
      const std::uint64_t be = htobe64(*timeout_ms);
      put_attr(NFTA_SET_ELEM_TIMEOUT, &be, sizeof be);
      if (expiration) put_attr(NFTA_SET_ELEM_EXPIRATION, &be, sizeof be);
    }
    if (!e.comment.empty()) {
      // nft writes the comment as one NFTNL_UDATA_SET_ELEM_COMMENT TLV (type, length, text with
      // its NUL); the kernel refuses more than 254 bytes of userdata (see element_comment.hpp).
      // Precondition: e.comment.size() <= kMaxCommentLength (ElementComment::encode keeps it).
      PCPD_ASSERT(e.comment.size() <= kMaxCommentLength);
      std::uint8_t ud[kUserdataMax];
      ud[0] = NFTNL_UDATA_SET_ELEM_COMMENT;
      ud[1] = static_cast<std::uint8_t>(e.comment.size() + 1);
      std::memcpy(ud + 2, e.comment.data(), e.comment.size());
      ud[2 + e.comment.size()] = 0;
      put_attr(NFTA_SET_ELEM_USERDATA, ud, e.comment.size() + 3);
    }
  }
  close_nest(elem);
}

void BatchBuilder::append_elem_message(std::uint16_t type, std::uint16_t flags, const Element& e,
                                       const std::uint64_t* timeout_ms, bool expiration) {
  const std::size_t msg = open_message(type, flags, e.set);
  const std::size_t list = open_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
  put_element(e, timeout_ms, expiration);
  close_nest(list);
  close_message(msg);
}

void BatchBuilder::add(const Element& e, std::uint64_t timeout_ms, int change_index) {
  // nft create element inet pcpd map4_dnat { 203.0.113.1 . tcp . 8080 timeout 3630s
  //     comment "pcp map n=... l=3600" : 192.0.2.10 . 80 }
  append_elem_message(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, e, &timeout_ms, false);
  batch_.messages.push_back({MessageRef::Op::Add, e.set, change_index});
}

void BatchBuilder::update(const Element& e, std::uint64_t timeout_ms, int change_index) {
  // nft add element inet pcpd map4_snat { 192.0.2.10 . tcp . 80 timeout 3630s expires 3630s
  //     : 203.0.113.1 . 8080 }
  append_elem_message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, e, &timeout_ms, true);
  batch_.messages.push_back({MessageRef::Op::Update, e.set, change_index});
}

void BatchBuilder::remove(const Element& e, int change_index) {
  // nft delete element inet pcpd map4_dnat { 203.0.113.1 . tcp . 8080 }
  append_elem_message(NFT_MSG_DELSETELEM, 0, e, nullptr, false);
  batch_.messages.push_back({MessageRef::Op::Delete, e.set, change_index});
}

void BatchBuilder::flush(SetId set) {
  // nft flush set inet pcpd map4_dnat   (DELSETELEM without an element list)
  close_message(open_message(NFT_MSG_DELSETELEM, 0, set));
  batch_.messages.push_back({MessageRef::Op::Flush, set, -1, 0});
}

void BatchBuilder::update_set(SetId set, nftnl_set* s) {
  // nft add map inet pcpd map4_dnat { type ...; flags timeout; gc-interval 1m; } on an existing
  // map (nft 1.0.6 parses gc-interval for sets only; the kernel takes it for maps too).
  nftnl_set_unset(s, NFTNL_SET_HANDLE);
  // NEWSET needs NFTA_SET_ID (the transaction-local id a new set gets; unused for an update).
  nftnl_set_set_u32(s, NFTNL_SET_ID, batch_.end_seq());
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  auto* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, batch_.end_seq());
  nftnl_set_nlmsg_build_payload(nlh, s);
  const std::size_t at = batch_.bytes.size();
  auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
  batch_.bytes.insert(batch_.bytes.end(), p, p + nlh->nlmsg_len);
  last_message_ = at;
  batch_.messages.push_back({MessageRef::Op::SetUpdate, set, -1, 0});
}

Batch BatchBuilder::finish() {
  // Only the last message asks for an ack: the kernel reports every refused message whatever its
  // flags, after the whole batch, in order, so that ack (0 or its own errno) comes last and says
  // the transaction is over. An ack per message cost one skb and one recv() each.
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

namespace {

// FNV-1a of a set and key: identifies "the same key" for PerSet segments. A collision only cuts a
// segment early, which is always safe.
std::uint64_t key_hash(const Element& e) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 1099511628211ULL; };
  mix(static_cast<std::uint8_t>(e.set));
  for (auto b : e.key) mix(b);
  return h | 1;  // 0 marks an empty slot
}

// An insert-only open-addressing set of key hashes (no allocation per key).
class KeySet {
 public:
  explicit KeySet(std::size_t expected) {
    std::size_t n = 16;
    while (n < 2 * expected) n *= 2;
    slots_.assign(n, 0);
  }
  void clear() { std::fill(slots_.begin(), slots_.end(), 0); }
  void insert(std::uint64_t h) {
    for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == h) return;
      if (slots_[i] == 0) {
        slots_[i] = h;
        return;
      }
    }
  }
  [[nodiscard]] bool contains(std::uint64_t h) const {
    for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == h) return true;
      if (slots_[i] == 0) return false;
    }
  }

 private:
  std::vector<std::uint64_t> slots_;
};

// Room left in a message for one more element: NFTA_SET_ELEM_LIST_ELEMENTS is one attribute, whose
// length is 16 bits. An element takes at most ~600 bytes (keys and data <= 64 bytes each,
// userdata <= 256).
constexpr std::size_t kMaxElementsBytes = 0xffff - 1024;

}  // namespace

void BatchBuilder::append_segment(const std::vector<PendingOp>& ops, std::size_t begin, std::size_t end) {
  for (const auto kind : {MessageRef::Op::Delete, MessageRef::Op::Add, MessageRef::Op::Update}) {
    const bool del = kind == MessageRef::Op::Delete;
    for (std::size_t set = 0; set < kSetCount; ++set) {
      std::size_t msg = 0, list = 0;
      std::uint32_t count = 0;
      int change = -1;
      auto close = [&]() {
        close_nest(list);
        close_message(msg);
        batch_.messages.push_back({kind, static_cast<SetId>(set), change, count});
        count = 0;
      };
      for (std::size_t i = begin; i < end; ++i) {
        const auto& op = ops[i];
        if (op.op != kind || static_cast<std::size_t>(op.element.set) != set) continue;
        if (count > 0 && batch_.bytes.size() - list > kMaxElementsBytes) close();
        if (count == 0) {
          msg = del ? open_message(NFT_MSG_DELSETELEM, 0, op.element.set)
                    : open_message(NFT_MSG_NEWSETELEM,
                                   kind == MessageRef::Op::Add ? NLM_F_CREATE | NLM_F_EXCL : NLM_F_CREATE,
                                   op.element.set);
          list = open_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
          change = op.change_index;
        } else if (change != op.change_index) {
          change = -1;  // several changes share the message
        }
        put_element(op.element, del ? nullptr : &op.timeout_ms, kind == MessageRef::Op::Update);
        ++count;
      }
      if (count > 0) close();
    }
  }
}

namespace {

// The element operations of one change, in the order PerElement sends them: deletions (election
// keys first: no packet may re-mark a connection after the mapping's other elements are gone),
// then additions and updates in mapping_elements() order. Reused from one change to the next
// (no allocation per change once the vectors have grown).
struct ElementOps {
  std::vector<Element> remove;
  std::vector<std::pair<Element, bool>> install;  // (element, update in place)
  std::vector<Element> built;                     // scratch
};

Result<void> element_ops(const core::Change& c, bool refresh_in_place, ElementOps& out) {
  out.remove.clear();
  out.install.clear();
  out.built.clear();
  if (refresh_in_place && c.op == core::Change::Op::Replace && c.mapping.same_but_expiry(c.previous)) {
    // A plain refresh: the previous mapping's elements are the new ones, built once (that
    // was half of a refresh's element work). Each is kept (a timer restart), but those of interval
    // sets, which always go through delete and add, as below.
    if (auto r = append_mapping_elements(c.mapping, out.built); !r) return r;
    for (auto& e : out.built) {
      const bool interval = (set_spec(e.set).flags & kSetFlagInterval) != 0;
      if (interval) out.remove.push_back(e);
      out.install.emplace_back(std::move(e), !interval);
    }
    return {};
  }
  if (c.op == core::Change::Op::Remove || c.op == core::Change::Op::Replace) {
    if (auto r = append_mapping_elements(c.op == core::Change::Op::Remove ? c.mapping : c.previous, out.remove); !r)
      return r;
  }
  if (c.op == core::Change::Op::Add || c.op == core::Change::Op::Replace) {
    if (auto r = append_mapping_elements(c.mapping, out.built); !r) return r;
    for (auto& e : out.built) {
      bool kept = false;
      // An element a Replace keeps as it is (same set, key, data, comment) only has its timer
      // restarted; interval sets (FILTER ranges) always go through delete and add.
      if (refresh_in_place && c.op == core::Change::Op::Replace && !(set_spec(e.set).flags & kSetFlagInterval)) {
        auto same = std::find(out.remove.begin(), out.remove.end(), e);
        if (same != out.remove.end()) {
          out.remove.erase(same);
          kept = true;
        }
      }
      out.install.emplace_back(std::move(e), kept);
    }
  }
  std::stable_partition(out.remove.begin(), out.remove.end(), [](const Element& e) { return is_election_set(e.set); });
  return {};
}

}  // namespace

Result<Batch> BatchBuilder::for_changes(const core::ChangeSet& changes, std::string_view table,
                                        std::uint32_t grace_seconds, std::uint32_t begin_seq,
                                        const std::vector<bool>& skip, Grouping grouping,
                                        bool refresh_in_place) {
  auto timeout_of = [grace_seconds](const core::Mapping& m) {
    if (m.is_static()) return std::uint64_t{0};  // no timeout: it lasts until removed
    std::uint64_t ms = (std::uint64_t{m.lifetime} + grace_seconds) * 1000;
    return std::max<std::uint64_t>(ms, 1000);
  };
  BatchBuilder b(table, begin_seq);
  ElementOps eo;
  if (grouping == Grouping::PerSet && skip.empty()) {
    std::vector<PendingOp> ops;
    ops.reserve(changes.changes.size() * 4);
    bool interval = false;
    for (std::size_t i = 0; i < changes.changes.size() && !interval; ++i) {
      const auto& c = changes.changes[i];
      const int index = static_cast<int>(i);
      if (auto r = element_ops(c, refresh_in_place, eo); !r)
        return fail(r.error().domain, r.error().code, r.error().context, index);
      const std::size_t first = ops.size();
      for (auto& e : eo.remove) ops.push_back({std::move(e), 0, index, MessageRef::Op::Delete});
      for (auto& [e, kept] : eo.install)
        ops.push_back({std::move(e), timeout_of(c.mapping), index, kept ? MessageRef::Op::Update : MessageRef::Op::Add});
      for (std::size_t k = first; k < ops.size(); ++k)
        if (set_spec(ops[k].element.set).flags & kSetFlagInterval) interval = true;
    }
    if (!interval) {
      // Segments: a deletion of a key added or updated earlier in the segment starts the next one.
      KeySet added(ops.size());
      std::size_t begin = 0;
      for (std::size_t i = 0; i < ops.size(); ++i) {
        const std::uint64_t h = key_hash(ops[i].element);
        const bool del = ops[i].op == MessageRef::Op::Delete;
        if (del && added.contains(h)) {
          b.append_segment(ops, begin, i);
          begin = i;
          added.clear();
        }
        if (!del) added.insert(h);
      }
      b.append_segment(ops, begin, ops.size());
      return b.finish();
    }
  }
  std::size_t ordinal = 0;
  auto skipped = [&]() { return ordinal < skip.size() && skip[ordinal]; };
  for (std::size_t i = 0; i < changes.changes.size(); ++i) {
    const auto& c = changes.changes[i];
    const int index = static_cast<int>(i);
    if (auto r = element_ops(c, refresh_in_place, eo); !r)
      return fail(r.error().domain, r.error().code, r.error().context, index);
    for (const auto& e : eo.remove) {
      if (!skipped()) b.remove(e, index);
      ++ordinal;
    }
    for (const auto& [e, kept] : eo.install) {
      if (!skipped()) {
        if (kept) {
          b.update(e, timeout_of(c.mapping), index);
        } else {
          b.add(e, timeout_of(c.mapping), index);
        }
      }
      ++ordinal;
    }
  }
  return b.finish();
}

}  // namespace pcpd::nft
