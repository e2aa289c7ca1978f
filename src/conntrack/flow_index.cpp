// SPDX-License-Identifier: GPL-2.0-or-later
#include "conntrack/flow_index.hpp"

#include "wire/ip_addr.hpp"

namespace pcpd::ct {
namespace {

Endpoint src_of(const FlowKey& k) { return {k.orig.src, k.orig.src_port, k.protocol}; }
Endpoint dst_of(const FlowKey& k) { return {k.orig.dst, k.orig.dst_port, k.protocol}; }

}  // namespace

std::size_t EndpointHash::operator()(const Endpoint& e) const {
  return wire::IpAddrHash{}(e.addr) ^ (std::size_t{e.port} * 0x9E3779B97F4A7C15ull) ^ (std::size_t{e.protocol} << 56);
}

std::size_t FlowKeyHash::operator()(const FlowKey& k) const {
  const EndpointHash h;
  return h(src_of(k)) * 31 ^ h(dst_of(k)) ^ k.zone;
}

bool FlowIndex::add(const FlowKey& k) {
  if (ids_.count(k) != 0) return true;
  if (ids_.size() >= capacity_) return false;
  std::uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    slots_[id] = k;
  } else {
    id = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(k);
  }
  ids_.emplace(k, id);
  by_endpoint_[src_of(k)].insert(id);
  by_endpoint_[dst_of(k)].insert(id);
  return true;
}

void FlowIndex::remove(const FlowKey& k) {
  auto it = ids_.find(k);
  if (it == ids_.end()) return;
  const std::uint32_t id = it->second;
  ids_.erase(it);
  for (const Endpoint& ep : {src_of(k), dst_of(k)}) {
    auto e = by_endpoint_.find(ep);
    if (e == by_endpoint_.end()) continue;
    e->second.erase(id);
    if (e->second.empty()) by_endpoint_.erase(e);
  }
  slots_[id] = FlowKey{};
  free_.push_back(id);
}

void FlowIndex::clear() {
  slots_.clear();
  free_.clear();
  ids_.clear();
  by_endpoint_.clear();
  cursor_ = 0;
}

void FlowIndex::at(const Endpoint& ep, std::vector<FlowKey>& out) const {
  auto e = by_endpoint_.find(ep);
  if (e == by_endpoint_.end()) return;
  for (const std::uint32_t id : e->second) out.push_back(slots_[id]);
}

void FlowIndex::next(std::size_t n, std::vector<FlowKey>& out) {
  if (slots_.empty()) return;
  for (std::size_t visited = 0; visited < slots_.size() && n > 0; ++visited) {
    if (cursor_ >= slots_.size()) cursor_ = 0;
    const FlowKey& k = slots_[cursor_++];
    if (k.family == 0) continue;  // a free slot
    out.push_back(k);
    --n;
  }
}

}  // namespace pcpd::ct
