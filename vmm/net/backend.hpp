// Where a virtio-net device's frames go and come from: one NetBackend per [[net]] entry
// (tap.cpp, switch.cpp, user.cpp), all driven from the I/O thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "vmm/config.hpp"

namespace ukvm {

class IoThread;

// A backend that cannot be opened: no permission to create a tap, a switch directory that
// cannot be made, a host port already taken. The message names the config key.
class NetError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class NetBackend {
public:
    virtual ~NetBackend() = default;

    // Readable (level-triggered) while frames may be waiting for receive().
    virtual int rx_fd() const = 0;
    // Copies the next waiting frame into buf and returns its full length, which is more
    // than buf.size() when it did not fit (the device then drops it); nullopt when no
    // frame waits.
    virtual std::optional<std::size_t> receive(std::span<std::uint8_t> buf) = 0;
    // Sends one frame from the guest. A network that cannot take it now drops it, as a
    // wire would.
    virtual void send(std::span<const std::uint8_t> frame) = 0;
    // Registers work beyond rx_fd (timers, sockets) with the I/O thread, before it starts.
    virtual void attach(IoThread& io) { (void)io; }
    // For logs: "tap ukvm0", "switch lan0", "user".
    virtual std::string describe() const = 0;
};

// The backends, one per file (vmm/net/tap.cpp, switch.cpp, user.cpp).
std::unique_ptr<NetBackend> open_tap_backend(const NetConfig& config, const std::string& key);
std::unique_ptr<NetBackend> open_switch_backend(const NetConfig& config, const std::string& key);
std::unique_ptr<NetBackend> open_user_backend(const NetConfig& config, const std::string& key);

// Opens the backend a [[net]] entry names; `key` ("net[0]") prefixes error messages.
std::unique_ptr<NetBackend> open_net_backend(const NetConfig& config, const std::string& key);

// The MAC as "52:54:00:12:34:56".
std::string format_mac(const MacAddress& mac);

}  // namespace ukvm
