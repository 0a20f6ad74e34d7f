#include "vmm/libvirt/domain_xml.hpp"

#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <pugixml.hpp>
#include <sstream>

namespace ukvm::libvirt {
namespace {

constexpr std::size_t kMaxCmdlineBytes = 4096;  // the same limits as guest.toml
constexpr std::size_t kMaxModules = 64;
constexpr std::size_t kMaxNameLength = 64;

[[noreturn]] void xml_error(const std::string& what) {
    throw DomainXmlError(err::kXmlError, what);
}
[[noreturn]] void unsupported(const std::string& what) {
    throw DomainXmlError(err::kConfigUnsupported, what);
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

std::uint64_t parse_unsigned(const std::string& text, const std::string& element) {
    const std::string t = trim(text);
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
        xml_error(element + ": expected an unsigned integer, got '" + t + "'");
    }
    return v;
}

// libvirt's memory units (docs: formatdomain "Memory Allocation"); the default is KiB.
std::uint64_t unit_bytes(const std::string& unit, const std::string& element) {
    static const std::pair<const char*, std::uint64_t> kUnits[] = {
        {"b", 1},
        {"bytes", 1},
        {"KB", 1000},
        {"k", 1024},
        {"KiB", 1024},
        {"MB", 1000ull * 1000},
        {"M", 1024ull * 1024},
        {"MiB", 1024ull * 1024},
        {"GB", 1000ull * 1000 * 1000},
        {"G", 1024ull * 1024 * 1024},
        {"GiB", 1024ull * 1024 * 1024},
        {"TB", 1000ull * 1000 * 1000 * 1000},
        {"T", 1024ull * 1024 * 1024 * 1024},
        {"TiB", 1024ull * 1024 * 1024 * 1024},
    };
    if (unit.empty()) return 1024;
    for (const auto& [name, bytes] : kUnits) {
        if (unit == name) return bytes;
    }
    xml_error(element + ": unknown unit '" + unit + "'");
}

// A memory size element in whole MiB, rounded up (ukvm sizes RAM in MiB).
std::uint64_t memory_mib(const pugi::xml_node& n, const std::string& element) {
    const std::uint64_t value = parse_unsigned(n.child_value(), element);
    const std::uint64_t unit = unit_bytes(n.attribute("unit").value(), element);
    if (value > UINT64_MAX / unit) xml_error(element + ": value is too large");
    const std::uint64_t bytes = value * unit;
    return bytes / (1024 * 1024) + (bytes % (1024 * 1024) != 0 ? 1 : 0);
}

// The namespace URI an element is in: its prefix's xmlns declaration on it or an ancestor.
std::string namespace_of(const pugi::xml_node& n) {
    const std::string_view name = n.name();
    const auto colon = name.find(':');
    const std::string attr =
        colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
    for (pugi::xml_node p = n; p; p = p.parent()) {
        if (pugi::xml_attribute a = p.attribute(attr.c_str())) return a.value();
    }
    return {};
}

std::string_view local_name(const pugi::xml_node& n) {
    const std::string_view name = n.name();
    const auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string check_boot_string(const std::string& s, const std::string& element) {
    if (s.size() > kMaxCmdlineBytes) {
        xml_error(element + ": is " + std::to_string(s.size()) + " bytes long, the limit is " +
                  std::to_string(kMaxCmdlineBytes));
    }
    return s;
}

std::filesystem::path absolute_path(const std::string& s, const std::string& element) {
    if (s.empty()) xml_error(element + ": a file path is required");
    if (s.front() != '/') {
        xml_error(element + ": '" + s +
                  "' is not an absolute path (domain XML has no base directory)");
    }
    return std::filesystem::path(s).lexically_normal();
}

void read_modules(const pugi::xml_node& modules, DomainDefinition& def) {
    for (pugi::xml_node m : modules.children()) {
        if (m.type() != pugi::node_element) continue;
        if (local_name(m) != "module" || namespace_of(m) != kUkvmXmlns) {
            unsupported("<metadata><ukvm:modules>: unexpected element <" + std::string(m.name()) +
                        ">");
        }
        const std::string element =
            "<metadata><ukvm:modules><ukvm:module> " + std::to_string(def.config.modules.size());
        if (def.config.modules.size() == kMaxModules) {
            xml_error("<metadata><ukvm:modules>: more than " + std::to_string(kMaxModules) +
                      " modules");
        }
        ModuleConfig module;
        module.path = absolute_path(m.attribute("path").value(), element + " path");
        module.args = check_boot_string(m.attribute("args").value(), element + " args");
        def.config.modules.push_back(std::move(module));
    }
}

void read_metadata(const pugi::xml_node& metadata, DomainDefinition& def, bool& have_modules) {
    for (pugi::xml_node n : metadata.children()) {
        if (n.type() != pugi::node_element) continue;
        if (namespace_of(n) == kUkvmXmlns) {
            if (local_name(n) != "modules") {
                unsupported("<metadata>: unknown ukvm element <" + std::string(n.name()) + ">");
            }
            if (have_modules) xml_error("<metadata>: more than one <ukvm:modules>");
            have_modules = true;
            read_modules(n, def);
            continue;
        }
        std::ostringstream out;
        n.print(out, "  ", pugi::format_default | pugi::format_no_declaration);
        def.foreign_metadata.push_back(out.str());
    }
}

void read_os(const pugi::xml_node& os, DomainDefinition& def, bool have_modules) {
    bool have_type = false, have_kernel = false;
    for (pugi::xml_node n : os.children()) {
        if (n.type() != pugi::node_element) continue;
        const std::string name = n.name();
        if (name == "type") {
            const std::string type = trim(n.child_value());
            if (type != kOsType) {
                unsupported("<os><type>: '" + type + "' is not supported; ukvm guests are '" +
                            std::string(kOsType) + "'");
            }
            const std::string arch = n.attribute("arch").value();
            if (!arch.empty() && arch != "x86_64") {
                unsupported("<os><type arch='" + arch + "'>: only x86_64 is supported");
            }
            const std::string machine = n.attribute("machine").value();
            if (!machine.empty() && machine != kDomainType) {
                unsupported("<os><type machine='" + machine + "'>: only 'ukvm' is supported");
            }
            have_type = true;
        } else if (name == "kernel") {
            def.config.kernel = absolute_path(n.child_value(), "<os><kernel>");
            have_kernel = true;
        } else if (name == "cmdline") {
            def.config.cmdline = check_boot_string(n.child_value(), "<os><cmdline>");
        } else if (name == "initrd") {
            // One more module without arguments: what an initrd means to a Multiboot kernel.
            if (have_modules) {
                xml_error(
                    "<os><initrd>: use either <initrd> or <metadata><ukvm:modules>, not both");
            }
            def.config.modules.push_back({absolute_path(n.child_value(), "<os><initrd>"), ""});
        } else {
            unsupported("<os><" + name + ">: not supported (ukvm boots <kernel> directly)");
        }
    }
    if (!have_type) xml_error("<os><type>: missing (expected '" + std::string(kOsType) + "')");
    if (!have_kernel) xml_error("<os><kernel>: missing (ukvm boots a kernel image directly)");
}

void check_pty(const pugi::xml_node& n) {
    const std::string name = n.name();
    const std::string type = n.attribute("type").value();
    if (type != "pty") {
        unsupported("<devices><" + name + " type='" + type +
                    "'>: only type='pty' is supported (the guest's console)");
    }
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        const std::string child = c.name();
        if (child == "target") {
            const std::string port = c.attribute("port").value();
            if (!port.empty() && port != "0") {
                unsupported("<devices><" + name + "><target port='" + port +
                            "'>: ukvm guests have one console, port 0");
            }
        } else if (child != "alias" && child != "source" && child != "log") {
            unsupported("<devices><" + name + "><" + child + ">: not supported");
        }
    }
}

bool printable_ascii(const std::string& s) {
    for (char c : s) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

// <disk type='file|block' device='disk'>: a virtio-blk disk on a raw image.
DiskConfig read_disk(const pugi::xml_node& n, std::size_t index) {
    const std::string element = "<devices><disk> " + std::to_string(index);
    const std::string type = n.attribute("type").value();
    if (type != "file" && type != "block") {
        unsupported(element + ": type='" + type + "' is not supported (file or block)");
    }
    const std::string device = n.attribute("device").value();
    if (!device.empty() && device != "disk") {
        unsupported(element + ": device='" + device + "' is not supported (disk)");
    }
    DiskConfig disk;
    bool have_source = false;
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        const std::string child = c.name();
        if (child == "source") {
            const char* attr = type == "file" ? "file" : "dev";
            disk.path =
                absolute_path(c.attribute(attr).value(), element + " <source " + attr + ">");
            have_source = true;
        } else if (child == "driver") {
            const std::string format = c.attribute("type").value();
            if (!format.empty() && format != "raw") {
                unsupported(element + " <driver type='" + format + "'>: only raw images");
            }
        } else if (child == "target") {
            const std::string bus = c.attribute("bus").value();
            if (!bus.empty() && bus != "virtio") {
                unsupported(element + " <target bus='" + bus + "'>: only virtio");
            }
        } else if (child == "readonly") {
            disk.read_only = true;
        } else if (child == "serial") {
            disk.serial = c.child_value();
            if (disk.serial.size() > kMaxDiskSerialBytes || !printable_ascii(disk.serial)) {
                xml_error(element + " <serial>: at most " + std::to_string(kMaxDiskSerialBytes) +
                          " printable ASCII characters");
            }
        } else if (child != "alias" && child != "address") {
            unsupported(element + " <" + child + ">: not supported");
        }
    }
    if (!have_source) xml_error(element + ": <source> is missing");
    return disk;
}

// A Linux interface name (a bridge or tap): 1..15 bytes, no '/', ':' or whitespace.
std::string interface_name(const std::string& s, const std::string& element) {
    if (s.empty() || s.size() > 15) xml_error(element + ": an interface name has 1 to 15 bytes");
    if (s == "." || s == "..") xml_error(element + ": '" + s + "' is not an interface name");
    for (char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':') {
            xml_error(element + ": '" + s + "' is not an interface name");
        }
    }
    return s;
}

MacAddress parse_mac(const std::string& s, const std::string& element) {
    MacAddress mac{};
    unsigned bytes[6];
    char tail = 0;
    if (s.size() != 17 || std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1],
                                      &bytes[2], &bytes[3], &bytes[4], &bytes[5], &tail) != 6) {
        xml_error(element + ": expected a MAC address like '52:54:00:12:34:56', got '" + s + "'");
    }
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<std::uint8_t>(bytes[i]);
    if (mac[0] & 1) xml_error(element + ": '" + s + "' is a multicast address");
    if (mac == MacAddress{}) xml_error(element + ": the all-zero MAC address is not usable");
    return mac;
}

