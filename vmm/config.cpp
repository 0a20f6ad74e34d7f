// guest.toml → GuestConfig. Every check happens here, before anything is booted, so that
// a user's mistake is reported once, with the file, line, column and key it is about.
#include "vmm/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace ukvm {
namespace {

namespace fs = std::filesystem;

// Limits on what a guest is handed at boot; generous, but a typo cannot exhaust memory.
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxCmdlineBytes = 4096;
constexpr std::size_t kMaxModuleArgsBytes = 4096;
constexpr std::size_t kMaxModules = 64;
// A config is a few hundred bytes; anything this large is the wrong file.
constexpr std::uintmax_t kMaxConfigBytes = 1 << 20;

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

// "FILE:LINE:COL" (or just "FILE" when toml++ has no position).
std::string where(const fs::path& file, const toml::source_position& at) {
    std::string s = file.string();
    if (at.line != 0) s += ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
    return s;
}

std::string errno_text(int err) {
    return std::strerror(err);
}

// Closes the descriptor it owns.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

std::string read_config_text(const fs::path& file) {
    const std::string name = file.string();
    if (name.empty()) throw ConfigError("the config file path is empty");
    // O_NONBLOCK: a FIFO given by mistake must not hang the open; it is rejected below.
    const FileDescriptor fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            throw ConfigError(name + ": config file does not exist");
        throw ConfigError(name + ": cannot read config file: " + errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw ConfigError(name + ": cannot read config file: " + errno_text(errno));
    }
    if (!S_ISREG(st.st_mode)) throw ConfigError(name + ": config is not a regular file");
    if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigBytes) {
        throw ConfigError(name + ": config file is larger than 1 MiB");
    }
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw ConfigError(name + ": cannot read config file: " + errno_text(errno));
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxConfigBytes) {
            throw ConfigError(name + ": config file is larger than 1 MiB");
        }
    }
    return text;
}

// Reads a parsed guest.toml into a GuestConfig. Keys in messages are spelled as a user
// would look for them: "memory", "module[1].path", "console.output".
class ConfigReader {
public:
    ConfigReader(fs::path file, const toml::table& root)
        : file_(std::move(file)), dir_(fs::absolute(file_).parent_path()), root_(root) {}

    GuestConfig read() const {
        reject_unknown_keys(root_, "",
                            {"name", "memory", "vcpus", "kernel", "cmdline", "module", "console",
                             "disk", "net", "api_socket"});

        GuestConfig config;
        config.source = fs::absolute(file_).lexically_normal();
        config.name = read_name(require(root_, "name", "name"));
        if (const toml::node* n = root_.get("memory")) config.memory_mib = read_memory(*n);
        if (const toml::node* n = root_.get("vcpus")) config.vcpus = read_vcpus(*n);
        config.kernel = read_input_file(require(root_, "kernel", "kernel"), "kernel");
        if (const toml::node* n = root_.get("cmdline")) {
            config.cmdline = read_boot_string(*n, "cmdline", kMaxCmdlineBytes);
        }
        if (const toml::node* n = root_.get("module")) config.modules = read_modules(*n);
        if (const toml::node* n = root_.get("console")) config.console = read_console(*n);
        if (const toml::node* n = root_.get("disk")) config.disks = read_disks(*n);
        if (const toml::node* n = root_.get("net")) {
            config.nets = read_nets(*n, config.name, config.disks.size());
        }
        if (const toml::node* n = root_.get("api_socket")) {
            config.api_socket = read_socket_path(*n, "api_socket");
        }
        return config;
    }

private:
    [[noreturn]] void fail(const toml::source_region& at, std::string_view key,
                           std::string_view what) const {
        std::string msg = where(file_, at.begin);
        msg += ": ";
        msg += key;
        msg += ": ";
        msg += what;
        throw ConfigError(msg);
    }
    [[noreturn]] void fail(const toml::node& at, std::string_view key,
                           std::string_view what) const {
        fail(at.source(), key, what);
    }

    static std::string join(std::string_view prefix, std::string_view key) {
        return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
    }

