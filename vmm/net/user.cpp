// The user backend: outbound NAT without privileges through libslirp (Debian's
// libslirp-dev), the same user-mode TCP/IP stack QEMU's -netdev user uses, and host port
// forwards into the guest.
//
// slirp wants a poll() loop; ukvm has one epoll loop on the I/O thread. The two meet
// through a second epoll set owned by this backend: after every slirp call the backend asks
// slirp which sockets it wants polled (slirp_pollfds_fill), mirrors that into its own epoll
// set, and arms a timerfd (also in that set) for slirp's timeout and its timers. The I/O
// thread watches the one epoll fd; when it fires, the backend polls the sockets without
// waiting and lets slirp handle what is ready (slirp_pollfds_poll). Frames slirp sends to
// the guest go into a bounded queue whose eventfd is the device's rx_fd. Everything runs on
// the I/O thread (slirp is not thread-safe); construction happens before it starts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "ukvm/virtio/net.h"
#include "vmm/io_thread.hpp"
#include "vmm/kvm.hpp"
#include "vmm/net/backend.hpp"

namespace ukvm {

namespace {

// Frames slirp produced that the guest has not taken yet; beyond this they are dropped
// (slirp's TCP retransmits, as over a lossy link).
constexpr std::size_t kMaxQueuedFrames = 512;
// The network slirp emulates (QEMU's defaults, which guides and guests expect).
constexpr std::uint32_t kNetwork = 0x0A000200;  // 10.0.2.0/24
constexpr std::uint32_t kNetmask = 0xFFFFFF00;
constexpr std::uint32_t kHost = 0x0A000202;       // gateway, and the host's loopback
constexpr std::uint32_t kDhcpStart = 0x0A00020F;  // 10.0.2.15: the guest's address
constexpr std::uint32_t kNameserver = 0x0A000203;

in_addr ipv4(std::uint32_t host_order) {
    in_addr a{};
    a.s_addr = htonl(host_order);
    return a;
}

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string ip_text(std::uint32_t host_order) {
    const in_addr a = ipv4(host_order);
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}

class UserBackend final : public NetBackend {
public:
    UserBackend(const NetConfig& config, const std::string& key) {
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        ready_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!epoll_.valid() || !timer_.valid() || !ready_.valid()) {
            throw NetError(key + ": cannot set up the user network: " + std::strerror(errno));
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = timer_.get();
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &ev) != 0) {
            throw NetError(key + ": cannot set up the user network: " + std::strerror(errno));
        }

        SlirpConfig cfg{};
        cfg.version = 1;
        cfg.restricted = 0;
        cfg.in_enabled = true;
        cfg.vnetwork = ipv4(kNetwork);
        cfg.vnetmask = ipv4(kNetmask);
        cfg.vhost = ipv4(kHost);
        cfg.in6_enabled = false;
        cfg.vhostname = "ukvm";
        cfg.vdhcp_start = ipv4(kDhcpStart);
        cfg.vnameserver = ipv4(kNameserver);
        cfg.if_mtu = virtio::kEthMtu;
        cfg.if_mru = virtio::kEthMtu;
        callbacks_.send_packet = &UserBackend::on_send_packet;
        callbacks_.guest_error = &UserBackend::on_guest_error;
        callbacks_.clock_get_ns = [](void*) { return now_ns(); };
        callbacks_.timer_new = &UserBackend::on_timer_new;
        callbacks_.timer_free = &UserBackend::on_timer_free;
        callbacks_.timer_mod = &UserBackend::on_timer_mod;
        callbacks_.register_poll_fd = [](int, void*) {};
        callbacks_.unregister_poll_fd = [](int, void*) {};
        callbacks_.notify = [](void*) {};
        owner_.reset(slirp_new(&cfg, &callbacks_, this));
        slirp_ = owner_.get();
        if (slirp_ == nullptr) throw NetError(key + ": libslirp refused its configuration");