// <interface type='user|bridge|ethernet|network'>: a virtio-net NIC ([[net]] in guest.toml,
// docs/management.md). The MAC is left zero when absent (derived once the name is known).
NetConfig read_interface(const pugi::xml_node& n, std::size_t index) {
    const std::string element = "<devices><interface> " + std::to_string(index);
    const std::string type = n.attribute("type").value();
    NetConfig net;
    if (type == "user") {
        net.backend = NetBackendKind::User;
    } else if (type == "bridge" || type == "ethernet") {
        net.backend = NetBackendKind::Tap;
    } else if (type == "network") {
        net.backend = NetBackendKind::Switch;
    } else {
        unsupported(element + ": type='" + type +
                    "' is not supported (user, bridge, ethernet or network)");
    }
    bool have_source = false;
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        const std::string child = c.name();
        if (child == "mac") {
            net.mac = parse_mac(c.attribute("address").value(), element + " <mac address>");
        } else if (child == "model") {
            const std::string model = c.attribute("type").value();
            if (model != "virtio") {
                unsupported(element + " <model type='" + model + "'>: only virtio");
            }
        } else if (child == "source" && type == "bridge") {
            net.bridge =
                interface_name(c.attribute("bridge").value(), element + " <source bridge>");
            have_source = true;
        } else if (child == "source" && type == "network") {
            const std::string name = c.attribute("network").value();
            const std::string what = element + " <source network>";
            if (name.empty() || name.size() > 32 || name == "." || name == "..") {
                xml_error(what + ": a network (ukvm switch) name has 1 to 32 characters");
            }
            for (char ch : name) {
                if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' &&
                    ch != '-') {
                    xml_error(what + ": '" + name +
                              "' uses characters other than A-Z a-z 0-9 _ . -");
                }
            }
            net.switch_name = name;
            have_source = true;
        } else if (child == "target" && net.backend == NetBackendKind::Tap) {
            net.ifname = interface_name(c.attribute("dev").value(), element + " <target dev>");
        } else if (child != "alias" && child != "address") {
            unsupported(element + " <" + child + ">: not supported with type='" + type + "'");
        }
    }
    if ((type == "bridge" || type == "network") && !have_source) {
        xml_error(element + ": <source " + (type == "bridge" ? "bridge" : "network") +
                  "> is missing");
    }
    return net;
}

