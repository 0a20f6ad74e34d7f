// The guest console: one output sink shared by the UART and the console-write hypercall, and
// the host terminal as input (raw mode, restored on every exit path).
#pragma once

#include <termios.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vmm/config.hpp"
#include "vmm/kvm.hpp"

namespace ukvm {

class ConsoleSink {
public:
    virtual ~ConsoleSink() = default;
    virtual void write(std::span<const std::uint8_t> bytes) = 0;
};

// The devices that write the guest console, each counted apart.
enum class ConsoleSource { Uart, Hypercall, Virtio };
struct ConsoleCounts {
    std::uint64_t uart = 0;       // bytes through COM1
    std::uint64_t hypercall = 0;  // bytes through the console-write hypercall
    std::uint64_t virtio = 0;     // bytes through the virtio-console's transmitq
};

// The guest console between its devices and the host: what a device (the UART, the
// hypercall console, the virtio-console) writes goes to the configured output and to every
// attached listener (the control and console sockets); bytes typed from any source (stdin,
// an attached client) go to the one device that takes input. Thread-safe; output and input
// have separate locks, so a device may write while it is being handed input.
class Console : public ConsoleSink {
public:
    using InputFn = std::function<void(std::span<const std::uint8_t>)>;

    explicit Console(ConsoleSink& output)
        : output_(output),
          sources_{{{*this, ConsoleSource::Uart},
                    {*this, ConsoleSource::Hypercall},
                    {*this, ConsoleSource::Virtio}}} {}

    // Guest output (a device calls this, or writes through source()).
    void write(std::span<const std::uint8_t> bytes) override;
    // The sink a device writes through, so that its bytes are counted as its own.
    ConsoleSink& source(ConsoleSource s) { return sources_[static_cast<std::size_t>(s)]; }
    ConsoleCounts counts() const;
    // The device that receives typed bytes; without one, input is dropped.
    void set_input(InputFn device);
    // Host input for the guest, from any thread. Errors of the device are its own: a full
    // receive buffer drops bytes, as a real UART does.
    void input(std::span<const std::uint8_t> bytes);
    // Listeners get every byte written from now on until detached.
    void attach(ConsoleSink& listener);
    void detach(ConsoleSink& listener);

private:
    class SourceSink : public ConsoleSink {
    public:
        SourceSink(Console& console, ConsoleSource source) : console_(console), source_(source) {}
        void write(std::span<const std::uint8_t> bytes) override;

    private:
        Console& console_;
        ConsoleSource source_;
    };

    void emit(std::span<const std::uint8_t> bytes, std::uint64_t ConsoleCounts::*counter);

    ConsoleSink& output_;
    std::array<SourceSink, 3> sources_;
    mutable std::mutex output_mutex_;
    std::vector<ConsoleSink*> listeners_;  // guarded by output_mutex_
    ConsoleCounts counts_;                 // guarded by output_mutex_
    std::mutex input_mutex_;
    InputFn device_;  // guarded by input_mutex_
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

// `ukvm run --console SPEC`: "stdio" (stdout, stdin when it is a terminal), "null",
// "file:PATH", "socket:PATH". Throws ConfigError naming what is wrong.
ConsoleConfig parse_console_option(const std::string& spec);
// A socket path given on the command line, made absolute; throws ConfigError when it is
// too long for a unix socket or its directory does not exist.
std::filesystem::path socket_option(const std::string& path, const std::string& option);

// Whether the guest should read stdin under this config.
bool console_reads_stdin(const ConsoleConfig& config);

}  // namespace ukvm
