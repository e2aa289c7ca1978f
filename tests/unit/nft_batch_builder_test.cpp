// SPDX-License-Identifier: GPL-2.0-or-later
// BatchBuilder bytes parsed back with libnftnl / libmnl, with no kernel: message sequence, types,
// flags, set names, keys, data, timeouts and the comment TLV as nft writes it.
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cerrno>
#include <memory>
#include <string>

#include "nft/batch_builder.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

namespace {

struct ParsedElem {
  std::string table, set;
  std::vector<std::uint8_t> key, key_end, data;
  std::uint64_t timeout = 0;
  bool has_timeout = false;
  std::string comment;
  std::size_t count = 0;  // elements in the message
};

struct ParsedMsg {
  std::uint16_t type;
  std::uint16_t flags;
  std::uint32_t seq;
  std::uint8_t family;
  ParsedElem elem;
};

std::vector<std::uint8_t> get(nftnl_set_elem* e, std::uint16_t attr) {
  if (!nftnl_set_elem_is_set(e, attr)) return {};
  std::uint32_t len = 0;
  auto* p = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, attr, &len));
  return {p, p + len};
}

std::vector<ParsedMsg> parse(const Batch& b) {
  std::vector<ParsedMsg> out;
  int len = static_cast<int>(b.bytes.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(b.bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    ParsedMsg m{nlh->nlmsg_type, nlh->nlmsg_flags, nlh->nlmsg_seq,
                static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family, {}};
    if ((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES) {
      std::unique_ptr<nftnl_set, void (*)(const nftnl_set*)> s(nftnl_set_alloc(), nftnl_set_free);
      REQUIRE(nftnl_set_elems_nlmsg_parse(nlh, s.get()) == 0);
      m.elem.table = nftnl_set_get_str(s.get(), NFTNL_SET_TABLE);
      m.elem.set = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
      auto* it = nftnl_set_elems_iter_create(s.get());
      for (auto* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) {
        ++m.elem.count;
        m.elem.key = get(e, NFTNL_SET_ELEM_KEY);
        m.elem.key_end = get(e, NFTNL_SET_ELEM_KEY_END);
        m.elem.data = get(e, NFTNL_SET_ELEM_DATA);
        if ((m.elem.has_timeout = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)))
          m.elem.timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)) {
          std::uint32_t ulen = 0;
          auto* ud = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ulen));
          // one TLV: type NFTNL_UDATA_SET_ELEM_COMMENT, length, NUL-terminated text
          REQUIRE(ulen >= 3);
          CHECK(ud[0] == NFTNL_UDATA_SET_ELEM_COMMENT);
          CHECK(ud[1] == ulen - 2);
          CHECK(ud[ulen - 1] == 0);
          m.elem.comment.assign(reinterpret_cast<const char*>(ud + 2), ulen - 3);
        }
      }
      nftnl_set_elems_iter_destroy(it);
    }
    out.push_back(std::move(m));
  }
  CHECK(len == 0);  // every byte belongs to a message
  return out;
}

constexpr std::uint16_t kNewElem = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
constexpr std::uint16_t kDelElem = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM;

}  // namespace