        for (std::size_t i = 0; i < config.hostfwd.size(); ++i) {
            const HostForward& f = config.hostfwd[i];
            const std::uint32_t guest = f.guest_addr != 0 ? f.guest_addr : kDhcpStart;
            if (slirp_add_hostfwd(slirp_, f.udp ? 1 : 0, ipv4(f.host_addr), f.host_port,
                                  ipv4(guest), f.guest_port) != 0) {
                const std::string k =
                    key + ".hostfwd" +
                    (config.hostfwd.size() > 1 ? "[" + std::to_string(i) + "]" : "");
                throw NetError(k + ": cannot forward " + (f.udp ? "udp " : "tcp ") +
                               ip_text(f.host_addr) + ":" + std::to_string(f.host_port) + " (\"" +
                               f.text + "\"): the port is in use or not permitted");
            }
        }
    }

    int rx_fd() const override { return ready_.get(); }

    std::optional<std::size_t> receive(std::span<std::uint8_t> buf) override {
        if (frames_.empty()) {
            std::uint64_t v;
            [[maybe_unused]] ssize_t n = ::read(ready_.get(), &v, sizeof v);
            // A frame queued between the check and the read re-signals in on_send_packet.
            if (frames_.empty()) return std::nullopt;
        }
        const std::vector<std::uint8_t> f = std::move(frames_.front());
        frames_.pop_front();
        std::copy_n(f.begin(), std::min(f.size(), buf.size()), buf.begin());
        return f.size();
    }

    void send(std::span<const std::uint8_t> frame) override {
        slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
        prepare();  // a new connection may want its socket polled
    }

    void attach(IoThread& io) override {
        prepare();
        io.add(epoll_.get(), [this] { run(); });
    }

    std::string describe() const override { return "user (slirp)"; }

private:
    struct Timer {
        SlirpTimerCb cb;
        void* opaque;
        std::int64_t expire_ms = -1;  // -1: not armed
    };

