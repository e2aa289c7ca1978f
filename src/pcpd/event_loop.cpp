// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/event_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>

namespace pcpd::daemon {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return fail(ErrorDomain::Io, errno, "epoll_create1");
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(ep)));
}

namespace {

Result<void> watch(int epfd, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return fail(ErrorDomain::Io, errno, "epoll_ctl add");
  return {};
}

}  // namespace

Result<void> EventLoop::add(int fd, Callback on_readable) {
  if (auto r = watch(epfd_.get(), fd, EPOLLIN); !r) return r;
  callbacks_[fd] = std::make_shared<Callback>(std::move(on_readable));
  return {};
}

Result<void> EventLoop::add_writable(int fd, Callback on_writable) {
  if (auto r = watch(epfd_.get(), fd, EPOLLOUT); !r) return r;
  callbacks_[fd] = std::make_shared<Callback>(std::move(on_writable));
  return {};
}

void EventLoop::remove(int fd) {
  ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  callbacks_.erase(fd);
}

Result<void> EventLoop::run() {
  running_ = true;
  epoll_event events[16];
  while (running_) {
    int n = ::epoll_wait(epfd_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, "epoll_wait");
    }
    for (int i = 0; i < n && running_; ++i) {
      auto it = callbacks_.find(events[i].data.fd);
      if (it == callbacks_.end()) continue;  // removed by an earlier callback in this batch
      auto cb = it->second;
      (*cb)();
    }
  }
  return {};
}

Result<BootTimer> BootTimer::create() {
  UniqueFd fd(::timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd) return fail(ErrorDomain::Io, errno, "timerfd_create");
  return BootTimer(std::move(fd));
}

Result<void> BootTimer::arm_at(std::int64_t when_ms) {
  if (when_ms == std::numeric_limits<std::int64_t>::max()) {
    disarm();
    return {};
  }
  if (when_ms < 1) when_ms = 1;  // 0 would disarm
  itimerspec spec{};
  spec.it_value.tv_sec = when_ms / 1000;
  spec.it_value.tv_nsec = (when_ms % 1000) * 1'000'000;
  if (::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
    return fail(ErrorDomain::Io, errno, "timerfd_settime");
  armed_at_ = when_ms;
  return {};
}

void BootTimer::disarm() {
  itimerspec spec{};
  ::timerfd_settime(fd_.get(), 0, &spec, nullptr);
  armed_at_ = -1;
}

void BootTimer::drain() const {
  std::uint64_t count = 0;
  [[maybe_unused]] auto n = ::read(fd_.get(), &count, sizeof count);
}

Result<SignalFd> SignalFd::create() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return fail(ErrorDomain::Io, errno, "sigprocmask");
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return fail(ErrorDomain::Io, errno, "signalfd");
  return SignalFd(std::move(fd));
}

int SignalFd::read() const {
  signalfd_siginfo info{};
  ssize_t n = ::read(fd_.get(), &info, sizeof info);
  if (n != static_cast<ssize_t>(sizeof info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace pcpd::daemon
