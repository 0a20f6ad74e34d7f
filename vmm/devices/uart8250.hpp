// A 16550A-compatible UART (COM1): transmit to the console sink, receive from the host, one
// interrupt line. Transmission is instantaneous, so THR is always empty.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "vmm/bus.hpp"
#include "vmm/console.hpp"

namespace ukvm {

class Uart8250 : public Device {
public:
    static constexpr std::uint16_t kCom1Base = 0x3F8;
    static constexpr std::uint32_t kCom1Irq = 4;
    static constexpr std::size_t kRxBufferBytes = 1024;

    // set_irq drives the interrupt line level (true while an enabled interrupt is pending).
    Uart8250(ConsoleSink& sink, std::function<void(bool)> set_irq);

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Host input: queued for the guest; bytes beyond the buffer are dropped (overrun).
    void receive(std::span<const std::uint8_t> bytes);

private:
    std::uint8_t read_register(std::uint64_t offset);
    void write_register(std::uint64_t offset, std::uint8_t value);
    std::uint8_t interrupt_id() const;
    void update_irq();
    bool dlab() const { return (lcr_ & 0x80) != 0; }
    bool loopback() const { return (mcr_ & 0x10) != 0; }

    ConsoleSink& sink_;
    std::function<void(bool)> set_irq_;
    std::mutex mutex_;  // the vCPU and the input thread both reach the UART
    std::deque<std::uint8_t> rx_;
    std::uint8_t ier_ = 0;
    std::uint8_t lcr_ = 0x03;  // 8N1
    std::uint8_t mcr_ = 0;
    std::uint8_t scr_ = 0;
    std::uint8_t fcr_ = 0;
    std::uint8_t lsr_errors_ = 0;  // overrun, reported once by an LSR read
    std::uint16_t divisor_ = 12;   // 9600 baud
    bool thre_pending_ = false;    // the THR-empty interrupt, until IIR read or THR write
    bool irq_level_ = false;
};

}  // namespace ukvm