TEST_CASE("nft batch: Add of a MAP is BEGIN, two NEWSETELEM with EXCL and timeout, END") {
  core::ChangeSet cs;
  auto m = map4(8080);
  m.lifetime = 120;
  m.description = "ssh";
  cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 30, 1000);
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  REQUIRE(msgs.size() == 4);
  CHECK(msgs[0].type == NFNL_MSG_BATCH_BEGIN);
  CHECK(msgs[3].type == NFNL_MSG_BATCH_END);
  for (std::size_t i = 0; i < msgs.size(); ++i) CHECK(msgs[i].seq == 1000 + i);  // own seq each
  CHECK(batch->end_seq() == 1003);
  for (int i : {1, 2}) {
    CHECK(msgs[i].type == kNewElem);
    CHECK(msgs[i].family == NFPROTO_INET);
    // Only the last message asks for the ack that ends the batch; errors come for every message.
    CHECK(msgs[i].flags == (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | (i == 2 ? NLM_F_ACK : 0)));
    CHECK(msgs[i].elem.table == "pcpd");
    CHECK(msgs[i].elem.count == 1);
    CHECK(msgs[i].elem.has_timeout);
    CHECK(msgs[i].elem.timeout == 150'000);  // (lifetime + grace) in ms
  }
  CHECK(msgs[1].elem.set == "map4_dnat");
  CHECK(msgs[1].elem.key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0});
  CHECK(msgs[1].elem.data == std::vector<std::uint8_t>{192, 0, 2, 10, 0, 80, 0, 0});
  CHECK(msgs[1].elem.comment == "pcp map n=" + std::string("90a1b2c3d4e5f60718293a4b") + " l=120 d=ssh");
  CHECK(msgs[2].elem.set == "map4_snat");
  CHECK(msgs[2].elem.comment.empty());
  REQUIRE(batch->messages.size() == 2);
  CHECK(batch->message(1001)->change_index == 0);
  CHECK(batch->message(1000) == nullptr);
  CHECK(batch->message(1003) == nullptr);
}

TEST_CASE("nft batch: a static mapping's elements carry no timeout (they stay until deleted)") {
  core::ChangeSet cs;
  auto m = map4(2222);
  m.origin = core::Origin::Static;
  m.lifetime = core::kStaticLifetime;
  m.expires = core::kNever;
  cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 30, 1000);
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  REQUIRE(msgs.size() == 4);
  for (int i : {1, 2}) {
    CHECK(msgs[i].type == kNewElem);
    CHECK_FALSE(msgs[i].elem.has_timeout);
  }
  CHECK(msgs[1].elem.comment.starts_with("static map "));
}

TEST_CASE("nft batch: Replace deletes the previous elements then adds the new ones; acks map to changes") {
  core::ChangeSet cs;
  auto old = map4(8080);
  old.filters = {filter("198.51.100.0/24", 0)};
  auto now = old;
  now.lifetime = 7200;
  now.filters = {};
  cs.changes.push_back({core::Change::Op::Add, pin6(5000), {}, false});
  cs.changes.push_back({core::Change::Op::Replace, now, old, false});
  cs.changes.push_back({core::Change::Op::Remove, peer4(5555), {}, true});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 0, 7);
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  // BEGIN, pin6 add, 4 deletes (dnat, snat, filt_on, allow), 2 adds, 1 delete, END
  REQUIRE(msgs.size() == 10);
  std::vector<std::uint16_t> types;
  std::vector<std::string> sets;
  for (std::size_t i = 1; i + 1 < msgs.size(); ++i) {
    types.push_back(msgs[i].type);
    sets.push_back(msgs[i].elem.set);
  }
  CHECK(types == std::vector<std::uint16_t>{kNewElem, kDelElem, kDelElem, kDelElem, kDelElem, kNewElem, kNewElem,
                                            kDelElem});
  CHECK(sets == std::vector<std::string>{"pin6", "map4_dnat", "map4_snat", "filt4_on", "filt4_allow", "map4_dnat",
                                         "map4_snat", "peer4_snat"});
  CHECK(msgs[2].flags == NLM_F_REQUEST);
  CHECK(msgs[8].flags == (NLM_F_REQUEST | NLM_F_ACK));  // the last message: its ack ends the batch
  CHECK(batch->ack_seq() == 15);
  CHECK_FALSE(msgs[2].elem.has_timeout);
  CHECK(msgs[2].elem.comment.empty());  // a deletion carries the key only
  CHECK(msgs[2].elem.data.empty());
  CHECK(msgs[5].elem.key_end.size() == 20);
  CHECK(msgs[6].elem.timeout == 7'200'000);
  std::vector<int> change_of;
  for (std::uint32_t seq = 8; seq < 16; ++seq) change_of.push_back(batch->message(seq)->change_index);
  CHECK(change_of == std::vector<int>{0, 1, 1, 1, 1, 1, 1, 2});
}

