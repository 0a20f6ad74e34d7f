// guest.toml, parsed and validated: the one description of a guest the VMM boots.
#pragma once

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

enum class ConsoleOutput { Stdout, File, Null };
enum class ConsoleInput { Auto, Stdin, None };  // Auto: stdin when it is a terminal

struct ConsoleConfig {
    ConsoleOutput output = ConsoleOutput::Stdout;
    std::filesystem::path file;  // absolute; set when output == File
    ConsoleInput input = ConsoleInput::Auto;
};

// A virtio-blk disk backed by a raw image file.
struct DiskConfig {
    std::filesystem::path path;  // absolute; exists, readable (and writable unless read_only)
    bool read_only = false;
    std::string serial;  // the device ID (GET_ID), at most 20 printable ASCII characters
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
};

inline constexpr std::uint64_t kMinMemoryMib = 2;
inline constexpr std::uint64_t kMaxMemoryMib = 64 * 1024;
inline constexpr std::size_t kMaxDisks = 8;             // one IOAPIC input (16-23) each
inline constexpr std::size_t kMaxDiskSerialBytes = 20;  // VIRTIO_BLK_ID_BYTES

// Parses and validates a guest.toml; throws ConfigError naming file, line and key.
GuestConfig load_config(const std::filesystem::path& file);

}  // namespace ukvm
