// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::NetlinkSession: the NETLINK_NETFILTER socket of the nft backend (libmnl). Sends one
// batch and reads every ack (nftables' mnl_batch_talk), and runs dump requests. The only I/O of
// pcp_nft besides the conntrack adapter. Owns the socket; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "nft/batch_builder.hpp"
#include "util/result.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace pcpd::nft {

struct BatchError {
  std::uint32_t seq;
  int error;  // positive errno
};

class NetlinkSession {
 public:
  static Result<std::unique_ptr<NetlinkSession>> open();
  ~NetlinkSession();
  NetlinkSession(const NetlinkSession&) = delete;
  NetlinkSession& operator=(const NetlinkSession&) = delete;

  // The first sequence number (BEGIN's) of the next batch: build it from this. send_batch()
  // moves past the batch it sends, so no two batches share a number and callers count nothing.
  [[nodiscard]] std::uint32_t next_seq() const { return seq_; }

  // Sends `batch` in one sendmsg (growing the socket buffers so the whole batch and all of its
  // acks fit: a batch is never split) and waits for an ack of every message. Returns the
  // messages the kernel refused (empty: the transaction was committed). Fails when the batch
  // could not be sent or acks went missing (then the outcome is unknown).
  [[nodiscard]] Result<std::vector<BatchError>> send_batch(const Batch& batch);

  // Transactions this session committed (a batch of at least one message, every ack 0: each
  // bumps the nftables generation id by one), and batches sent whose outcome is unknown (acks
  // missing or unreadable). The mapping journal (pcpd/mapping_journal.hpp) counts on both.
  struct Commits {
    std::uint64_t committed = 0;
    std::uint64_t unknown = 0;
  };
  [[nodiscard]] Commits commits() const { return commits_; }

  // Sends the request built by `build(buf, seq)` with NLM_F_DUMP and calls `on_message` for every
  // reply message; retried (at most 3 times) when the dump was interrupted by a ruleset change,
  // `on_restart` runs before each retry. Returns the kernel's errno on failure.
  [[nodiscard]] Result<void> dump(const std::function<nlmsghdr*(char* buf, std::uint32_t seq)>& build,
                                  const std::function<void(const nlmsghdr*)>& on_message,
                                  const std::function<void()>& on_restart);

 private:
  explicit NetlinkSession(mnl_socket* nl);
  // Reserves `count` consecutive sequence numbers and returns the first (dump requests).
  std::uint32_t reserve_seq(std::uint32_t count);
  [[nodiscard]] Result<void> ensure_buffers(std::size_t send_bytes, std::size_t messages);
  mnl_socket* nl_;
  std::uint32_t portid_;
  std::uint32_t seq_;
  std::size_t sndbuf_ = 0;
  std::size_t rcvbuf_ = 0;
  // Reused by send_batch (one batch per PCP request: no allocation on the request path).
  std::vector<char> recv_buf_;
  // A send_batch returned before reading its last ack: what is left must be drained first.
  bool stale_ = true;
  Commits commits_;
};

}  // namespace pcpd::nft
