#include "console.hpp"

#include "arch/x86_64/cpu.hpp"
#include "hypercall.hpp"
#include "lib.hpp"

namespace kernel::console {

namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kDebugExitPort = 0xf4;
constexpr uint16_t kI8042Command = 0x64;
constexpr uint8_t kI8042PulseReset = 0xfe;

void uart_write(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (s[i] == '\n') {
            while (!(cpu::inb(kCom1 + 5) & 0x20)) {
            }
            cpu::outb(kCom1, '\r');
        }
        while (!(cpu::inb(kCom1 + 5) & 0x20)) {
        }
        cpu::outb(kCom1, static_cast<uint8_t>(s[i]));
    }
}

}  // namespace

void init() {
    if (hypercall::probe()) return;
    cpu::outb(kCom1 + 1, 0x00);  // no UART interrupts
    cpu::outb(kCom1 + 3, 0x80);  // DLAB
    cpu::outb(kCom1 + 0, 0x01);  // 115200 baud
    cpu::outb(kCom1 + 1, 0x00);
    cpu::outb(kCom1 + 3, 0x03);  // 8N1
    // The FIFO stays as the firmware left it: switching it on flushes the receiver, which
    // would drop console input that arrived during boot (TTY reads it later).
}

void write(const char* s, size_t n) {
    if (!hypercall::available()) return uart_write(s, n);
    alignas(16) static ukvm::hc::Message msg;
    msg = {};
    msg.m_type = ukvm::hc::kConsoleWrite;
    ukvm::hc::BufferRequest req{reinterpret_cast<uintptr_t>(s), n};
    memcpy(msg.payload, &req, sizeof req);
    hypercall::call(msg);
}

[[noreturn]] void halt(int status) {
    if (hypercall::available()) {
        alignas(16) static ukvm::hc::Message msg;
        msg = {};
        msg.m_type = ukvm::hc::kHalt;
        ukvm::hc::HaltRequest req{status};
        memcpy(msg.payload, &req, sizeof req);
        hypercall::call(msg);
    } else {
        cpu::outb(kDebugExitPort, static_cast<uint8_t>(status));
    }
    cpu::halt_forever();
}

[[noreturn]] void reboot() {
    if (hypercall::available()) {
        alignas(16) static ukvm::hc::Message msg;
        msg = {};
        msg.m_type = ukvm::hc::kReboot;
        hypercall::call(msg);
    }
    cpu::outb(kI8042Command, kI8042PulseReset);
    cpu::halt_forever();
}

}  // namespace kernel::console
