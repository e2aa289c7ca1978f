// SPDX-License-Identifier: GPL-2.0-or-later
// The kernel tests' ConntrackSync: the real ctnetlink backend, rounds run by the test (Inline).
#pragma once

#include <memory>

#include "conntrack/conntrack_sync.hpp"
#include "conntrack/ct_netlink.hpp"

namespace pcpd::kernel_test {

inline std::unique_ptr<ct::ConntrackSync> ct_sync(ct::SyncSpec spec = {}) {
  return std::make_unique<ct::ConntrackSync>(
      []() -> Result<std::unique_ptr<ct::CtKernel>> {
        auto k = ct::NetlinkCtKernel::open();
        if (!k) return tl::unexpected(k.error());
        return std::unique_ptr<ct::CtKernel>(std::move(*k));
      },
      spec, ct::ConntrackSync::Mode::Inline);
}

}  // namespace pcpd::kernel_test
