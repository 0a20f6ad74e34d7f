// reset: asks the i8042 keyboard controller for a CPU reset (command 0xFE); ukvm ends
// the VM with status 0, QEMU -no-reboot exits.
#include "rt/rt.hpp"

extern "C" int guest_main(uint32_t, uint32_t) {
    constexpr uint16_t kI8042Command = 0x64;
    constexpr uint8_t kPulseResetLine = 0xfe;
    rt::printf("reset: i8042 reset\n");
    rt::outb(kI8042Command, kPulseResetLine);
    rt::printf("reset: still running after the reset command\n");
    return 1;
}
