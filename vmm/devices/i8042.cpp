#include "vmm/devices/i8042.hpp"

#include <algorithm>

namespace ukvm {

namespace {
constexpr std::uint8_t kStatusOutputFull = 0x01;
constexpr std::uint8_t kStatusSystem = 0x04;    // self-test passed since power-on
constexpr std::uint8_t kStatusCommand = 0x08;   // last write went to the command port
constexpr std::uint8_t kStatusUnlocked = 0x10;  // keyboard not inhibited

constexpr std::uint8_t kCmdReadConfig = 0x20;
constexpr std::uint8_t kCmdWriteConfig = 0x60;
constexpr std::uint8_t kCmdDisableAux = 0xA7;
constexpr std::uint8_t kCmdEnableAux = 0xA8;
constexpr std::uint8_t kCmdTestAux = 0xA9;
constexpr std::uint8_t kCmdSelfTest = 0xAA;
constexpr std::uint8_t kCmdTestKeyboard = 0xAB;
constexpr std::uint8_t kCmdDisableKeyboard = 0xAD;
constexpr std::uint8_t kCmdEnableKeyboard = 0xAE;
constexpr std::uint8_t kCmdReadOutputPort = 0xD0;
constexpr std::uint8_t kCmdWriteOutputPort = 0xD1;
constexpr std::uint8_t kCmdPulseReset = 0xFE;
}  // namespace

I8042::I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

void I8042::Port::read(std::uint64_t, std::span<std::uint8_t> data) {
    std::uint8_t v = is_command ? controller.read_status() : controller.read_data();
    std::fill(data.begin(), data.end(), v);
}

void I8042::Port::write(std::uint64_t, std::span<const std::uint8_t> data) {
    if (data.empty()) return;
    if (is_command) {
        controller.write_command(data[0]);
    } else {
        controller.write_data(data[0]);
    }
}

std::uint8_t I8042::read_status() const {
    std::uint8_t status = kStatusSystem | kStatusUnlocked;
    if (output_) status |= kStatusOutputFull;
    if (pending_command_) status |= kStatusCommand;
    return status;
}

std::uint8_t I8042::read_data() {
    std::uint8_t v = output_.value_or(0);
    output_.reset();
    return v;
}

void I8042::write_command(std::uint8_t command) {
    pending_command_.reset();
    switch (command) {
        case kCmdReadConfig:
            output_ = config_;
            break;
        case kCmdWriteConfig:
        case kCmdWriteOutputPort:
            pending_command_ = command;
            break;
        case kCmdSelfTest:
            output_ = 0x55;  // passed
            break;
        case kCmdTestKeyboard:
        case kCmdTestAux:
            output_ = 0x00;  // no error
            break;
        case kCmdReadOutputPort:
            output_ = 0x01;  // reset line not asserted
            break;
        case kCmdDisableAux:
        case kCmdEnableAux:
        case kCmdDisableKeyboard:
        case kCmdEnableKeyboard:
            break;
        case kCmdPulseReset:
            if (on_reset_) on_reset_();
            break;
        default:
            break;
    }
}

void I8042::write_data(std::uint8_t value) {
    if (!pending_command_) return;  // bytes for an absent keyboard
    std::uint8_t command = *pending_command_;
    pending_command_.reset();
    if (command == kCmdWriteConfig) config_ = value;
    // Output port bit 0 is the CPU reset line, active low.
    if (command == kCmdWriteOutputPort && !(value & 0x01) && on_reset_) on_reset_();
}

}  // namespace ukvm
