#include "vmm/io_thread.hpp"

#include <linux/kvm.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ukvm {

EventFd::EventFd() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw KvmError("eventfd", errno);
    fd_.reset(fd);
}

void EventFd::signal() {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated: the reader is already due to wake.
    [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
}

bool EventFd::consume() {
    std::uint64_t value = 0;
    return ::read(fd_.get(), &value, sizeof value) == sizeof value && value != 0;
}

IoThread::IoThread() {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) throw KvmError("epoll_create1", errno);
    epoll_.reset(fd);
    add(stop_.fd(), [] {});  // only wakes the loop, which then sees the stop request
}

IoThread::~IoThread() {
    stop();
}

void IoThread::add(int fd, std::function<void()> on_readable) {
    handlers_.push_back(std::make_unique<std::function<void()>>(std::move(on_readable)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = handlers_.back().get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        const int err = errno;
        handlers_.pop_back();
        throw KvmError("epoll_ctl", err);
    }
    by_fd_.emplace_back(fd, handlers_.back().get());
}

void IoThread::watch(int fd, bool on) {
    for (const auto& [f, handler] : by_fd_) {
        if (f != fd) continue;
        epoll_event ev{};
        ev.events = on ? std::uint32_t{EPOLLIN} : 0u;
        ev.data.ptr = handler;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
            throw KvmError("epoll_ctl", errno);
        }
        return;
    }
}

void IoThread::start() {
    thread_ = std::thread([this] { loop(); });
}

void IoThread::stop() {
    if (!thread_.joinable()) return;
    stop_.signal();
    thread_.join();
}

void IoThread::loop() {
    std::array<epoll_event, 16> events;
    for (;;) {
        const int n = ::epoll_wait(epoll_.get(), events.data(), events.size(), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("I/O thread: epoll_wait: {}", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            auto* handler = static_cast<std::function<void()>*>(events[i].data.ptr);
            try {
                (*handler)();
            } catch (const std::exception& e) {
                // A device's host-side failure stops that request, not the VMM.
                spdlog::error("I/O thread: {}", e.what());
            }
        }
        if (stop_.consume()) return;
    }
}

void set_ioeventfd(Vm& vm, std::uint64_t gpa, std::uint32_t len, int fd, bool assign) {
    kvm_ioeventfd io{};
    io.addr = gpa;
    io.len = len;
    io.fd = fd;
    io.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (::ioctl(vm.fd(), KVM_IOEVENTFD, &io) != 0) throw KvmError("KVM_IOEVENTFD", errno);
}

void set_irqfd(Vm& vm, std::uint32_t gsi, int fd, int resample_fd, bool assign) {
    kvm_irqfd irq{};
    irq.fd = static_cast<std::uint32_t>(fd);
    irq.gsi = gsi;
    if (!assign) {
        irq.flags = KVM_IRQFD_FLAG_DEASSIGN;
    } else if (resample_fd >= 0) {
        irq.flags = KVM_IRQFD_FLAG_RESAMPLE;
        irq.resamplefd = static_cast<std::uint32_t>(resample_fd);
    }
    if (::ioctl(vm.fd(), KVM_IRQFD, &irq) != 0) throw KvmError("KVM_IRQFD", errno);
}

VirtioKvmLink::VirtioKvmLink(Vm& vm, std::uint32_t gsi, std::uint16_t num_queues,
                             IrqTrigger trigger)
    : vm_(vm), gsi_(gsi), bound_(num_queues) {
    for (std::uint16_t q = 0; q < num_queues; ++q) kicks_.push_back(std::make_unique<EventFd>());
    if (trigger == IrqTrigger::Level) {
        // The line drops at the guest's EOI and the I/O thread re-raises it while the ISR is
        // set. Measured here: KVM re-delivers once after each EOI before the line drops, so
        // every interrupt comes with a second one that finds the ISR clear.
        if (vm.kvm().check_extension(KVM_CAP_IRQFD_RESAMPLE) <= 0) {
            throw std::runtime_error(
                "level-triggered virtio interrupts need KVM_CAP_IRQFD_RESAMPLE");
        }
        set_irqfd(vm_, gsi_, irq_.fd(), resample_.fd(), true);
        resampling_ = true;
    } else {
        set_irqfd(vm_, gsi_, irq_.fd(), -1, true);
    }
    irqfd_ = true;
}

VirtioKvmLink::~VirtioKvmLink() {
    // Best effort: the VM is being torn down too.
    try {
        for (std::size_t q = 0; q < bound_.size(); ++q) {
            if (bound_[q]) set_ioeventfd(vm_, *bound_[q], 2, kicks_[q]->fd(), false);
        }
        if (irqfd_) set_irqfd(vm_, gsi_, irq_.fd(), -1, false);
    } catch (const std::exception& e) {
        spdlog::debug("virtio teardown: {}", e.what());
    }
}

void VirtioKvmLink::connect(VirtioPci& transport, IoThread& io) {
    for (std::uint16_t q = 0; q < kicks_.size(); ++q) {
        EventFd& kick = *kicks_[q];
        io.add(kick.fd(), [&transport, &kick, q] {
            if (kick.consume()) transport.process_queue(q);
        });
    }
    if (resampling_) {
        io.add(resample_.fd(), [this, &transport] {
            if (resample_.consume() && transport.interrupt_pending()) irq_.signal();
        });
    }
}

void VirtioKvmLink::raise_interrupt() {
    irq_.signal();
}

void VirtioKvmLink::queue_notified(std::uint16_t q) {
    if (q < kicks_.size()) kicks_[q]->signal();
}

void VirtioKvmLink::notify_moved(std::uint16_t q, std::optional<std::uint64_t> gpa) {
    std::lock_guard lock(mutex_);
    if (q >= kicks_.size() || bound_[q] == gpa) return;
    try {
        if (bound_[q]) set_ioeventfd(vm_, *bound_[q], 2, kicks_[q]->fd(), false);
        bound_[q].reset();
        if (gpa) {
            set_ioeventfd(vm_, *gpa, 2, kicks_[q]->fd(), true);
            bound_[q] = gpa;
        }
    } catch (const std::exception& e) {
        // The guest put the BAR somewhere KVM refuses (overlapping another ioeventfd):
        // notifications then arrive as MMIO exits, which work, only slower.
        spdlog::warn("virtio queue {} notify at {:#x}: {}", q, gpa.value_or(0), e.what());
    }
}

}  // namespace ukvm