    // Reports the unknown key that comes first in the file, so the error is stable.
    void reject_unknown_keys(const toml::table& table, std::string_view prefix,
                             std::initializer_list<std::string_view> known) const {
        const toml::key* first = nullptr;
        for (auto&& [key, value] : table) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            const auto& pos = key.source().begin;
            if (first == nullptr || pos < first->source().begin) first = &key;
        }
        if (first != nullptr) fail(first->source(), join(prefix, first->str()), "unknown key");
    }

    // A missing key is reported at the table that should hold it.
    const toml::node& require(const toml::table& table, std::string_view key,
                              std::string_view name) const {
        const toml::node* n = table.get(key);
        if (n == nullptr) fail(table, name, "required key is missing");
        return *n;
    }

    [[noreturn]] void wrong_type(const toml::node& n, std::string_view key,
                                 std::string_view expected) const {
        fail(n, key,
             "expected " + std::string(expected) + ", got " + std::string(type_name(n.type())));
    }

    const std::string& read_string(const toml::node& n, std::string_view key) const {
        const auto* s = n.as_string();
        if (s == nullptr) wrong_type(n, key, "a string");
        return s->get();
    }

    std::int64_t read_integer(const toml::node& n, std::string_view key) const {
        const auto* i = n.as_integer();
        if (i == nullptr) wrong_type(n, key, "an integer");
        return i->get();
    }

    const toml::table& read_table(const toml::node& n, std::string_view key) const {
        const auto* t = n.as_table();
        if (t == nullptr) wrong_type(n, key, "a table");
        return *t;
    }

    // One of a fixed set of words, e.g. console.output.
    template <typename Enum>
    Enum read_choice(const toml::node& n, std::string_view key,
                     std::initializer_list<std::pair<std::string_view, Enum>> choices) const {
        const std::string& value = read_string(n, key);
        std::string names;
        for (const auto& [name, e] : choices) {
            if (value == name) return e;
            names += names.empty() ? "" : ", ";
            names += "\"" + std::string(name) + "\"";
        }
        fail(n, key, "expected one of " + names + ", got \"" + value + "\"");
    }

    std::string read_name(const toml::node& n) const {
        const std::string& name = read_string(n, "name");
        if (name.empty()) fail(n, "name", "must not be empty");
        if (name.size() > kMaxNameLength) {
            fail(n, "name",
                 "is " + std::to_string(name.size()) + " characters long, the limit is " +
                     std::to_string(kMaxNameLength));
        }
        for (char c : name) {
            const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
            if (!ok) {
                const std::string shown = (c >= 0x20 && c < 0x7f) ? "'" + std::string(1, c) + "'"
                                                                  : "a control or non-ASCII byte";
                fail(n, "name", "contains " + shown + "; only A-Z a-z 0-9 _ . - are allowed");
            }
        }
        return name;
    }

    std::uint64_t read_memory(const toml::node& n) const {
        const std::int64_t mib = read_integer(n, "memory");
        if (mib < static_cast<std::int64_t>(kMinMemoryMib) ||
            mib > static_cast<std::int64_t>(kMaxMemoryMib)) {
            fail(n, "memory",
                 std::to_string(mib) + " MiB is out of range (" + std::to_string(kMinMemoryMib) +
                     ".." + std::to_string(kMaxMemoryMib) + " MiB)");
        }
        return static_cast<std::uint64_t>(mib);
    }

    unsigned read_vcpus(const toml::node& n) const {
        const std::int64_t vcpus = read_integer(n, "vcpus");
        if (vcpus != 1) {
            fail(n, "vcpus", "only 1 vCPU is supported for now, got " + std::to_string(vcpus));
        }
        return 1;
    }

    // The guest gets these bytes as a C string, so a NUL would silently truncate them.
    std::string read_boot_string(const toml::node& n, std::string_view key,
                                 std::size_t max_bytes) const {
        const std::string& s = read_string(n, key);
        if (s.size() > max_bytes) {
            fail(n, key,
                 "is " + std::to_string(s.size()) + " bytes long, the limit is " +
                     std::to_string(max_bytes));
        }
        if (s.find('\0') != std::string::npos) fail(n, key, "must not contain a NUL character");
        return s;
    }

    // A path from the config: non-empty, relative to the config file's directory.
    fs::path read_path(const toml::node& n, std::string_view key) const {
        const std::string& s = read_string(n, key);
        if (s.empty()) fail(n, key, "must not be empty (a file path is required)");
        if (s.find('\0') != std::string::npos) fail(n, key, "must not contain a NUL character");
        return (dir_ / fs::path(s)).lexically_normal();
    }

    // A file ukvm will load into the guest: it must exist, be a regular file and readable.
    fs::path read_input_file(const toml::node& n, std::string_view key) const {
        const fs::path path = read_path(n, key);
        const std::string quoted = "'" + path.string() + "'";
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            const int err = errno;
            if (err == ENOENT || err == ENOTDIR) fail(n, key, "file " + quoted + " does not exist");
            fail(n, key, "cannot access " + quoted + ": " + errno_text(err));
        }
        if (S_ISDIR(st.st_mode)) fail(n, key, quoted + " is a directory, not a file");
        if (!S_ISREG(st.st_mode)) fail(n, key, quoted + " is not a regular file");
        const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) fail(n, key, "file " + quoted + " is not readable: " + errno_text(errno));
        return path;
    }

    std::vector<ModuleConfig> read_modules(const toml::node& n) const {
        const auto* array = n.as_array();
        if (array == nullptr) wrong_type(n, "module", "an array of tables ([[module]])");
        if (array->size() > kMaxModules) {
            fail(n, "module",
                 std::to_string(array->size()) + " modules given, the limit is " +
                     std::to_string(kMaxModules));
        }
        std::vector<ModuleConfig> modules;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const std::string key = "module[" + std::to_string(i) + "]";
            const toml::table& table = read_table(*array->get(i), key);
            reject_unknown_keys(table, key, {"path", "args"});
            ModuleConfig module;
            const std::string path_key = key + ".path";
            module.path = read_input_file(require(table, "path", path_key), path_key);
            if (const toml::node* args = table.get("args")) {
                module.args = read_boot_string(*args, key + ".args", kMaxModuleArgsBytes);
            }
            modules.push_back(std::move(module));
        }
        return modules;
    }

    bool read_bool(const toml::node& n, std::string_view key) const {
        const auto* b = n.as_boolean();
        if (b == nullptr) wrong_type(n, key, "a boolean");
        return b->get();
    }

    std::vector<DiskConfig> read_disks(const toml::node& n) const {
        const auto* array = n.as_array();
        if (array == nullptr) wrong_type(n, "disk", "an array of tables ([[disk]])");
        if (array->size() > kMaxDisks) {
            fail(n, "disk",
                 std::to_string(array->size()) + " disks given, the limit is " +
                     std::to_string(kMaxDisks));
        }
        std::vector<DiskConfig> disks;
        std::vector<std::pair<dev_t, ino_t>> seen;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const std::string key = "disk[" + std::to_string(i) + "]";
            const toml::table& table = read_table(*array->get(i), key);
            reject_unknown_keys(table, key, {"path", "read_only", "serial"});
            DiskConfig disk;
            if (const toml::node* ro = table.get("read_only")) {
                disk.read_only = read_bool(*ro, key + ".read_only");
            }
            const std::string path_key = key + ".path";
            const toml::node& path = require(table, "path", path_key);
            disk.path = read_disk_image(path, path_key, disk.read_only);
            // Two disks on one image would corrupt it (and the image lock refuses it later).
            struct stat st {};
            if (::stat(disk.path.c_str(), &st) == 0) {
                const auto id = std::make_pair(st.st_dev, st.st_ino);
                const auto it = std::find(seen.begin(), seen.end(), id);
                if (it != seen.end()) {
                    fail(path, path_key,
                         "'" + disk.path.string() + "' is already disk[" +
                             std::to_string(it - seen.begin()) + "]");
                }
                seen.push_back(id);
            }
            if (const toml::node* serial = table.get("serial")) {
                disk.serial = read_serial(*serial, key + ".serial");
            }
            disks.push_back(std::move(disk));
        }
        return disks;
    }

    // A disk image: a regular file or block device the VMM can read, and write unless the
    // disk is read-only.
    fs::path read_disk_image(const toml::node& n, std::string_view key, bool read_only) const {
        const fs::path path = read_path(n, key);
        const std::string quoted = "'" + path.string() + "'";
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            const int err = errno;
            if (err == ENOENT || err == ENOTDIR) {
                fail(n, key, "disk image " + quoted + " does not exist");
            }
            fail(n, key, "cannot access " + quoted + ": " + errno_text(err));
        }
        if (S_ISDIR(st.st_mode)) fail(n, key, quoted + " is a directory, not a disk image");
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            fail(n, key, quoted + " is not a regular file or block device");
        }
        const FileDescriptor fd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
        if (fd.get() < 0) {
            const int err = errno;
            if (read_only)
                fail(n, key, "disk image " + quoted + " is not readable: " + errno_text(err));
            fail(n, key,
                 "disk image " + quoted + " is not writable: " + errno_text(err) +
                     " (set read_only = true to use it read-only)");
        }
        return path;
    }

    std::string read_serial(const toml::node& n, std::string_view key) const {
        const std::string& s = read_string(n, key);
        if (s.size() > kMaxDiskSerialBytes) {
            fail(n, key,
                 "is " + std::to_string(s.size()) + " bytes long, the limit is " +
                     std::to_string(kMaxDiskSerialBytes));
        }
        for (char c : s) {
            if (c < 0x20 || c > 0x7e) fail(n, key, "may only contain printable ASCII characters");
        }
        return s;
    }

    std::vector<NetConfig> read_nets(const toml::node& n, const std::string& guest,
                                     std::size_t disks) const {
        const auto* array = n.as_array();
        if (array == nullptr) wrong_type(n, "net", "an array of tables ([[net]])");
        if (disks + array->size() > kMaxVirtioDevices) {
            fail(n, "net",
                 std::to_string(disks) + " disks and " + std::to_string(array->size()) +
                     " NICs given, the limit is " + std::to_string(kMaxVirtioDevices) +
                     " virtio devices together");
        }
        std::vector<NetConfig> nets;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const std::string key = "net[" + std::to_string(i) + "]";
            const toml::table& table = read_table(*array->get(i), key);
            reject_unknown_keys(
                table, key,
                {"backend", "mac", "ifname", "bridge", "switch", "switch_dir", "hostfwd"});
            NetConfig net;
            net.backend = read_choice<NetBackendKind>(require(table, "backend", key + ".backend"),
                                                      key + ".backend",
                                                      {{"tap", NetBackendKind::Tap},
                                                       {"switch", NetBackendKind::Switch},
                                                       {"user", NetBackendKind::User}});
            net.mac = derived_mac(guest, i);
            if (const toml::node* mac = table.get("mac")) {
                net.mac = read_mac(*mac, key + ".mac");
                for (std::size_t j = 0; j < nets.size(); ++j) {
                    if (nets[j].mac == net.mac) {
                        fail(*mac, key + ".mac", "is also net[" + std::to_string(j) + "]'s MAC");
                    }
                }
            }
            // Each backend's own keys; another backend's key is a mistake worth naming.
            auto only_for = [&](std::string_view name, NetBackendKind kind, std::string_view b) {
                const toml::node* v = table.get(name);
                if (v != nullptr && net.backend != kind) {
                    fail(*v, key + "." + std::string(name),
                         "only allowed with backend = \"" + std::string(b) + "\"");
                }
                return v;
            };
            if (const toml::node* v = only_for("ifname", NetBackendKind::Tap, "tap")) {
                net.ifname = read_ifname(*v, key + ".ifname");
            }
            if (const toml::node* v = only_for("bridge", NetBackendKind::Tap, "tap")) {
                const std::string bkey = key + ".bridge";
                net.bridge = read_ifname(*v, bkey);
                if (::if_nametoindex(net.bridge.c_str()) == 0) {
                    fail(*v, bkey, "there is no network interface '" + net.bridge + "'");
                }
            }
            const toml::node* sw = only_for("switch", NetBackendKind::Switch, "switch");
            if (net.backend == NetBackendKind::Switch) {
                const std::string skey = key + ".switch";
                if (sw == nullptr) fail(table, skey, "required with backend = \"switch\"");
                net.switch_name = read_switch_name(*sw, skey);
            }
            if (const toml::node* v = only_for("switch_dir", NetBackendKind::Switch, "switch")) {
                net.switch_dir = read_path(*v, key + ".switch_dir");
            }
            if (const toml::node* v = only_for("hostfwd", NetBackendKind::User, "user")) {
                net.hostfwd = read_hostfwds(*v, key + ".hostfwd");
            }
            nets.push_back(std::move(net));
        }
        return nets;
    }

    MacAddress read_mac(const toml::node& n, const std::string& key) const {
        const std::string& s = read_string(n, key);
        MacAddress mac{};
        unsigned bytes[6];
        char tail = 0;
        if (s.size() != 17 ||
            std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2],
                        &bytes[3], &bytes[4], &bytes[5], &tail) != 6) {
            fail(n, key, "expected a MAC address like \"52:54:00:12:34:56\", got \"" + s + "\"");
        }
        for (int i = 0; i < 6; ++i) mac[i] = static_cast<std::uint8_t>(bytes[i]);
        if (mac[0] & 1) fail(n, key, "\"" + s + "\" is a multicast address; a NIC needs unicast");
        if (mac == MacAddress{}) fail(n, key, "the all-zero MAC address is not usable");
        return mac;
    }

    // A Linux interface name: 1..15 bytes, no '/', ':' or whitespace.
    std::string read_ifname(const toml::node& n, const std::string& key) const {
        const std::string& s = read_string(n, key);
        if (s.empty() || s.size() >= IFNAMSIZ) {
            fail(n, key, "an interface name has 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
        }
        if (s == "." || s == "..") fail(n, key, "'" + s + "' is not an interface name");
        for (char c : s) {
            if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':') {
                fail(n, key, "an interface name has no '/', ':', spaces or control characters");
            }
        }
        return s;
    }

    std::string read_switch_name(const toml::node& n, const std::string& key) const {
        const std::string& s = read_string(n, key);
        if (s.empty() || s.size() > 32) fail(n, key, "a switch name has 1 to 32 characters");
        if (s == "." || s == "..") fail(n, key, "'" + s + "' is not a switch name");
        for (char c : s) {
            const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
            if (!ok) fail(n, key, "a switch name uses only A-Z a-z 0-9 _ . -");
        }
        return s;
    }

    std::vector<HostForward> read_hostfwds(const toml::node& n, const std::string& key) const {
        std::vector<HostForward> out;
        if (n.is_string()) {
            out.push_back(read_hostfwd(n, key));
        } else if (const auto* array = n.as_array()) {
            for (std::size_t i = 0; i < array->size(); ++i) {
                out.push_back(read_hostfwd(*array->get(i), key + "[" + std::to_string(i) + "]"));
            }
        } else {
            wrong_type(n, key, "a string or an array of strings");
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
            for (std::size_t j = 0; j < i; ++j) {
                if (out[i].udp == out[j].udp && out[i].host_port == out[j].host_port &&
                    out[i].host_addr == out[j].host_addr) {
                    fail(n, key,
                         "\"" + out[i].text + "\" uses the host port of \"" + out[j].text +
                             "\" again");
                }
            }
        }
        return out;
    }

    // "tcp:8080-:80", "udp:127.0.0.1:5353-10.0.2.15:53", "tcp::8080-:80" (QEMU's spelling).
    HostForward read_hostfwd(const toml::node& n, const std::string& key) const {
        const std::string& s = read_string(n, key);
        const std::string form =
            "expected \"tcp|udp:[HOSTADDR:]HOSTPORT-[GUESTADDR]:GUESTPORT\" (e.g. "
            "\"tcp:8080-:80\"), got \"" +
            s + "\"";
        HostForward f;
        f.text = s;
        std::string rest;
        if (s.starts_with("tcp:")) {
            rest = s.substr(4);
        } else if (s.starts_with("udp:")) {
            f.udp = true;
            rest = s.substr(4);
        } else {
            fail(n, key, form);
        }
        const std::size_t dash = rest.find('-');
        if (dash == std::string::npos) fail(n, key, form);
        auto split = [&](const std::string& part, std::uint32_t& addr, std::uint16_t& port,
                         const char* which) {
            std::string a, p = part;
            if (const std::size_t colon = part.rfind(':'); colon != std::string::npos) {
                a = part.substr(0, colon);
                p = part.substr(colon + 1);
            }
            if (!a.empty()) {
                in_addr in{};
                if (::inet_pton(AF_INET, a.c_str(), &in) != 1) {
                    fail(n, key,
                         std::string(which) + " address '" + a + "' is not an IPv4 address");
                }
                addr = ntohl(in.s_addr);
            }
            char* end = nullptr;
            const long v = p.empty() ? 0 : std::strtol(p.c_str(), &end, 10);
            if (p.empty() || *end != '\0' || v < 1 || v > 65535) {
                fail(n, key, std::string(which) + " port '" + p + "' is not a port (1..65535)");
            }
            port = static_cast<std::uint16_t>(v);
        };
        split(rest.substr(0, dash), f.host_addr, f.host_port, "host");
        split(rest.substr(dash + 1), f.guest_addr, f.guest_port, "guest");
        return f;
    }

    ConsoleConfig read_console(const toml::node& n) const {
        const toml::table& table = read_table(n, "console");
        reject_unknown_keys(table, "console", {"output", "file", "input", "virtio", "socket"});
        ConsoleConfig console;
        if (const toml::node* out = table.get("output")) {
            console.output = read_choice<ConsoleOutput>(*out, "console.output",
                                                        {{"stdout", ConsoleOutput::Stdout},
                                                         {"file", ConsoleOutput::File},
                                                         {"null", ConsoleOutput::Null},
                                                         {"socket", ConsoleOutput::Socket}});
        }
        if (const toml::node* in = table.get("input")) {
            console.input = read_choice<ConsoleInput>(*in, "console.input",
                                                      {{"auto", ConsoleInput::Auto},
                                                       {"stdin", ConsoleInput::Stdin},
                                                       {"none", ConsoleInput::None}});
        }
        if (const toml::node* v = table.get("virtio")) {
            console.virtio = read_bool(*v, "console.virtio");
        }
        const toml::node* file = table.get("file");
        if (console.output == ConsoleOutput::File) {
            if (file == nullptr) {
                fail(table, "console.file", "required when console.output = \"file\"");
            }
            console.file = read_output_file(*file, "console.file");
        } else if (file != nullptr) {
            fail(*file, "console.file", "only allowed when console.output = \"file\"");
        }
        const toml::node* socket = table.get("socket");
        if (console.output == ConsoleOutput::Socket) {
            if (socket == nullptr) {
                fail(table, "console.socket", "required when console.output = \"socket\"");
            }
            console.socket = read_socket_path(*socket, "console.socket");
        } else if (socket != nullptr) {
            fail(*socket, "console.socket", "only allowed when console.output = \"socket\"");
        }
        return console;
    }

    // A unix socket ukvm will listen on: a file it creates, with sun_path's length limit.
    fs::path read_socket_path(const toml::node& n, std::string_view key) const {
        const fs::path path = read_output_file(n, key);
        if (path.string().size() > kMaxSocketPathBytes) {
            fail(n, key,
                 "'" + path.string() + "' is longer than " + std::to_string(kMaxSocketPathBytes) +
                     " bytes (a unix socket path's limit)");
        }
        return path;
    }

    // A file ukvm will write: it need not exist, but its directory must, and it must be
    // writable, so the mistake shows up now rather than after the guest has booted.
    fs::path read_output_file(const toml::node& n, std::string_view key) const {
        const fs::path path = read_path(n, key);
        const fs::path dir = path.parent_path();
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            if (S_ISDIR(st.st_mode)) fail(n, key, "'" + path.string() + "' is a directory");
            if (::access(path.c_str(), W_OK) != 0) {
                fail(n, key, "file '" + path.string() + "' is not writable: " + errno_text(errno));
            }
            return path;
        }
        if (::stat(dir.c_str(), &st) != 0) {
            const int err = errno;
            if (err == ENOENT || err == ENOTDIR) {
                fail(n, key, "directory '" + dir.string() + "' does not exist");
            }
            fail(n, key, "cannot access directory '" + dir.string() + "': " + errno_text(err));
        }
        if (!S_ISDIR(st.st_mode)) fail(n, key, "'" + dir.string() + "' is not a directory");
        if (::access(dir.c_str(), W_OK) != 0) {
            fail(n, key, "cannot create a file in '" + dir.string() + "': " + errno_text(errno));
        }
        return path;
    }

    fs::path file_;  // as the user named it, for messages
    fs::path dir_;   // absolute: where relative paths in the config start
    const toml::table& root_;
};

}  // namespace

MacAddress derived_mac(const std::string& guest_name, std::size_t index) {
    // FNV-1a over "name/index": stable across runs and builds, different per guest and NIC.
    std::uint64_t h = 0xcbf29ce484222325ull;
    const std::string text = guest_name + "/" + std::to_string(index);
    for (unsigned char c : text) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    MacAddress mac;
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<std::uint8_t>(h >> (8 * i));
    mac[0] = static_cast<std::uint8_t>((mac[0] & 0xFC) | 0x02);  // locally administered, unicast
    return mac;
}

GuestConfig load_config(const std::filesystem::path& file) {
    const std::string text = read_config_text(file);
    toml::table root;
    try {
        root = toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        std::string what(e.description());
        // toml++ says "Error while parsing X: ..."; fold that into one phrase.
        constexpr std::string_view kPrefix = "Error while";
        if (what.starts_with(kPrefix)) {
            what = "TOML syntax error while" + what.substr(kPrefix.size());
        } else {
            what = "TOML syntax error: " + what;
        }
        throw ConfigError(where(file, e.source().begin) + ": " + what);
    }
    return ConfigReader(file, root).read();
}

}  // namespace ukvm
