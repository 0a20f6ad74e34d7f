// guest.toml, parsed and validated: the one description of a guest the VMM boots.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ukvm {

// A user's mistake in a config: the message names the file, line and key.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ModuleConfig {
    std::filesystem::path path;  // absolute (resolved against the config's directory)
    std::string args;            // appended to the module's Multiboot command line
};

// Socket: served on a unix socket for `ukvm ctl`/socat to attach to (docs/control-api.md).
enum class ConsoleOutput { Stdout, File, Null, Socket };
enum class ConsoleInput { Auto, Stdin, None };  // Auto: stdin when it is a terminal

struct ConsoleConfig {
    ConsoleOutput output = ConsoleOutput::Stdout;
    std::filesystem::path file;    // absolute; set when output == File
    std::filesystem::path socket;  // absolute; set when output == Socket (input comes from it)
    ConsoleInput input = ConsoleInput::Auto;
    // Also offer a virtio-console device (PCI); while a driver runs it, input goes there
    // instead of COM1, and its output joins the console.
    bool virtio = false;
};

// A virtio-blk disk backed by a raw image file.
struct DiskConfig {
    std::filesystem::path path;  // absolute; exists, readable (and writable unless read_only)
    bool read_only = false;
    std::string serial;  // the device ID (GET_ID), at most 20 printable ASCII characters
};

using MacAddress = std::array<std::uint8_t, 6>;

enum class NetBackendKind { Tap, Switch, User };

// A user-backend port forward: connections to host_addr:host_port reach the guest.
struct HostForward {
    bool udp = false;
    std::uint32_t host_addr = 0x7F000001;  // IPv4, host byte order; default loopback
    std::uint16_t host_port = 0;
    std::uint32_t guest_addr = 0;  // 0: the address the user network gives the guest
    std::uint16_t guest_port = 0;
    std::string text;  // as written, for messages
};

// A virtio-net NIC and the backend it is plugged into (docs/configuration.md).
struct NetConfig {
    NetBackendKind backend = NetBackendKind::User;
    MacAddress mac{};         // from the config, or derived from the guest name and the index
    std::string ifname;       // tap: an existing tap, or the name of one to create ("": ukvmN)
    std::string bridge;       // tap: a bridge to attach it to ("": none)
    std::string switch_name;  // switch: which switch
    std::filesystem::path switch_dir;  // switch: where switches live ("": the default)
    std::vector<HostForward> hostfwd;  // user
};

struct GuestConfig {
    std::filesystem::path source;  // the config file itself (empty when built in code)
    std::string name;
    std::uint64_t memory_mib = 64;
    unsigned vcpus = 1;
    std::filesystem::path kernel;  // absolute
    std::string cmdline;
    std::vector<ModuleConfig> modules;
    ConsoleConfig console;
    std::vector<DiskConfig> disks;
    std::vector<NetConfig> nets;
    std::filesystem::path api_socket;  // the control socket (docs/control-api.md); empty: none
};

inline constexpr std::uint64_t kMinMemoryMib = 2;
inline constexpr std::uint64_t kMaxMemoryMib = 64 * 1024;
inline constexpr std::size_t kMaxDisks = 8;             // one IOAPIC input (16-23) each
inline constexpr std::size_t kMaxDiskSerialBytes = 20;  // VIRTIO_BLK_ID_BYTES
// Disks and NICs together: each takes one IOAPIC input of 16-23 (docs/virtio.md).
inline constexpr std::size_t kMaxVirtioDevices = 8;

// The MAC a NIC gets when the config names none: locally administered, unicast, the same
// for the same guest name and [[net]] index on every run.
MacAddress derived_mac(const std::string& guest_name, std::size_t index);
inline constexpr std::size_t kMaxSocketPathBytes = 107;  // sockaddr_un.sun_path, with the NUL

// Parses and validates a guest.toml; throws ConfigError naming file, line and key.
GuestConfig load_config(const std::filesystem::path& file);

}  // namespace ukvm
