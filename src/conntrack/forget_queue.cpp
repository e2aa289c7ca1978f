// SPDX-License-Identifier: GPL-2.0-or-later
#include "conntrack/forget_queue.hpp"

#include "wire/ip_addr.hpp"

namespace pcpd::ct {

namespace {

std::uint64_t flow_hash(const core::Mapping& m) {
  const wire::IpAddrHash h;
  std::uint64_t x = h(m.internal_addr);
  x = x * 0x9E3779B97F4A7C15ull ^ h(m.external_addr);
  x = x * 0x9E3779B97F4A7C15ull ^ h(m.remote_addr);
  x ^= (std::uint64_t{m.internal_port} << 40) ^ (std::uint64_t{m.external_port} << 24) ^
       (std::uint64_t{m.remote_port} << 8) ^ m.protocol;
  return x ^ static_cast<std::uint64_t>(m.kind);
}

}  // namespace

bool same_flow(const core::Mapping& a, const core::Mapping& b) {
  return a.kind == b.kind && a.protocol == b.protocol && a.internal_addr == b.internal_addr &&
         a.internal_port == b.internal_port && a.external_addr == b.external_addr &&
         a.external_port == b.external_port && a.remote_addr == b.remote_addr &&
         a.remote_port == b.remote_port;
}

void ForgetQueue::add(const core::Mapping& m) {
  by_flow_.emplace(flow_hash(m), items_.size());
  items_.push_back(m);
  cancelled_.push_back(false);
  ++live_;
}

void ForgetQueue::cancel(const core::Mapping& m) {
  if (live_ == 0) return;
  auto [first, last] = by_flow_.equal_range(flow_hash(m));
  for (auto it = first; it != last;) {
    const std::size_t i = it->second;
    if (!cancelled_[i] && same_flow(items_[i], m)) {
      cancelled_[i] = true;
      --live_;
      it = by_flow_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<core::Mapping> ForgetQueue::take() {
  std::vector<core::Mapping> out;
  out.reserve(live_);
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (!cancelled_[i]) out.push_back(std::move(items_[i]));
  items_.clear();
  cancelled_.clear();
  by_flow_.clear();
  live_ = 0;
  return out;
}

}  // namespace pcpd::ct