TEST_CASE("nft batch: skipped messages are left out, an inexpressible change names its index") {
  core::ChangeSet cs;
  cs.changes.push_back({core::Change::Op::Remove, map4(8080), {}, false});
  cs.changes.push_back({core::Change::Op::Add, map4(8081), {}, false});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 30, 1, {true, false});
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  REQUIRE(msgs.size() == 5);
  CHECK(msgs[1].elem.set == "map4_snat");
  CHECK(msgs[1].type == kDelElem);
  auto bad = map4(9000);
  bad.protocol = 0;
  cs.changes.push_back({core::Change::Op::Add, bad, {}, false});
  auto r = BatchBuilder::for_changes(cs, "pcpd", 30, 1);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().index == 2);
  CHECK(r.error().code == EOPNOTSUPP);
}

TEST_CASE("nft batch: flush and interface elements") {
  BatchBuilder b("pcpd", 50);
  b.flush(SetId::WanIfnames);
  b.add({SetId::WanIfnames, KeyWriter{}.ifname("wan0").take(), {}, {}, {}}, 0, -1);
  auto batch = b.finish();
  auto msgs = parse(batch);
  REQUIRE(msgs.size() == 4);
  CHECK(msgs[1].type == kDelElem);
  CHECK(msgs[1].elem.set == "wan_ifnames");
  CHECK(msgs[1].elem.count == 0);  // no element list: flush the set
  CHECK(msgs[2].elem.key.size() == 16);
  CHECK(std::string(reinterpret_cast<const char*>(msgs[2].elem.key.data())) == "wan0");
  CHECK_FALSE(msgs[2].elem.has_timeout);  // wan_ifnames has no timeout flag
}

TEST_CASE("nft batch: a set update is NEWSET without EXCL, the kernel's set with an id and no handle") {
  // What NftDatapath::tune_gc_interval sends: the set as dumped, gc-interval added.
  std::unique_ptr<nftnl_set, void (*)(const nftnl_set*)> dumped(nftnl_set_alloc(), nftnl_set_free);
  nftnl_set_set_str(dumped.get(), NFTNL_SET_TABLE, "pcpd");
  nftnl_set_set_str(dumped.get(), NFTNL_SET_NAME, "map4_dnat");
  nftnl_set_set_u64(dumped.get(), NFTNL_SET_HANDLE, 7);
  nftnl_set_set_u32(dumped.get(), NFTNL_SET_FLAGS, kSetFlagMap | kSetFlagTimeout);
  nftnl_set_set_u32(dumped.get(), NFTNL_SET_KEY_LEN, 12);
  const std::uint8_t fields[3] = {4, 4, 4};
  nftnl_set_set_data(dumped.get(), NFTNL_SET_DESC_CONCAT, fields, sizeof fields);
  nftnl_set_set_u32(dumped.get(), NFTNL_SET_GC_INTERVAL, 60000);
  BatchBuilder b("pcpd", 90);
  b.update_set(SetId::Map4Dnat, dumped.get());
  const Batch batch = b.finish();
  REQUIRE(batch.messages.size() == 1);
  CHECK(batch.messages[0].op == MessageRef::Op::SetUpdate);
  CHECK(batch.messages[0].elements == 0);
  int len = static_cast<int>(batch.bytes.size());
  auto* nlh = reinterpret_cast<const nlmsghdr*>(batch.bytes.data());
  nlh = mnl_nlmsg_next(nlh, &len);  // past BEGIN
  REQUIRE(mnl_nlmsg_ok(nlh, len));
  CHECK(nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSET));
  CHECK(nlh->nlmsg_seq == 91);
  CHECK((nlh->nlmsg_flags & NLM_F_CREATE) != 0);
  CHECK((nlh->nlmsg_flags & NLM_F_EXCL) == 0);   // an existing set: update, not "File exists"
  CHECK((nlh->nlmsg_flags & NLM_F_ACK) != 0);    // the last message ends the transaction
  std::unique_ptr<nftnl_set, void (*)(const nftnl_set*)> sent(nftnl_set_alloc(), nftnl_set_free);
  REQUIRE(nftnl_set_nlmsg_parse(nlh, sent.get()) == 0);
  CHECK(std::string(nftnl_set_get_str(sent.get(), NFTNL_SET_NAME)) == "map4_dnat");
  CHECK(nftnl_set_get_u32(sent.get(), NFTNL_SET_GC_INTERVAL) == 60000);
  CHECK(nftnl_set_get_u32(sent.get(), NFTNL_SET_FLAGS) == (kSetFlagMap | kSetFlagTimeout));
  CHECK(nftnl_set_is_set(sent.get(), NFTNL_SET_ID));        // the kernel refuses NEWSET without one
  CHECK_FALSE(nftnl_set_is_set(sent.get(), NFTNL_SET_HANDLE));
  CHECK(nftnl_set_is_set(sent.get(), NFTNL_SET_DESC_CONCAT));  // field lengths must match the set's
  nlh = mnl_nlmsg_next(nlh, &len);
  REQUIRE(mnl_nlmsg_ok(nlh, len));
  CHECK(nlh->nlmsg_type == NFNL_MSG_BATCH_END);
}

