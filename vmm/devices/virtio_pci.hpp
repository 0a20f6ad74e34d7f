// The modern virtio-pci transport (virtio 1.x, 4.1) for one VirtioDevice.
//
// BAR0 is a 16 KiB 32-bit memory BAR with one 4 KiB page per structure:
//   0x0000 common configuration   0x1000 ISR status
//   0x2000 device configuration   0x3000 notifications (queue q at 0x3000 + 4 * q)
// plus the VIRTIO_PCI_CAP_PCI_CFG window in config space. Interrupts are INTx (pin A) on
// one IOAPIC input; queue notifications are meant to be caught by ioeventfds, and a
// notification that reaches the VMM instead is forwarded the same way.
//
// Threads: BAR and config accesses come from vCPU threads, process_queue() from the I/O
// thread; one mutex covers the transport and its device.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/virtio_device.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/pci/pci_bus.hpp"

namespace ukvm {

// Guest RAM as a VirtioMemory.
class GuestRam final : public VirtioMemory {
public:
    explicit GuestRam(GuestMemory& memory) : memory_(memory) {}
    bool contains(std::uint64_t gpa, std::size_t len) const override {
        return memory_.contains(gpa, len);
    }
    bool read(std::uint64_t gpa, void* out, std::size_t len) override;
    bool write(std::uint64_t gpa, const void* in, std::size_t len) override;
    std::uint8_t* host(std::uint64_t gpa, std::size_t len) override;

private:
    GuestMemory& memory_;
};

namespace virtio_pci {
inline constexpr std::uint64_t kBarSize = 0x4000;
inline constexpr std::uint64_t kCommonOffset = 0x0000;
inline constexpr std::uint64_t kIsrOffset = 0x1000;
inline constexpr std::uint64_t kDeviceOffset = 0x2000;
inline constexpr std::uint64_t kNotifyOffset = 0x3000;
inline constexpr std::uint32_t kNotifyMultiplier = 4;
inline constexpr std::uint8_t kIsrQueue = 0x1;
inline constexpr std::uint8_t kIsrConfig = VIRTIO_PCI_ISR_CONFIG;
}  // namespace virtio_pci

class VirtioPci : public pci::PciDevice {
public:
    // How the transport reaches the rest of the VMM (KVM in ukvm, plain calls in tests).
    class Host {
    public:
        virtual ~Host() = default;
        // The ISR went from 0 to non-zero: assert the interrupt.
        virtual void raise_interrupt() = 0;
        // The guest notified queue q through the VMM (no ioeventfd caught it).
        virtual void queue_notified(std::uint16_t q) = 0;
        // Queue q's notify register moved to gpa (nullopt: it no longer decodes).
        virtual void notify_moved(std::uint16_t q, std::optional<std::uint64_t> gpa) = 0;
    };

    // irq_line: the IOAPIC input reported in the Interrupt Line register.
    VirtioPci(VirtioDevice& device, VirtioMemory& memory, Host& host, std::uint8_t irq_line);

    pci::ConfigSpace& config() override { return config_; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override;
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override;
    void decode_changed() override;
    void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) override;
    void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Runs the device on queue q (I/O thread).
    void process_queue(std::uint16_t q);
    // Whether the ISR is non-zero: a level-triggered line must stay asserted.
    bool interrupt_pending() const;

    std::uint8_t status() const;
    std::uint16_t num_queues() const { return static_cast<std::uint16_t>(queues_.size()); }
    // The reason the device set DEVICE_NEEDS_RESET, if it did.
    std::string needs_reset_reason() const;

private:
    struct Queue {
        explicit Queue(VirtioMemory& memory) : ring(memory) {}
        VirtQueue ring;
        std::uint16_t size = kVirtQueueMaxSize;
        std::uint64_t desc = 0;
        std::uint64_t avail = 0;
        std::uint64_t used = 0;
        std::optional<std::uint64_t> notify_at;
    };

    std::uint64_t offered_features() const;
    void read_common(std::uint64_t offset, std::span<std::uint8_t> data);
    void write_common(std::uint64_t offset, std::span<const std::uint8_t> data);
    void write_status(std::uint8_t status);
    void reset_locked();
    void enable_queue(Queue& q);
    void needs_reset(const std::string& why);
    void interrupt(std::uint8_t isr_bits);
    Queue* selected_queue();
    void bar_access(std::uint64_t offset, std::span<std::uint8_t> data, bool write);
    // A config access of len bytes at offset that touches pci_cfg_data goes through the
    // window its capability describes (4.1.4.9): a read first fills pci_cfg_data from the
    // BAR, a write then passes it on. Only BAR 0 and lengths 1, 2 and 4 are windows.
    void pci_cfg_window(std::uint16_t offset, std::size_t len, bool write);

    VirtioDevice& device_;
    Host& host_;
    pci::ConfigSpace config_;
    std::uint8_t pci_cfg_cap_ = 0;  // offset of the VIRTIO_PCI_CAP_PCI_CFG capability

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Queue>> queues_;
    std::uint32_t device_feature_select_ = 0;
    std::uint32_t driver_feature_select_ = 0;
    std::uint64_t driver_features_ = 0;
    std::uint8_t status_ = 0;
    // Outside the mutex: the guest's interrupt handler reads (and clears) it without
    // waiting for a request the I/O thread is in the middle of.
    std::atomic<std::uint8_t> isr_{0};
    std::uint16_t queue_select_ = 0;
    std::string needs_reset_reason_;
};

}  // namespace ukvm
