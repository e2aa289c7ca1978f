// FakeDatapath: a core::Datapath for unit tests. Records every ChangeSet it is given (also the
// refused ones) and can refuse the Nth apply() or every apply() from now on.
#pragma once

#include <cerrno>
#include <cstddef>
#include <vector>

#include "core/datapath.hpp"

namespace pcpd::test {

class FakeDatapath final : public core::Datapath {
 public:
  Result<void> apply(const core::ChangeSet& changes) override {
    ++calls_;
    applied_.push_back(changes);
    if (fail_all_ || (fail_at_ != 0 && calls_ == fail_at_)) {
      ++failures_;
      return fail(ErrorDomain::Netlink, ENOBUFS, "fake datapath refused the batch", 0);
    }
    accepted_.push_back(changes);
    return {};
  }

  // Refuse the nth apply() counted from now (1 = the next one).
  void fail_nth(std::size_t n) { fail_at_ = calls_ + n; }
  void fail_all(bool on) { fail_all_ = on; }

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
  std::vector<core::ChangeSet> applied_;
  std::vector<core::ChangeSet> accepted_;
};

}  // namespace pcpd::test