    static ssize_t on_send_packet(const void* buf, size_t len, void* opaque) {
        auto* self = static_cast<UserBackend*>(opaque);
        if (self->frames_.size() >= kMaxQueuedFrames) return static_cast<ssize_t>(len);
        const auto* p = static_cast<const std::uint8_t*>(buf);
        self->frames_.emplace_back(p, p + len);
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(self->ready_.get(), &one, sizeof one);
        return static_cast<ssize_t>(len);
    }
    static void on_guest_error(const char* msg, void*) {
        spdlog::warn("user network: guest error: {}", msg);
    }
    static void* on_timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
        auto* self = static_cast<UserBackend*>(opaque);
        self->timers_.push_back(Timer{cb, cb_opaque});
        return &self->timers_.back();
    }
    static void on_timer_free(void* timer, void* opaque) {
        auto* self = static_cast<UserBackend*>(opaque);
        self->timers_.remove_if([timer](const Timer& t) { return &t == timer; });
    }
    static void on_timer_mod(void* timer, int64_t expire_ms, void*) {
        static_cast<Timer*>(timer)->expire_ms = expire_ms;
    }

    // The I/O thread found the epoll set ready: slirp's sockets, or the timer.
    void run() {
        std::uint64_t expirations;
        [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
        const int ready = ::poll(pollfds_.data(), pollfds_.size(), 0);
        slirp_pollfds_poll(slirp_, ready < 0 ? 1 : 0, &UserBackend::get_revents, this);
        fire_timers();
        prepare();
    }

    void fire_timers() {
        const std::int64_t now_ms = now_ns() / 1000000;
        // A callback may free or re-arm timers: collect first, then call.
        std::vector<Timer*> due;
        for (Timer& t : timers_) {
            if (t.expire_ms >= 0 && t.expire_ms <= now_ms) due.push_back(&t);
        }
        for (Timer* t : due) {
            const bool alive = std::any_of(timers_.begin(), timers_.end(),
                                           [t](const Timer& x) { return &x == t; });
            if (!alive || t->expire_ms < 0 || t->expire_ms > now_ms) continue;
            t->expire_ms = -1;
            t->cb(t->opaque);
        }
    }

    static int add_poll(int fd, int events, void* opaque) {
        auto* self = static_cast<UserBackend*>(opaque);
        short ev = 0;
        if (events & SLIRP_POLL_IN) ev |= POLLIN;
        if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
        if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
        self->pollfds_.push_back(pollfd{fd, ev, 0});
        return static_cast<int>(self->pollfds_.size() - 1);
    }
    static int get_revents(int idx, void* opaque) {
        auto* self = static_cast<UserBackend*>(opaque);
        if (idx < 0 || static_cast<std::size_t>(idx) >= self->pollfds_.size()) return 0;
        const short r = self->pollfds_[static_cast<std::size_t>(idx)].revents;
        int out = 0;
        if (r & POLLIN) out |= SLIRP_POLL_IN;
        if (r & POLLOUT) out |= SLIRP_POLL_OUT;
        if (r & POLLPRI) out |= SLIRP_POLL_PRI;
        if (r & POLLERR) out |= SLIRP_POLL_ERR;
        if (r & POLLHUP) out |= SLIRP_POLL_HUP;
        return out;
    }

    // Asks slirp what to watch next, mirrors it into the epoll set, arms the timer.
    void prepare() {
        pollfds_.clear();
        std::uint32_t timeout_ms = UINT32_MAX;
        slirp_pollfds_fill(slirp_, &timeout_ms, &UserBackend::add_poll, this);
        std::map<int, std::uint32_t> wanted;
        for (const pollfd& p : pollfds_) {
            std::uint32_t ev = 0;
            if (p.events & POLLIN) ev |= EPOLLIN;
            if (p.events & POLLOUT) ev |= EPOLLOUT;
            if (p.events & POLLPRI) ev |= EPOLLPRI;
            wanted[p.fd] |= ev;
        }
        for (auto it = watched_.begin(); it != watched_.end();) {
            if (!wanted.contains(it->first)) {
                // Gone from slirp's list (or closed, which epoll already forgot).
                ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
                it = watched_.erase(it);
            } else {
                ++it;
            }
        }
        for (const auto& [fd, ev] : wanted) {
            epoll_event e{};
            e.events = ev;
            e.data.fd = fd;
            const auto it = watched_.find(fd);
            if (it != watched_.end() && it->second == ev) continue;
            // A descriptor slirp closed and reopened under the same number is no longer in
            // the set: MOD fails with ENOENT and ADD applies.
            if (it == watched_.end() || ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &e) != 0) {
                if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0 && errno == EEXIST) {
                    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &e);
                }
            }
            watched_[fd] = ev;
        }
        // The timer: slirp's own timeout, or the earliest of its timers.
        std::int64_t wait_ms = timeout_ms == UINT32_MAX ? -1 : std::int64_t{timeout_ms};
        const std::int64_t now_ms = now_ns() / 1000000;
        for (const Timer& t : timers_) {
            if (t.expire_ms < 0) continue;
            const std::int64_t d = std::max<std::int64_t>(t.expire_ms - now_ms, 0);
            if (wait_ms < 0 || d < wait_ms) wait_ms = d;
        }
        itimerspec spec{};
        if (wait_ms >= 0) {
            // 0 would disarm: fire after a millisecond instead.
            const std::int64_t ms = std::max<std::int64_t>(wait_ms, 1);
            spec.it_value.tv_sec = ms / 1000;
            spec.it_value.tv_nsec = (ms % 1000) * 1000000;
        }
        ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
    }

    Fd epoll_;
    Fd timer_;
    Fd ready_;
    SlirpCb callbacks_{};
    std::list<Timer> timers_;
    std::vector<pollfd> pollfds_;
    std::map<int, std::uint32_t> watched_;
    std::deque<std::vector<std::uint8_t>> frames_;
    struct SlirpCleanup {
        void operator()(Slirp* s) const { slirp_cleanup(s); }
    };
    // Last, so it goes first: slirp_cleanup may still call back into the members above.
    // Owned even when the constructor throws after slirp_new; slirp_ is what calls use.
    std::unique_ptr<Slirp, SlirpCleanup> owner_;
    Slirp* slirp_ = nullptr;
};

}  // namespace

std::unique_ptr<NetBackend> open_user_backend(const NetConfig& config, const std::string& key) {
    return std::make_unique<UserBackend>(config, key);
}

}  // namespace ukvm
