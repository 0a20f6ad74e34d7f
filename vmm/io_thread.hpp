// The I/O thread: one epoll loop that runs device work (virtqueue processing, interrupt
// re-assertion) off the vCPU threads, and the KVM wiring that feeds it: ioeventfds that
// turn guest notifications into eventfd wake-ups without a VMM exit, and irqfds that
// inject interrupts into the in-kernel IOAPIC without a vCPU.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "vmm/devices/virtio_pci.hpp"
#include "vmm/kvm.hpp"

namespace ukvm {

// An owned, non-blocking eventfd.
class EventFd {
public:
    EventFd();
    int fd() const { return fd_.get(); }
    void signal();
    // Clears the counter; returns whether it was non-zero.
    bool consume();

private:
    Fd fd_;
};

class IoThread {
public:
    IoThread();
    ~IoThread();  // stops and joins
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    // Calls on_readable on the I/O thread whenever fd is readable (level-triggered: the
    // handler must drain it). Register before start().
    void add(int fd, std::function<void()> on_readable);
    // Stops (false) or resumes (true) calling fd's handler, from any thread: a device whose
    // guest cannot take more input stops watching its source.
    void watch(int fd, bool on);
    void start();
    void stop();

private:
    void loop();

    Fd epoll_;
    EventFd stop_;
    std::vector<std::unique_ptr<std::function<void()>>> handlers_;
    std::vector<std::pair<int, std::function<void()>*>> by_fd_;  // fixed once started
    std::thread thread_;
};

// KVM_IOEVENTFD for a 2-byte MMIO write at gpa (assign or deassign).
void set_ioeventfd(Vm& vm, std::uint64_t gpa, std::uint32_t len, int fd, bool assign);
// KVM_IRQFD on an IOAPIC input, level-triggered through a resample eventfd (or edge when
// resample_fd is -1).
void set_irqfd(Vm& vm, std::uint32_t gsi, int fd, int resample_fd, bool assign);

// How a device's interrupt reaches the IOAPIC input (see docs/virtio.md, "Threads").
enum class IrqTrigger {
    // A pulse per interrupt: for a guest that programs the input edge-triggered. One
    // delivery per interrupt, nothing on the EOI path; what ukvm's guests use.
    Edge,
    // Asserted until the guest's EOI, re-asserted while the ISR is still set (KVM irqfd
    // resampling): for a guest that programs the input level-triggered, like PCI INTx.
    Level,
};

// A virtio-pci device's connection to KVM and the I/O thread: one eventfd per queue (an
// ioeventfd on its notify register, re-registered when the guest moves BAR0) and one irqfd
// on its IOAPIC input.
class VirtioKvmLink : public VirtioPci::Host {
public:
    VirtioKvmLink(Vm& vm, std::uint32_t gsi, std::uint16_t num_queues,
                  IrqTrigger trigger = IrqTrigger::Edge);
    ~VirtioKvmLink() override;

    // Registers the eventfds with the I/O thread, which then drives `transport`.
    void connect(VirtioPci& transport, IoThread& io);

    void raise_interrupt() override;
    void queue_notified(std::uint16_t q) override;
    void notify_moved(std::uint16_t q, std::optional<std::uint64_t> gpa) override;

private:
    Vm& vm_;
    std::uint32_t gsi_;
    std::vector<std::unique_ptr<EventFd>> kicks_;
    std::vector<std::optional<std::uint64_t>> bound_;  // where each ioeventfd is assigned
    EventFd irq_;
    EventFd resample_;
    bool irqfd_ = false;
    bool resampling_ = false;
    std::mutex mutex_;
};

}  // namespace ukvm
