// The control API every `ukvm run` serves on a unix socket: info, pause, resume,
// shutdown, destroy and console attach. A small text protocol that `ukvm ctl`, ukvmd and
// a person with socat can all speak (docs/management.md, "Control socket"):
//
//   request:  one line, "COMMAND\n" (at most 256 bytes)
//   reply:    "ok\n" or "error: MESSAGE\n", then "key: value\n" lines, then "\n"
//   console:  after "ok\n\n" the connection is the guest's console, raw bytes both ways
//   console-input: the same, input only (ukvmd forwards `virsh console` keystrokes)
//
// The server runs its own thread so it answers whatever the vCPUs are doing; the VMM
// implements GuestControl (thread-safe) and feeds console output in.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "vmm/console.hpp"
#include "vmm/kvm.hpp"

namespace ukvm::control {

// A request the guest cannot satisfy now ("already paused"): an error reply.
class ControlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct GuestInfo {
    std::string name;
    std::string state;  // "running", "paused", "shutting-down", "ended"
    std::uint64_t uptime_ms = 0;
    std::uint64_t memory_mib = 0;
    std::uint64_t vcpu_time_ns = 0;
    std::string exit_reason;  // empty while running
    std::int64_t pid = 0;     // the ukvm process (ukvmd re-finds its guests by it)
    // Guest console output so far, by the device that carried it.
    std::uint64_t console_uart_bytes = 0;
    std::uint64_t console_hypercall_bytes = 0;
    std::uint64_t console_virtio_bytes = 0;
};

// What the VMM offers the control socket. Called from the server's thread.
class GuestControl {
public:
    virtual ~GuestControl() = default;
    virtual GuestInfo info() = 0;
    virtual void pause() = 0;
    virtual void resume() = 0;
    // Asks the guest to power off cleanly (its PM server handles the request).
    virtual void request_shutdown() = 0;
    // Stops the VM now; ukvm then exits as it does on SIGTERM.
    virtual void destroy() = 0;
    // Bytes typed on an attached console.
    virtual void console_input(std::span<const std::uint8_t> bytes) = 0;
};

// GuestControl from plain functions, so the VMM can offer the commands it supports one at a
// time: a missing hook answers "error: COMMAND is not supported by this ukvm yet".
struct GuestControlHooks {
    std::function<GuestInfo()> info;
    std::function<void()> pause;
    std::function<void()> resume;
    std::function<void()> request_shutdown;
    std::function<void()> destroy;
    std::function<void(std::span<const std::uint8_t>)> console_input;
};

class HookedGuestControl : public GuestControl {
public:
    explicit HookedGuestControl(GuestControlHooks hooks) : hooks_(std::move(hooks)) {}
    GuestInfo info() override { return need(hooks_.info, "info")(); }
    void pause() override { need(hooks_.pause, "pause")(); }
    void resume() override { need(hooks_.resume, "resume")(); }
    void request_shutdown() override { need(hooks_.request_shutdown, "shutdown")(); }
    void destroy() override { need(hooks_.destroy, "destroy")(); }
    void console_input(std::span<const std::uint8_t> bytes) override {
        need(hooks_.console_input, "console input")(bytes);
    }

private:
    template <typename F>
    static F& need(F& f, const char* what) {
        if (!f) throw ControlError(std::string(what) + " is not supported by this ukvm yet");
        return f;
    }
    GuestControlHooks hooks_;
};

// Control: the request protocol above. ConsoleOnly (`--console socket:PATH`): every
// connection is a console from its first byte, no request line.
enum class ServerMode { Control, ConsoleOnly };

class ControlServer : public ConsoleSink {
public:
    // Binds `socket` (mode 0600; a stale socket file is replaced, a live one is an error)
    // and starts serving. Throws std::system_error / std::runtime_error.
    ControlServer(std::filesystem::path socket, GuestControl& guest,
                  ServerMode mode = ServerMode::Control);
    ~ControlServer() override;  // sends what it can of pending replies, stops the thread,
                                // closes clients, removes the socket
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Guest console output, from any thread: copied to every attached console client.
    // A client more than 1 MiB behind loses the oldest output rather than stall the guest.
    // Output while no console is attached is kept (the last 64 KiB) for the next one.
    void console_output(std::span<const std::uint8_t> bytes);
    void write(std::span<const std::uint8_t> bytes) override { console_output(bytes); }

    const std::filesystem::path& socket() const { return path_; }

private:
    struct Client {
        Fd fd;
        std::string in;
        std::string out;
        bool console = false;
        bool input_only = false;  // "console-input": typed bytes in, no output out
        bool closing = false;     // close once `out` is sent
    };
    void serve();
    void accept_clients();
    bool read_client(Client& c);
    bool write_client(Client& c);
    void handle_line(Client& c, const std::string& line);

    void attach_console(Client& c);

    std::filesystem::path path_;
    GuestControl& guest_;
    ServerMode mode_;
    std::string unclaimed_;  // server thread only: output no console client has seen
    Fd listen_;
    Fd wake_;  // eventfd: stop request or new console output
    std::mutex mutex_;
    std::string pending_console_;  // guarded by mutex_
    bool stopping_ = false;        // guarded by mutex_
    std::vector<Client> clients_;  // server thread only
    std::thread thread_;
};

// The client side (`ukvm ctl`): sends one command, returns the reply's lines (without
// the final blank line). Throws std::system_error when the socket cannot be reached.
struct ControlReply {
    bool ok = false;
    std::string error;               // set when !ok
    std::vector<std::string> lines;  // "key: value"
};
ControlReply control_request(const std::filesystem::path& socket, const std::string& command);
// A non-blocking connection that has sent "console-input": bytes written to it are typed on
// the guest's console. Throws when the socket cannot be reached or refuses.
Fd open_console_input(const std::filesystem::path& socket);

// `ukvm ctl SOCKET COMMAND`: prints the reply's lines on out (or "ukvm: ERROR" on err) and
// returns the exit status: 0 ok, 1 the guest refused or the socket cannot be reached.
// `console` attaches the terminal (raw mode) until the guest ends or Ctrl-] is typed;
// `attach` does the same on a console socket (`--console socket:PATH`, no request line).
int cli_ctl(const std::filesystem::path& socket, const std::string& command, std::ostream& out,
            std::ostream& err);

}  // namespace ukvm::control
