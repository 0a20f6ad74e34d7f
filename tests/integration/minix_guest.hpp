// The MINIX-style system (configs/minix.toml) as the integration tests boot it: the shipped
// config pointed at this build's guest images, booted under ukvm with a script on the
// console, or the same images under QEMU. Header-only, next to process.hpp.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/process.hpp"

namespace ukvm::test {

// A file's bytes (empty if it cannot be read).
inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The shipped configs/minix.toml with its "../build/" paths pointing at this build's guests
// and without the shipped root disk: the build's one image would be locked by each of the
// tests running at once, so a test that wants a disk appends its own [[disk]].
inline std::string minix_config() {
    std::string text = read_text(std::filesystem::path(UKVM_SOURCE_DIR) / "configs" / "minix.toml");
    const std::string from = "\"../build/";
    const std::string to = "\"" + std::string(UKVM_GUEST_DIR) + "/";
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
        text.replace(at, from.size(), to);
    return std::regex_replace(text, std::regex("\\[\\[disk\\]\\]\npath = \"[^\"]*\"\n"), "");
}

// The values of a config's `key = "..."` lines, in order.
inline std::vector<std::string> config_values(const std::string& config, const std::string& key) {
    std::vector<std::string> out;
    std::regex re("^" + key + " = \"([^\"]*)\"$");
    std::istringstream in(config);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, re)) out.push_back(m[1]);
    }
    return out;
}

// RS also supervises the services named in args (its boot arguments, NAME:PROGRAM:ARG or
// a program name); false if config has no RS module.
inline bool add_rs_args(std::string& config, const std::string& args) {
    const std::string rs = "guest-servers/rs\"\nargs = \"";
    const size_t at = config.find(rs);
    if (at == std::string::npos) return false;
    config.insert(at + rs.size(), args);
    return true;
}

// A fresh directory under the system's temporary directory, named prefix-XXXXXX; empty if
// it could not be made.
inline std::filesystem::path make_temp_dir(const std::string& prefix) {
    std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) return {};
    return templ;
}

// Writes config to file and boots it under ukvm, `input` typed on the guest's console.
inline ProcessResult run_minix(const std::filesystem::path& file, const std::string& config,
                               const std::string& input,
                               std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    std::ofstream(file) << config;
    ProcessOptions options;
    options.timeout = timeout;
    options.input = input;
    options.has_input = true;
    return run_process({UKVM_BINARY, "run", file.string()}, options);
}

// Boots config's kernel and modules under QEMU (KVM, PC machine, 64 MiB, COM1 on stdio, no
// NIC, isa-debug-exit so poweroff ends QEMU with (status << 1) | 1), `input` typed on the
// serial console; `extra` arguments (drives, devices) go last.
inline ProcessResult run_minix_qemu(const std::filesystem::path& qemu, const std::string& config,
                                    const std::string& input, std::vector<std::string> extra = {},
                                    std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    std::string initrd;
    for (const auto& p : config_values(config, "path")) initrd += (initrd.empty() ? "" : ",") + p;
    std::vector<std::string> argv{qemu.string(), "-enable-kvm",
                                  "-M",          "pc",
                                  "-m",          "64",
                                  "-kernel",     config_values(config, "kernel").at(0),
                                  "-append",     config_values(config, "cmdline").at(0),
                                  "-initrd",     initrd,
                                  "-display",    "none",
                                  "-serial",     "stdio",
                                  "-monitor",    "none",
                                  "-nic",        "none",
                                  "-device",     "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                  "-no-reboot"};
    argv.insert(argv.end(), std::make_move_iterator(extra.begin()),
                std::make_move_iterator(extra.end()));
    ProcessOptions options;
    options.timeout = timeout;
    options.input = input;
    options.has_input = true;
    return run_process(argv, options);
}

}  // namespace ukvm::test