void read_devices(const pugi::xml_node& devices, DomainDefinition& def) {
    for (pugi::xml_node n : devices.children()) {
        if (n.type() != pugi::node_element) continue;
        const std::string name = n.name();
        if (name == "console" || name == "serial") {
            check_pty(n);
        } else if (name == "memballoon") {
            const std::string model = n.attribute("model").value();
            if (model != "none") {
                unsupported("<devices><memballoon model='" + model +
                            "'>: no balloon device; use model='none'");
            }
        } else if (name == "disk") {
            if (def.config.disks.size() == kMaxDisks) {
                unsupported("<devices><disk>: more than " + std::to_string(kMaxDisks) + " disks");
            }
            def.config.disks.push_back(read_disk(n, def.config.disks.size()));
        } else if (name == "interface") {
            def.config.nets.push_back(read_interface(n, def.config.nets.size()));
        } else {
            unsupported("<devices><" + name + ">: device not supported by ukvm");
        }
    }
}

// on_poweroff, on_reboot, on_crash: 'destroy' leaves the domain shut off, 'restart' has
// ukvmd start it again (docs/management.md). libvirt's other actions keep a stopped VM
// around or rename it, which a ukvm process (it ends with its guest) cannot do.
void read_lifecycle(const pugi::xml_node& n, DomainDefinition& def) {
    const std::string name = n.name();
    const std::string value = trim(n.child_value());
    DomainDefinition::Lifecycle& action = name == "on_poweroff" ? def.on_poweroff
                                          : name == "on_reboot" ? def.on_reboot
                                                                : def.on_crash;
    if (value == "destroy") {
        action = DomainDefinition::Lifecycle::Destroy;
    } else if (value == "restart") {
        action = DomainDefinition::Lifecycle::Restart;
    } else if (value == "preserve" || value == "rename-restart" || value == "coredump-destroy" ||
               value == "coredump-restart") {
        unsupported("<" + name + ">: '" + value +
                    "' is not supported, only 'destroy' or 'restart'");
    } else {
        xml_error("<" + name + ">: unknown action '" + value + "'");
    }
}

