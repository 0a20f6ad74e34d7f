#include "vmm/ukvmd/guest_toml.hpp"

#include <toml++/toml.h>
#include <cstdio>
#include <sstream>

namespace ukvm::ukvmd {

std::string to_guest_toml(const GuestConfig& config) {
    // toml++ does the quoting, so names, paths and command lines cannot break the syntax.
    toml::table root{
        {"name", config.name},
        {"memory", static_cast<std::int64_t>(config.memory_mib)},
        {"vcpus", static_cast<std::int64_t>(config.vcpus)},
        {"kernel", config.kernel.string()},
        {"cmdline", config.cmdline},
    };
    if (!config.modules.empty()) {
        toml::array modules;
        for (const ModuleConfig& m : config.modules) {
            modules.push_back(toml::table{{"path", m.path.string()}, {"args", m.args}});
        }
        root.insert("module", std::move(modules));
    }
    if (!config.disks.empty()) {
        toml::array disks;
        for (const DiskConfig& d : config.disks) {
            toml::table disk{{"path", d.path.string()}, {"read_only", d.read_only}};
            if (!d.serial.empty()) disk.insert("serial", d.serial);
            disks.push_back(std::move(disk));
        }
        root.insert("disk", std::move(disks));
    }
    if (!config.nets.empty()) {
        toml::array nets;
        for (const NetConfig& n : config.nets) {
            toml::table net;
            char mac[18];
            std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", n.mac[0], n.mac[1],
                          n.mac[2], n.mac[3], n.mac[4], n.mac[5]);
            switch (n.backend) {
                case NetBackendKind::User:
                    net.insert("backend", "user");
                    if (!n.hostfwd.empty()) {
                        toml::array fwd;
                        for (const HostForward& f : n.hostfwd) fwd.push_back(f.text);
                        net.insert("hostfwd", std::move(fwd));
                    }
                    break;
                case NetBackendKind::Tap:
                    net.insert("backend", "tap");
                    if (!n.ifname.empty()) net.insert("ifname", n.ifname);
                    if (!n.bridge.empty()) net.insert("bridge", n.bridge);
                    break;
                case NetBackendKind::Switch:
                    net.insert("backend", "switch");
                    net.insert("switch", n.switch_name);
                    if (!n.switch_dir.empty()) net.insert("switch_dir", n.switch_dir.string());
                    break;
            }
            net.insert("mac", std::string(mac));
            nets.push_back(std::move(net));
        }
        root.insert("net", std::move(nets));
    }
    toml::table console;
    switch (config.console.output) {
        case ConsoleOutput::Stdout:
            console.insert("output", "stdout");
            break;
        case ConsoleOutput::Null:
            console.insert("output", "null");
            break;
        case ConsoleOutput::File:
            console.insert("output", "file");
            console.insert("file", config.console.file.string());
            break;
        case ConsoleOutput::Socket:
            console.insert("output", "socket");
            console.insert("socket", config.console.socket.string());
            break;
    }
    switch (config.console.input) {
        case ConsoleInput::Auto:
            console.insert("input", "auto");
            break;
        case ConsoleInput::Stdin:
            console.insert("input", "stdin");
            break;
        case ConsoleInput::None:
            console.insert("input", "none");
            break;
    }
    root.insert("console", std::move(console));
    if (!config.api_socket.empty()) root.insert("api_socket", config.api_socket.string());
    std::ostringstream out;
    out << "# Written by ukvmd from the domain definition; changes here are overwritten.\n"
        << root << "\n";
    return out.str();
}

}  // namespace ukvm::ukvmd
