// SPDX-License-Identifier: GPL-2.0-or-later
// FakeDatapath: a core::Datapath for unit tests. Records every ChangeSet it is given (also the
// refused ones) and can refuse the Nth apply(), a list of them, or every apply() from now on.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "core/datapath.hpp"

namespace pcpd::test {

class FakeDatapath final : public core::Datapath {
 public:
  Result<void> apply(const core::ChangeSet& changes) override {
    ++calls_;
    applied_.push_back(changes);
    const bool listed = std::find(fail_calls_.begin(), fail_calls_.end(), calls_) != fail_calls_.end();
    if (fail_all_ || listed || (fail_at_ != 0 && calls_ == fail_at_)) {
      ++failures_;
      return fail(ErrorDomain::Netlink, ENOBUFS, "fake datapath refused the batch", 0);
    }
    accepted_.push_back(changes);
    return {};
  }

  // Refuse the nth apply() counted from now (1 = the next one).
  void fail_nth(std::size_t n) { fail_at_ = calls_ + n; }
  void fail_all(bool on) { fail_all_ = on; }
  // Refuse each of these apply()s, counted from now (1 = the next one), besides fail_nth's.
  void fail_calls(std::initializer_list<std::size_t> ns) {
    for (std::size_t n : ns) fail_calls_.push_back(calls_ + n);
  }
  // Forget every refusal armed and not used yet.
  void clear_failures() {
    fail_calls_.clear();
    fail_at_ = 0;
  }

  [[nodiscard]] std::size_t calls() const { return calls_; }
  [[nodiscard]] std::size_t failures() const { return failures_; }
  [[nodiscard]] const std::vector<core::ChangeSet>& applied() const { return applied_; }
  [[nodiscard]] const std::vector<core::ChangeSet>& accepted() const { return accepted_; }
  [[nodiscard]] const core::ChangeSet& last() const { return applied_.back(); }

 private:
  std::size_t calls_ = 0;
  std::size_t fail_at_ = 0;
  std::size_t failures_ = 0;
  bool fail_all_ = false;
  std::vector<std::size_t> fail_calls_;
  std::vector<core::ChangeSet> applied_;
  std::vector<core::ChangeSet> accepted_;
};

}  // namespace pcpd::test