TEST_CASE("nft batch: 10,000 changes make one batch with one message per element") {
  core::ChangeSet cs;
  for (std::uint16_t i = 0; i < 10000; ++i) cs.changes.push_back({core::Change::Op::Add, map4(static_cast<std::uint16_t>(10000 + i)), {}, false});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 30, 1);
  REQUIRE(batch.has_value());
  CHECK(batch->messages.size() == 20000);
  CHECK(parse(*batch).size() == 20002);
}

// --- RFC 7767 checkpoint: election keys in the batch ----------------------------------------

namespace {

std::vector<std::string> op_sets(const std::vector<ParsedMsg>& msgs) {  // "+set" / "-set", no BEGIN/END
  std::vector<std::string> out;
  for (std::size_t i = 1; i + 1 < msgs.size(); ++i)
    out.push_back((msgs[i].type == kNewElem ? "+" : "-") + msgs[i].elem.set);
  return out;
}

core::ChangeSet one(core::Change::Op op, const core::Mapping& m, const core::Mapping& previous = {}) {
  core::ChangeSet cs;
  cs.changes.push_back({op, m, previous, false});
  return cs;
}

}  // namespace

TEST_CASE("nft batch checkpoint: an elected MAP NAT44 adds its external and internal endpoint keys") {
  auto m = map4(8080, 80);
  m.checkpoint = true;
  m.lifetime = 100;
  auto batch = BatchBuilder::for_changes(one(core::Change::Op::Add, m), "pcpd", 30, 1);
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  CHECK(op_sets(msgs) == std::vector<std::string>{"+map4_dnat", "+map4_snat", "+elect4_dst", "+elect4_src"});
  REQUIRE(msgs.size() == 6);
  for (int i : {3, 4}) {
    CHECK(msgs[i].flags == (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | (i == 4 ? NLM_F_ACK : 0)));
    CHECK(msgs[i].elem.timeout == 130'000);  // same timeout as the mapping
    CHECK(msgs[i].elem.comment.empty());
    CHECK(msgs[i].elem.data.empty());
  }
  // 203.0.113.1 . tcp . 8080 and 192.0.2.10 . tcp . 80
  CHECK(msgs[3].elem.key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0});
  CHECK(msgs[4].elem.key == std::vector<std::uint8_t>{192, 0, 2, 10, 6, 0, 0, 0, 0, 80, 0, 0});
  // the comment records the election (f=k), which recovery reads back
  CHECK(msgs[1].elem.comment.find(" f=k") != std::string::npos);
  // the same mapping unelected has no keys
  m.checkpoint = false;
  batch = BatchBuilder::for_changes(one(core::Change::Op::Add, m), "pcpd", 30, 1);
  REQUIRE(batch.has_value());
  CHECK(op_sets(parse(*batch)) == std::vector<std::string>{"+map4_dnat", "+map4_snat"});
}

