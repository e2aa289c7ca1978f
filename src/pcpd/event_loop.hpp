// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::EventLoop: epoll over a handful of descriptors (sockets, signalfd, timerfds),
// each with a callback run when it is readable. Single-threaded; callbacks may add or remove
// descriptors and call stop().
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace pcpd::daemon {

class EventLoop {
 public:
  using Callback = std::function<void()>;

  [[nodiscard]] static Result<std::unique_ptr<EventLoop>> create();

  [[nodiscard]] Result<void> add(int fd, Callback on_readable);
  // The same for writability (EPOLLOUT), e.g. a control connection streaming a long answer.
  [[nodiscard]] Result<void> add_writable(int fd, Callback on_writable);
  void remove(int fd);
  // Runs until stop(). Returns an error only if epoll_wait fails (not EINTR).
  [[nodiscard]] Result<void> run();
  void stop() { running_ = false; }

 private:
  explicit EventLoop(UniqueFd epfd) : epfd_(std::move(epfd)) {}
  UniqueFd epfd_;
  // shared_ptr: a callback that removes its own descriptor keeps running to its end.
  std::map<int, std::shared_ptr<Callback>> callbacks_;
  bool running_ = false;
};

// A timerfd on CLOCK_BOOTTIME (the core clock), armed at absolute times.
class BootTimer {
 public:
  [[nodiscard]] static Result<BootTimer> create();
  [[nodiscard]] int fd() const { return fd_.get(); }
  // Fires at `when` (core::BootClock milliseconds); Millis::max() disarms. A time in the past
  // fires at once.
  [[nodiscard]] Result<void> arm_at(std::int64_t when_ms);
  void disarm();
  // Reads the expiration count so the descriptor stops being readable.
  void drain() const;
  [[nodiscard]] std::int64_t armed_at() const { return armed_at_; }

 private:
  explicit BootTimer(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::int64_t armed_at_ = -1;  // -1: disarmed
};

// SIGHUP, SIGTERM and SIGINT through a signalfd (blocked for normal delivery).
class SignalFd {
 public:
  [[nodiscard]] static Result<SignalFd> create();
  [[nodiscard]] int fd() const { return fd_.get(); }
  // The next pending signal number, or 0 when none is pending.
  [[nodiscard]] int read() const;

 private:
  explicit SignalFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace pcpd::daemon