const char* lifecycle_name(DomainDefinition::Lifecycle action) {
    return action == DomainDefinition::Lifecycle::Restart ? "restart" : "destroy";
}

}  // namespace

std::optional<std::string> invalid_name_reason(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (name.size() > kMaxNameLength) {
        return "is " + std::to_string(name.size()) + " characters long, the limit is " +
               std::to_string(kMaxNameLength);
    }
    if (name.front() == '.') return "must not start with '.'";
    for (char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) return "contains a character outside A-Z a-z 0-9 _ . -";
    }
    return std::nullopt;
}

std::string format_uuid(const Uuid& u) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < u.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += kHex[u[i] >> 4];
        s += kHex[u[i] & 15];
    }
    return s;
}

std::optional<Uuid> parse_uuid(std::string_view text) {
    std::string hex;
    const bool dashed = text.size() == 36;
    if (!dashed && text.size() != 32) return std::nullopt;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (text[i] != '-') return std::nullopt;
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
        hex += text[i];
    }
    Uuid u{};
    for (std::size_t i = 0; i < 16; ++i) {
        u[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    }
    return u;
}

Uuid random_uuid() {
    Uuid u{};
    std::size_t got = 0;
    while (got < u.size()) {
        const ssize_t n = ::getrandom(u.data() + got, u.size() - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
        }
        got += static_cast<std::size_t>(n);
    }
    u[6] = static_cast<std::uint8_t>((u[6] & 0x0f) | 0x40);  // version 4
    u[8] = static_cast<std::uint8_t>((u[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return u;
}

DomainDefinition parse_domain_xml(std::string_view xml) {
    pugi::xml_document doc;
    // No DTDs or entity expansion in pugixml, so a hostile document cannot blow up.
    const pugi::xml_parse_result r = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default);
    if (!r) {
        xml_error(std::string("malformed domain XML at offset ") + std::to_string(r.offset) + ": " +
                  r.description());
    }
    const pugi::xml_node root = doc.document_element();
    if (std::string_view(root.name()) != "domain") {
        xml_error("expected a <domain> root element, got <" + std::string(root.name()) + ">");
    }
    const std::string type = root.attribute("type").value();
    if (type.empty()) xml_error("<domain>: the type attribute is missing (use type='ukvm')");
    if (type != kDomainType && type != "kvm") {
        unsupported("<domain type='" + type + "'>: only 'ukvm' (or 'kvm') is supported");
    }

    DomainDefinition def;
    def.config.vcpus = 1;
    bool have_name = false, have_uuid = false, have_memory = false, have_os = false;
    bool have_modules = false;
    std::optional<std::uint64_t> current_mib;
    pugi::xml_node os;
    // <metadata> can follow <os>; modules are read first so <initrd> can be checked.
    if (pugi::xml_node metadata = root.child("metadata"))
        read_metadata(metadata, def, have_modules);
    for (pugi::xml_node n : root.children()) {
        if (n.type() != pugi::node_element) continue;
        const std::string name = n.name();
        if (name == "name") {
            def.config.name = n.child_value();
            if (auto why = invalid_name_reason(def.config.name)) xml_error("<name>: " + *why);
            have_name = true;
        } else if (name == "uuid") {
            const std::string text = trim(n.child_value());
            auto u = parse_uuid(text);
            if (!u) xml_error("<uuid>: '" + text + "' is not a UUID");
            def.uuid = *u;
            have_uuid = true;
        } else if (name == "title") {
            def.title = n.child_value();
        } else if (name == "description") {
            def.description = n.child_value();
        } else if (name == "metadata") {
            // read above
        } else if (name == "memory") {
            const std::uint64_t mib = memory_mib(n, "<memory>");
            if (mib < kMinMemoryMib || mib > kMaxMemoryMib) {
                unsupported("<memory>: " + std::to_string(mib) + " MiB is out of range (" +
                            std::to_string(kMinMemoryMib) + ".." + std::to_string(kMaxMemoryMib) +
                            " MiB)");
            }
            def.config.memory_mib = mib;
            have_memory = true;
        } else if (name == "currentMemory") {
            current_mib = memory_mib(n, "<currentMemory>");
        } else if (name == "vcpu") {
            const std::uint64_t vcpus = parse_unsigned(n.child_value(), "<vcpu>");
            if (vcpus != 1) {
                unsupported("<vcpu>: only 1 vCPU is supported for now, got " +
                            std::to_string(vcpus));
            }
            const std::string current = n.attribute("current").value();
            if (!current.empty() && parse_unsigned(current, "<vcpu current>") != 1) {
                unsupported("<vcpu current='" + current + "'>: only 1 vCPU is supported");
            }
        } else if (name == "os") {
            os = n;
            have_os = true;
        } else if (name == "on_poweroff" || name == "on_reboot" || name == "on_crash") {
            read_lifecycle(n, def);
        } else if (name == "devices") {
            read_devices(n, def);
        } else {
            unsupported("<" + name + ">: not supported by ukvm");
        }
    }
    if (!have_name) xml_error("<name>: missing");
    if (!have_memory) xml_error("<memory>: missing");
    if (!have_os) xml_error("<os>: missing");
    read_os(os, def, have_modules);
    if (current_mib && *current_mib != def.config.memory_mib) {
        unsupported("<currentMemory>: " + std::to_string(*current_mib) +
                    " MiB differs from <memory> (" + std::to_string(def.config.memory_mib) +
                    " MiB); ukvm has no balloon");
    }
    if (def.config.disks.size() + def.config.nets.size() > kMaxVirtioDevices) {
        unsupported("<devices>: more than " + std::to_string(kMaxVirtioDevices) +
                    " disks and interfaces together");
    }
    auto& nets = def.config.nets;
    for (std::size_t i = 0; i < nets.size(); ++i) {
        // As libvirt does, a NIC without <mac> gets one at define time (kept from then on).
        if (nets[i].mac == MacAddress{}) nets[i].mac = derived_mac(def.config.name, i);
        for (std::size_t j = 0; j < i; ++j) {
            if (nets[j].mac == nets[i].mac) {
                xml_error("<devices><interface> " + std::to_string(i) +
                          " <mac address>: also interface " + std::to_string(j) + "'s MAC");
            }
        }
    }
    if (!have_uuid) def.uuid = random_uuid();
    return def;
}

std::string format_domain_xml(const DomainDefinition& def, int id) {
    pugi::xml_document doc;
    pugi::xml_node domain = doc.append_child("domain");
    domain.append_attribute("type") = std::string(kDomainType).c_str();
    if (id >= 0) domain.append_attribute("id") = id;
    auto text_child = [](pugi::xml_node parent, const char* name, const std::string& text) {
        pugi::xml_node n = parent.append_child(name);
        n.append_child(pugi::node_pcdata).set_value(text.c_str());
        return n;
    };
    text_child(domain, "name", def.config.name);
    text_child(domain, "uuid", format_uuid(def.uuid));
    if (!def.title.empty()) text_child(domain, "title", def.title);
    if (!def.description.empty()) text_child(domain, "description", def.description);
    if (!def.config.modules.empty() || !def.foreign_metadata.empty()) {
        pugi::xml_node metadata = domain.append_child("metadata");
        if (!def.config.modules.empty()) {
            pugi::xml_node modules = metadata.append_child("ukvm:modules");
            modules.append_attribute("xmlns:ukvm") = std::string(kUkvmXmlns).c_str();
            for (const ModuleConfig& m : def.config.modules) {
                pugi::xml_node module = modules.append_child("ukvm:module");
                module.append_attribute("path") = m.path.c_str();
                if (!m.args.empty()) module.append_attribute("args") = m.args.c_str();
            }
        }
        for (const std::string& foreign : def.foreign_metadata) {
            pugi::xml_document piece;
            if (piece.load_string(foreign.c_str())) {
                metadata.append_copy(piece.document_element());
            }
        }
    }
    const std::string kib = std::to_string(def.config.memory_mib * 1024);
    text_child(domain, "memory", kib).append_attribute("unit") = "KiB";
    text_child(domain, "currentMemory", kib).append_attribute("unit") = "KiB";
    text_child(domain, "vcpu", std::to_string(def.config.vcpus)).append_attribute("placement") =
        "static";
    pugi::xml_node os = domain.append_child("os");
    text_child(os, "type", std::string(kOsType)).append_attribute("arch") = "x86_64";
    text_child(os, "kernel", def.config.kernel.string());
    if (!def.config.cmdline.empty()) text_child(os, "cmdline", def.config.cmdline);
    text_child(domain, "on_poweroff", lifecycle_name(def.on_poweroff));
    text_child(domain, "on_reboot", lifecycle_name(def.on_reboot));
    text_child(domain, "on_crash", lifecycle_name(def.on_crash));
    pugi::xml_node devices = domain.append_child("devices");
    for (std::size_t i = 0; i < def.config.disks.size(); ++i) {
        const DiskConfig& d = def.config.disks[i];
        const bool block = d.path.string().rfind("/dev/", 0) == 0;
        pugi::xml_node disk = devices.append_child("disk");
        disk.append_attribute("type") = block ? "block" : "file";
        disk.append_attribute("device") = "disk";
        pugi::xml_node driver = disk.append_child("driver");
        driver.append_attribute("name") = "ukvm";
        driver.append_attribute("type") = "raw";
        disk.append_child("source").append_attribute(block ? "dev" : "file") = d.path.c_str();
        pugi::xml_node target = disk.append_child("target");
        // Guests see the disks in this order; the names follow it.
        target.append_attribute("dev") =
            ("vd" + std::string(1, static_cast<char>('a' + i))).c_str();
        target.append_attribute("bus") = "virtio";
        if (d.read_only) disk.append_child("readonly");
        if (!d.serial.empty()) text_child(disk, "serial", d.serial);
    }
    for (const NetConfig& net : def.config.nets) {
        pugi::xml_node nic = devices.append_child("interface");
        switch (net.backend) {
            case NetBackendKind::User:
                nic.append_attribute("type") = "user";
                break;
            case NetBackendKind::Tap:
                nic.append_attribute("type") = net.bridge.empty() ? "ethernet" : "bridge";
                if (!net.bridge.empty()) {
                    nic.append_child("source").append_attribute("bridge") = net.bridge.c_str();
                }
                break;
            case NetBackendKind::Switch:
                nic.append_attribute("type") = "network";
                nic.append_child("source").append_attribute("network") = net.switch_name.c_str();
                break;
        }
        char mac[18];
        std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", net.mac[0], net.mac[1],
                      net.mac[2], net.mac[3], net.mac[4], net.mac[5]);
        nic.append_child("mac").append_attribute("address") = mac;
        if (net.backend == NetBackendKind::Tap && !net.ifname.empty()) {
            nic.append_child("target").append_attribute("dev") = net.ifname.c_str();
        }
        nic.append_child("model").append_attribute("type") = "virtio";
    }
    pugi::xml_node console = devices.append_child("console");
    console.append_attribute("type") = "pty";
    pugi::xml_node target = console.append_child("target");
    target.append_attribute("type") = "serial";
    target.append_attribute("port") = "0";

    std::ostringstream out;
    doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
    return out.str();
}

}  // namespace ukvm::libvirt
