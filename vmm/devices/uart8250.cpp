#include "vmm/devices/uart8250.hpp"

namespace ukvm {

namespace {
// Register offsets from the base port.
enum Reg : std::uint64_t {
    kData = 0,
    kIer = 1,
    kIirFcr = 2,
    kLcr = 3,
    kMcr = 4,
    kLsr = 5,
    kMsr = 6,
    kScr = 7
};

constexpr std::uint8_t kIerRx = 0x01, kIerThre = 0x02;
constexpr std::uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRx = 0x04, kIirFifo = 0xC0;
constexpr std::uint8_t kLsrDataReady = 0x01, kLsrOverrun = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr std::uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
// DCD, DSR, CTS: a peer is attached and ready.
constexpr std::uint8_t kMsrConnected = 0xB0;
}  // namespace

Uart8250::Uart8250(ConsoleSink& sink, std::function<void(bool)> set_irq)
    : sink_(sink), set_irq_(std::move(set_irq)) {}

void Uart8250::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    // Wider accesses read consecutive registers, as an ISA bus would split them.
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = read_register(offset + i);
    update_irq();
}

void Uart8250::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < data.size(); ++i) write_register(offset + i, data[i]);
    update_irq();
}

void Uart8250::receive(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    for (std::uint8_t b : bytes) {
        if (rx_.size() >= kRxBufferBytes) {
            lsr_errors_ |= kLsrOverrun;
            break;
        }
        rx_.push_back(b);
    }
    update_irq();
}

std::uint8_t Uart8250::read_register(std::uint64_t offset) {
    switch (offset) {
        case kData: {
            if (dlab()) return static_cast<std::uint8_t>(divisor_);
            if (rx_.empty()) return 0;
            std::uint8_t b = rx_.front();
            rx_.pop_front();
            return b;
        }
        case kIer:
            return dlab() ? static_cast<std::uint8_t>(divisor_ >> 8) : ier_;
        case kIirFcr: {
            std::uint8_t iir = interrupt_id();
            // Reading IIR acknowledges a THR-empty interrupt it reports.
            if (iir == kIirThre) thre_pending_ = false;
            return iir | ((fcr_ & kFcrEnable) ? kIirFifo : 0);
        }
        case kLcr:
            return lcr_;
        case kMcr:
            return mcr_;
        case kLsr: {
            std::uint8_t lsr = kLsrThre | kLsrTemt | lsr_errors_;
            if (!rx_.empty()) lsr |= kLsrDataReady;
            lsr_errors_ = 0;
            return lsr;
        }
        case kMsr:
            if (loopback()) {
                // Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
                return static_cast<std::uint8_t>(((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) |
                                                 ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
            }
            return kMsrConnected;
        case kScr:
            return scr_;
        default:
            return 0xFF;
    }
}

void Uart8250::write_register(std::uint64_t offset, std::uint8_t value) {
    switch (offset) {
        case kData:
            if (dlab()) {
                divisor_ = static_cast<std::uint16_t>((divisor_ & 0xFF00) | value);
            } else if (loopback()) {
                if (rx_.size() < kRxBufferBytes) rx_.push_back(value);
                thre_pending_ = true;
            } else {
                sink_.write(std::span(&value, 1));
                thre_pending_ = true;  // sent at once: THR is empty again
            }
            break;
        case kIer:
            if (dlab()) {
                divisor_ = static_cast<std::uint16_t>((divisor_ & 0x00FF) | (value << 8));
            } else {
                // Enabling the THR-empty interrupt while THR is empty raises it at once.
                if ((value & kIerThre) && !(ier_ & kIerThre)) thre_pending_ = true;
                ier_ = value & 0x0F;
            }
            break;
        case kIirFcr:
            fcr_ = value & 0xC9;  // enable, DMA mode, trigger level; clear bits self-reset
            if (value & kFcrClearRx) rx_.clear();
            break;
        case kLcr:
            lcr_ = value;
            break;
        case kMcr:
            mcr_ = value & 0x1F;
            break;
        case kScr:
            scr_ = value;
            break;
        default:
            break;  // LSR and MSR are read-only
    }
}

std::uint8_t Uart8250::interrupt_id() const {
    if ((ier_ & kIerRx) && !rx_.empty()) return kIirRx;
    if ((ier_ & kIerThre) && thre_pending_) return kIirThre;
    return kIirNone;
}

void Uart8250::update_irq() {
    // OUT2 gates the interrupt onto the ISA bus on PCs, but guests that never set it still
    // expect interrupts from QEMU and kvmtool, so the line follows IIR alone.
    bool level = interrupt_id() != kIirNone;
    if (level != irq_level_) {
        irq_level_ = level;
        if (set_irq_) set_irq_(level);
    }
}

}  // namespace ukvm
