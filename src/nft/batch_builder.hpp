// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::BatchBuilder: builds one nf_tables netlink batch (BEGIN, NEWSETELEM / DELSETELEM ...,
// END) into a byte buffer, without any I/O, so unit tests can parse it back. By default one
// message per element, each with its own sequence number, so every kernel ack maps back to the
// change that caused it (as nft's mnl_batch_talk does); for_changes() can also group elements
// into one message per set (fewer messages for the kernel to parse). Owns BatchBuilder,
// Batch, MessageRef, Grouping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/datapath.hpp"

struct nftnl_set;
#include "nft/element.hpp"
#include "util/result.hpp"

namespace pcpd::nft {

struct MessageRef {
  enum class Op : std::uint8_t { Add, Delete, Flush, Update, SetUpdate };
  Op op = Op::Add;
  SetId set = SetId::Map4Dnat;
  int change_index = -1;  // index in the ChangeSet, -1 when not from one (or from several)
  std::uint32_t elements = 1;  // elements in the message (0: a flush)
};

struct Batch {
  std::vector<std::uint8_t> bytes;
  std::uint32_t begin_seq = 0;       // message i has sequence number begin_seq + 1 + i
  std::vector<MessageRef> messages;  // without BEGIN / END
  [[nodiscard]] std::uint32_t end_seq() const {
    return begin_seq + 1 + static_cast<std::uint32_t>(messages.size());
  }
  // The message a sequence number belongs to, or nullptr (BEGIN, END, unknown).
  [[nodiscard]] const MessageRef* message(std::uint32_t seq) const;
  // The message whose ack ends the batch (the last one, NLM_F_ACK); 0 when there is none.
  [[nodiscard]] std::uint32_t ack_seq() const { return messages.empty() ? 0 : end_seq() - 1; }
};

// How for_changes() puts elements into messages.
enum class Grouping : std::uint8_t {
  PerElement,  // one message per element: every refusal names its element and change
  PerSet,      // consecutive additions / deletions of one set share a message (see for_changes)
};

class BatchBuilder {
 public:
  // Precondition: `table` is the name of an inet table.
  BatchBuilder(std::string_view table, std::uint32_t begin_seq);

  // nft add element inet <table> <set> { <key> timeout <t>ms comment "<c>" : <data> }
  // sent with NLM_F_CREATE | NLM_F_EXCL (an existing key is an error: `nft create element`).
  void add(const Element& e, std::uint64_t timeout_ms, int change_index);
  // nft add element inet <table> <set> { <key> timeout <t>ms expires <t>ms [: <data>] }
  // without NLM_F_EXCL: on an element with the same key and data (kernel >= 6.10, see
  // NftDatapath::open) the kernel only restarts its timer, in the transaction; on a missing key it
  // creates the element with the given data (the comment is not rewritten: callers update only
  // elements whose comment does not change).
  void update(const Element& e, std::uint64_t timeout_ms, int change_index);
  // nft delete element inet <table> <set> { <key> }
  void remove(const Element& e, int change_index);
  // nft flush set inet <table> <set>
  void flush(SetId set);
  // NEWSET without NLM_F_EXCL for an existing set `s` (as dumped from the kernel; its handle is
  // not sent): the kernel updates the set's timeout and gc-interval when everything else is the
  // same (MessageRef::Op::SetUpdate, elements 0).
  void update_set(SetId set, nftnl_set* s);
  // Appends END and hands the batch over; the builder is empty afterwards. Only the last message
  // carries NLM_F_ACK (errors are reported for every message anyway; that ack ends the batch).
  Batch finish();

  // The batch of a whole ChangeSet: Add -> add the mapping's elements; Remove -> delete them;
  // Replace -> delete the previous mapping's elements, then add the new ones (the kernel accepts
  // the delete and re-add of the same key in one transaction). Deletions of a mapping start with
  // its election keys (RFC 7767 checkpoint); so a Replace that elects adds them, one that
  // un-elects deletes them first and does not add them back. Element timeout = (lifetime +
  // grace) seconds. A message whose ordinal is set in `skip` is left out (resending a batch
  // without deletions of elements the kernel had already expired). Fails with the index of a
  // change that the table cannot express (see mapping_elements()).
  // `refresh_in_place`: a Replace updates (update() above) each element it keeps unchanged (same
  // set, key, data and comment; not in an interval set) instead of deleting and re-adding it:
  // a refresh with the same lifetime and options becomes one timer restart per element. Only for
  // kernels that restart the timer (NftDatapath probes it); older ones would leave it running.
  // Grouping::PerSet (only without `skip`): the element operations are cut into segments, a new
  // one starting at a deletion of a key the segment adds or updates; within a segment all
  // deletions come before all additions, and these before all updates, one message per set and
  // operation, in change order within it. The
  // kernel then ends in the same state as with PerElement, and accepts the batch whenever it
  // would accept the PerElement one (deletions moved ahead only of additions of other keys). A
  // refusal names a message of several changes (change_index -1): resend PerElement to learn
  // which. Changes touching an interval set (FILTER) are never grouped (ranges may overlap).
  [[nodiscard]] static Result<Batch> for_changes(const core::ChangeSet& changes, std::string_view table,
                                                 std::uint32_t grace_seconds, std::uint32_t begin_seq,
                                                 const std::vector<bool>& skip = {},
                                                 Grouping grouping = Grouping::PerElement,
                                                 bool refresh_in_place = false);

 private:
  void append_elem_message(std::uint16_t type, std::uint16_t flags, const Element& e,
                           const std::uint64_t* timeout_ms, bool expiration);
  struct PendingOp {
    Element element;
    std::uint64_t timeout_ms = 0;
    int change_index = -1;
    MessageRef::Op op = MessageRef::Op::Delete;  // Delete, Add or Update
  };
  // The PerSet messages of one segment: deletions, additions, then updates, one message per set.
  void append_segment(const std::vector<PendingOp>& ops, std::size_t begin, std::size_t end);
  void put_attr(std::uint16_t type, const void* data, std::size_t len);
  std::size_t open_nest(std::uint16_t type);
  void close_nest(std::size_t at);
  std::size_t open_message(std::uint16_t type, std::uint16_t flags, SetId set);
  void close_message(std::size_t at);
  void put_element(const Element& e, const std::uint64_t* timeout_ms, bool expiration);
  std::string table_;
  Batch batch_;
  std::vector<char> scratch_;
  std::size_t last_message_ = 0;  // offset in batch_.bytes of the last message appended
};

}  // namespace pcpd::nft
