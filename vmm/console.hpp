// The guest console: one output sink shared by the UART and the console-write hypercall, and
// the host terminal as input (raw mode, restored on every exit path).
#pragma once

#include <termios.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "vmm/config.hpp"
#include "vmm/kvm.hpp"

namespace ukvm {

class ConsoleSink {
public:
    virtual ~ConsoleSink() = default;
    virtual void write(std::span<const std::uint8_t> bytes) = 0;
};

// Console output per ConsoleConfig: stdout, a file (created or truncated), or nowhere.
class ConsoleOutputSink : public ConsoleSink {
public:
    explicit ConsoleOutputSink(const ConsoleConfig& config);  // throws on an unopenable file
    void write(std::span<const std::uint8_t> bytes) override;

private:
    std::mutex mutex_;
    ConsoleOutput kind_;
    Fd file_;
};

// Puts a terminal in raw mode (no echo, no line editing, no output post-processing) for its
// lifetime. ISIG stays on so Ctrl-C still stops the VM.
class RawTerminal {
public:
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int fd_;
    std::optional<termios> saved_;
};

// Reads a file descriptor (stdin) on its own thread and hands bytes to a callback until EOF
// or destruction.
class InputReader {
public:
    InputReader(int fd, std::function<void(std::span<const std::uint8_t>)> on_input);
    ~InputReader();
    InputReader(const InputReader&) = delete;
    InputReader& operator=(const InputReader&) = delete;

private:
    void loop();

    int fd_;
    std::function<void(std::span<const std::uint8_t>)> on_input_;
    Fd stop_;  // eventfd that wakes the thread to end it
    std::thread thread_;
};

// Whether the guest should read stdin under this config.
bool console_reads_stdin(const ConsoleConfig& config);

}  // namespace ukvm
