// The PS/2 controller, only as far as guests use it on a headless machine: its status and
// data ports answer sensibly, and command 0xFE (pulse the reset line) ends the VM.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "vmm/bus.hpp"

namespace ukvm {

class I8042 {
public:
    static constexpr std::uint16_t kDataPort = 0x60;
    static constexpr std::uint16_t kCommandPort = 0x64;

    explicit I8042(std::function<void()> on_reset);

    // The two ports are separate bus ranges; register each of these.
    Device& data_port() { return data_; }
    Device& command_port() { return command_; }

private:
    struct Port : Device {
        Port(I8042& c, bool command) : controller(c), is_command(command) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;
        I8042& controller;
        bool is_command;
    };

    std::uint8_t read_status() const;
    std::uint8_t read_data();
    void write_command(std::uint8_t command);
    void write_data(std::uint8_t value);

    std::function<void()> on_reset_;
    Port data_{*this, false};
    Port command_{*this, true};
    std::optional<std::uint8_t> output_;           // byte waiting in the output buffer
    std::optional<std::uint8_t> pending_command_;  // a command awaiting its data byte
    std::uint8_t config_ = 0x45;  // keyboard interrupt on, system flag, translation
};

}  // namespace ukvm
