#include "vmm/ukvmd/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>

namespace ukvm::ukvmd {
namespace {
constexpr EventLoop::Token kTimerToken = 0;
}  // namespace

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_.valid()) throw KvmError("epoll_create1", errno);
}

EventLoop::Token EventLoop::add(int fd, std::uint32_t events, Handler handler) {
    const Token token = next_token_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        throw KvmError("epoll_ctl ADD", errno);
    watches_.emplace(token, Watch{fd, std::make_shared<Handler>(std::move(handler))});
    return token;
}

void EventLoop::modify(Token token, std::uint32_t events) {
    const auto it = watches_.find(token);
    if (it == watches_.end()) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
        throw KvmError("epoll_ctl MOD", errno);
    }
}

void EventLoop::remove(Token token) {
    const auto it = watches_.find(token);
    if (it == watches_.end()) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    watches_.erase(it);
}

void EventLoop::set_tick(std::chrono::milliseconds period, std::function<void()> tick) {
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer_.valid()) throw KvmError("timerfd_create", errno);
    itimerspec spec{};
    spec.it_interval.tv_sec = period.count() / 1000;
    spec.it_interval.tv_nsec = (period.count() % 1000) * 1000000;
    spec.it_value = spec.it_interval;
    if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) {
        throw KvmError("timerfd_settime", errno);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTimerToken;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &ev) != 0) {
        throw KvmError("epoll_ctl ADD timer", errno);
    }
    tick_ = std::move(tick);
}

void EventLoop::run() {
    epoll_event events[64];
    while (!stopped_) {
        const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw KvmError("epoll_wait", errno);
        }
        for (int i = 0; i < n && !stopped_; ++i) {
            const Token token = events[i].data.u64;
            if (token == kTimerToken) {
                std::uint64_t expirations;
                (void)!::read(timer_.get(), &expirations, sizeof expirations);
                if (tick_) tick_();
                continue;
            }
            const auto it = watches_.find(token);
            if (it == watches_.end()) continue;       // removed earlier in this batch
            const auto handler = it->second.handler;  // survives the handler removing itself
            (*handler)(events[i].events);
        }
    }
}

}  // namespace ukvm::ukvmd