TEST_CASE("nft batch checkpoint: elected pinhole, PEER v4 and PEER v6 keys") {
  auto p = pin6(5000);
  p.checkpoint = true;
  auto q = peer4(5555);
  q.checkpoint = true;
  auto r = peer6(5556);
  r.checkpoint = true;
  core::ChangeSet cs;
  for (const auto& m : {p, q, r}) cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  auto batch = BatchBuilder::for_changes(cs, "pcpd", 30, 1);
  REQUIRE(batch.has_value());
  auto msgs = parse(*batch);
  CHECK(op_sets(msgs) == std::vector<std::string>{"+pin6", "+elect6_dst", "+elect6_src", "+peer4_snat",
                                                  "+elect4_peer", "+peer6", "+elect6_peer"});
  REQUIRE(msgs.size() == 9);
  // pinhole endpoint as destination and as source; PEER keys = the primary 5-tuple
  CHECK(msgs[2].elem.key == msgs[1].elem.key);
  CHECK(msgs[3].elem.key == msgs[1].elem.key);
  CHECK(msgs[3].elem.key.size() == 24);
  CHECK(msgs[5].elem.key == msgs[4].elem.key);
  CHECK(msgs[5].elem.key.size() == 20);
  CHECK(msgs[5].elem.data.empty());  // elect4_peer is a plain set
  CHECK(msgs[7].elem.key == msgs[6].elem.key);
  CHECK(msgs[7].elem.key.size() == 44);
  CHECK(msgs[2].elem.timeout == msgs[1].elem.timeout);
  CHECK(msgs[7].elem.timeout == msgs[6].elem.timeout);
  std::vector<int> change_of;
  for (std::uint32_t seq = 2; seq < 9; ++seq) change_of.push_back(batch->message(seq)->change_index);
  CHECK(change_of == std::vector<int>{0, 0, 0, 1, 1, 2, 2});
}

TEST_CASE("nft batch checkpoint: Replace elects (adds keys) and un-elects (deletes keys first)") {
  auto off = map4(8080, 80);
  auto on = off;
  on.checkpoint = true;
  on.lifetime = 7200;

  auto elect = BatchBuilder::for_changes(one(core::Change::Op::Replace, on, off), "pcpd", 0, 1);
  REQUIRE(elect.has_value());
  auto msgs = parse(*elect);
  CHECK(op_sets(msgs) == std::vector<std::string>{"-map4_dnat", "-map4_snat", "+map4_dnat", "+map4_snat",
                                                  "+elect4_dst", "+elect4_src"});
  CHECK(msgs[5].elem.timeout == 7'200'000);

  auto unelect = BatchBuilder::for_changes(one(core::Change::Op::Replace, off, on), "pcpd", 0, 1);
  REQUIRE(unelect.has_value());
  msgs = parse(*unelect);
  CHECK(op_sets(msgs) == std::vector<std::string>{"-elect4_dst", "-elect4_src", "-map4_dnat", "-map4_snat",
                                                  "+map4_dnat", "+map4_snat"});
  CHECK(msgs[1].flags == NLM_F_REQUEST);
  CHECK_FALSE(msgs[1].elem.has_timeout);
  CHECK(msgs[1].elem.key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0});

  // a refresh of an elected mapping deletes and re-adds its keys; a removal deletes them first
  auto refresh = BatchBuilder::for_changes(one(core::Change::Op::Replace, on, on), "pcpd", 0, 1);
  REQUIRE(refresh.has_value());
  CHECK(op_sets(parse(*refresh)) ==
        std::vector<std::string>{"-elect4_dst", "-elect4_src", "-map4_dnat", "-map4_snat", "+map4_dnat",
                                 "+map4_snat", "+elect4_dst", "+elect4_src"});
  auto p = pin6(5000);
  p.checkpoint = true;
  p.filters = {filter("2001:db8:ff::/48", 0)};
  auto removal = BatchBuilder::for_changes(one(core::Change::Op::Remove, p), "pcpd", 0, 1);
  REQUIRE(removal.has_value());
  CHECK(op_sets(parse(*removal)) ==
        std::vector<std::string>{"-elect6_dst", "-elect6_src", "-pin6", "-filt6_on", "-filt6_allow"});
  // skip ordinals follow the batch order (the expired-element resend of NftDatapath)
  auto skipped = BatchBuilder::for_changes(one(core::Change::Op::Remove, p), "pcpd", 0, 1, {true, false, true});
  REQUIRE(skipped.has_value());
  CHECK(op_sets(parse(*skipped)) == std::vector<std::string>{"-elect6_src", "-filt6_on", "-filt6_allow"});
}
