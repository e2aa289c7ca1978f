// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct::ForgetQueue: the mappings whose connections ConntrackSync drops
// (deleted mappings, many per conntrack walk). A mapping re-created with the same flow before the
// flush takes its connections back, so it leaves the queue. Pure; O(1) per change: with a scan
// per Add, deleting and re-creating a few thousand mappings between two flushes was quadratic
// (bench/RESULTS.md, burst batching).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/mapping.hpp"

namespace pcpd::ct {

// Same translation: a re-created mapping's connections are its own again.
[[nodiscard]] bool same_flow(const core::Mapping& a, const core::Mapping& b);

class ForgetQueue {
 public:
  void add(const core::Mapping& m);       // a Remove with flush_conntrack
  void cancel(const core::Mapping& m);    // an Add: drops queued mappings of the same flow
  [[nodiscard]] std::vector<core::Mapping> take();  // the queued ones, oldest first; empties
  [[nodiscard]] std::size_t size() const { return live_; }
  [[nodiscard]] bool empty() const { return live_ == 0; }
  // Whether a queued (not cancelled) mapping satisfies `pred`.
  template <class Pred>
  [[nodiscard]] bool any_of(Pred pred) const {
    for (std::size_t i = 0; i < items_.size(); ++i)
      if (!cancelled_[i] && pred(items_[i])) return true;
    return false;
  }

 private:
  std::vector<core::Mapping> items_;
  std::vector<bool> cancelled_;
  std::unordered_multimap<std::uint64_t, std::size_t> by_flow_;  // flow hash -> index in items_
  std::size_t live_ = 0;
};

}  // namespace pcpd::ct
