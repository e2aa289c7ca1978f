// SPDX-License-Identifier: GPL-2.0-or-later
#include "nft/netlink_session.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <ctime>

namespace pcpd::nft {
namespace {

constexpr std::size_t kRecvBufferSize = 1 << 16;
// Socket memory per expected ack (skb overhead included), as nft sizes its receive buffer.
constexpr std::size_t kAckBytes = 1024;
constexpr int kAckTimeoutMs = 5000;

bool set_buffer(int fd, int force_opt, int opt, std::size_t bytes) {
  int v = bytes > 0x7fffffff ? 0x7fffffff : static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return true;
  return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v) == 0;  // without CAP_NET_ADMIN: capped
}

}  // namespace

Result<std::unique_ptr<NetlinkSession>> NetlinkSession::open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr) return fail(ErrorDomain::Netlink, errno, "nft: netlink socket");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(nl);
    return fail(ErrorDomain::Netlink, e, "nft: netlink bind");
  }
  int one = 1;
  // Errors carry only the header of the refused message, not the whole message back.
  mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one);
  mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof one);
  return std::unique_ptr<NetlinkSession>(new NetlinkSession(nl));
}

NetlinkSession::NetlinkSession(mnl_socket* nl)
    : nl_(nl), portid_(mnl_socket_get_portid(nl)), seq_(static_cast<std::uint32_t>(time(nullptr))) {}

NetlinkSession::~NetlinkSession() { mnl_socket_close(nl_); }

std::uint32_t NetlinkSession::reserve_seq(std::uint32_t count) {
  std::uint32_t first = seq_;
  seq_ += count;
  return first;
}

Result<void> NetlinkSession::ensure_buffers(std::size_t send_bytes, std::size_t messages) {
  const int fd = mnl_socket_get_fd(nl_);
  // The kernel refuses a sendmsg larger than the send buffer (EMSGSIZE): grow it, never split.
  const std::size_t want_snd = send_bytes + 4096;
  if (want_snd > sndbuf_) {
    if (!set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, want_snd))
      return fail(ErrorDomain::Netlink, errno, "nft: grow send buffer");
    sndbuf_ = want_snd;
  }
  const std::size_t want_rcv = std::max<std::size_t>(messages * kAckBytes, 1 << 20);
  if (want_rcv > rcvbuf_) {
    if (!set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, want_rcv))
      return fail(ErrorDomain::Netlink, errno, "nft: grow receive buffer");
    rcvbuf_ = want_rcv;
  }
  return {};
}

Result<std::vector<BatchError>> NetlinkSession::send_batch(const Batch& batch) {
  seq_ = batch.end_seq() + 1;  // BEGIN, the messages and END are the batch's
  if (auto r = ensure_buffers(batch.bytes.size(), batch.messages.size() + 2); !r) return tl::unexpected(r.error());
  const int fd = mnl_socket_get_fd(nl_);
  // Drain anything stale (a previous call that gave up before its last ack) so it cannot be taken
  // for our acks. Skipped when the previous batch ended with its last ack: that ack is the last
  // message the kernel sends for a batch (with the read that used to follow it, two recv() per
  // transaction saved).
  if (recv_buf_.size() < kRecvBufferSize) recv_buf_.resize(kRecvBufferSize);
  std::vector<char>& buf = recv_buf_;
  if (stale_) {
    while (recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  }
  stale_ = true;  // until this batch's last ack has been read

  ssize_t sent = mnl_socket_sendto(nl_, batch.bytes.data(), batch.bytes.size());
  if (sent < 0) return fail(ErrorDomain::Netlink, errno, "nft: send batch");
  if (static_cast<std::size_t>(sent) != batch.bytes.size())
    return fail(ErrorDomain::Netlink, EMSGSIZE, "nft: short send of batch");

  // Only the last message carries NLM_F_ACK (BatchBuilder::finish); every refused message gets
  // an error whatever its flags, delivered in order after the whole batch, so the last message's
  // ack (0 or its errno) is the final word. The kernel processes the batch inside sendmsg, so it
  // is queued by now; a commit failure is reported against BEGIN's sequence number before it.
  std::vector<BatchError> errors;
  const std::uint32_t first = batch.begin_seq;
  const std::uint32_t last = batch.end_seq();
  const std::uint32_t ack_seq = batch.ack_seq();
  bool done = ack_seq == 0;
  bool wait = false;  // the ack is normally queued already: poll only after an empty read
  while (!done) {
    if (wait) {
      pollfd p{fd, POLLIN, 0};
      int pr = poll(&p, 1, kAckTimeoutMs);
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) {
        if (!errors.empty()) return errors;  // a batch failing early is not acked message by message
        ++commits_.unknown;
        return fail(ErrorDomain::Netlink, ETIMEDOUT, "nft: acks missing");
      }
    }
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    wait = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      // ENOBUFS: acks were dropped; the outcome is unknown to us.
      ++commits_.unknown;
      return fail(ErrorDomain::Netlink, errno, "nft: reading acks");
    }
    auto len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq < first || nlh->nlmsg_seq > last || nlh->nlmsg_type != NLMSG_ERROR) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (err->error != 0) errors.push_back({nlh->nlmsg_seq, -err->error});
      if (nlh->nlmsg_seq == ack_seq) done = true;
    }
  }
  stale_ = false;  // nothing follows the last ack
  if (errors.empty() && !batch.messages.empty()) ++commits_.committed;
  return errors;
}

Result<void> NetlinkSession::dump(const std::function<nlmsghdr*(char* buf, std::uint32_t seq)>& build,
                                  const std::function<void(const nlmsghdr*)>& on_message,
                                  const std::function<void()>& on_restart) {
  std::vector<char> buf(kRecvBufferSize);
  stale_ = true;  // a dump may leave messages behind (an error, an early return): drain them
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) on_restart();
    const std::uint32_t seq = reserve_seq(1);
    nlmsghdr* req = build(buf.data(), seq);
    if (mnl_socket_sendto(nl_, req, req->nlmsg_len) < 0) return fail(ErrorDomain::Netlink, errno, "nft: send dump");
    bool done = false;
    bool interrupted = false;
    int error = 0;
    // Read to NLMSG_DONE even when interrupted, so the socket is free for the next dump.
    while (!done) {
      ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(ErrorDomain::Netlink, errno, "nft: read dump");
      }
      auto len = static_cast<int>(n);
      for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
           nlh = mnl_nlmsg_next(nlh, &len)) {
        if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid_) continue;
        if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        if (nlh->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (nlh->nlmsg_type == NLMSG_ERROR) {
          const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          error = -err->error;
          done = true;
          break;
        }
        if (!interrupted) on_message(nlh);
      }
    }
    if (error != 0) return fail(ErrorDomain::Netlink, error, "nft: dump refused");
    if (!interrupted) return {};
  }
  return fail(ErrorDomain::Netlink, EINTR, "nft: dump interrupted");
}

}  // namespace pcpd::nft
