// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct::NetlinkCtKernel: CtKernel over ctnetlink with libmnl. libnetfilter_conntrack would
// allocate an nf_conntrack object per dumped entry and sends one message per query; here a walk
// parses entries in place, and the writes of a round go many per sendmsg with the kernel's mark
// mask (CTA_MARK_MASK), so a concurrent rule's bit is never overwritten. Not thread-safe: owned by
// ConntrackSync's worker. The announcements of new connections come from an NFLOG group
// (nfnetlink_log), also read with libmnl: each message holds the first bytes of the packet, whose
// addresses and ports are the connection's original tuple. Never runs the conntrack CLI.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "conntrack/ct_kernel.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace pcpd::ct {

class NetlinkCtKernel final : public CtKernel {
 public:
  static Result<std::unique_ptr<NetlinkCtKernel>> open();
  ~NetlinkCtKernel() override;
  NetlinkCtKernel(const NetlinkCtKernel&) = delete;
  NetlinkCtKernel& operator=(const NetlinkCtKernel&) = delete;

  [[nodiscard]] Result<std::size_t> walk(std::uint32_t mask, std::uint32_t value,
                                         const std::function<void(const CtEntry&)>& each) override;
  [[nodiscard]] Result<std::optional<CtEntry>> get(const CtEntry& key) override;
  CtWriteResult write(std::span<const CtWrite> writes) override;
  [[nodiscard]] Result<void> learn_start(std::uint16_t group) override;
  [[nodiscard]] int learn_fd() const override;
  [[nodiscard]] Result<std::size_t> learn(const std::function<void(const CtEntry&)>& each, bool& lost) override;

 private:
  explicit NetlinkCtKernel(mnl_socket* nl);
  // Sends `nlh` on the ctnetlink socket and runs `cb` on the answer until its end (a dump's DONE
  // or the ack); an error answer fails with its errno.
  Result<void> request(const nlmsghdr* nlh, int (*cb)(const nlmsghdr*, void*), void* data, const char* what);
  mnl_socket* nl_;
  mnl_socket* log_ = nullptr;  // NFLOG, bound to the announcement group
  std::uint32_t portid_;
  std::uint32_t seq_;
  std::vector<char> rx_;
  std::vector<char> tx_;
};

}  // namespace pcpd::ct
