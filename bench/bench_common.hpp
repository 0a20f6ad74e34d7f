// What the benchmarks share: medians, ratios, the Markdown table they print, and the
// microkernel system of a shipped config written out for ukvm and passed to QEMU.
#pragma once

#include <fmt/core.h>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "vmm/config.hpp"

namespace ukvm::bench {

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline std::string ratio(double a, double b) {
    return b > 0 ? fmt::format("{:.3g}×", a / b) : "n/a";
}

struct Row {
    std::string measure, ukvm, peer_name, peer, ratio;
};

inline void print_table(const std::vector<Row>& rows) {
    fmt::print("| measure | ukvm | peer | peer's figure | ukvm / peer |\n|---|---|---|---|---|\n");
    for (const auto& r : rows)
        fmt::print("| {} | {} | {} | {} | {} |\n", r.measure, r.ukvm, r.peer_name, r.peer, r.ratio);
}

// The microkernel system from a shipped config, for ukvm (as a TOML with console input
// from stdin, without the config's disks) and for QEMU (-kernel/-append/-initrd). Throws if
// the config's files are not built (its paths point into <source>/build).
struct SystemImage {
    ukvm::GuestConfig config;
    std::filesystem::path toml;  // the ukvm config written for the run
};

// `memory_mib` replaces the config's guest memory when given; with `guest_dir`, the images
// the config takes from "../build/" come from that build tree instead (and its disks,
// which the written config leaves out anyway, are dropped before they are checked).
inline SystemImage system_image(const std::filesystem::path& source_config,
                                const std::filesystem::path& dir,
                                std::optional<std::uint64_t> memory_mib = std::nullopt,
                                const std::filesystem::path& guest_dir = {}) {
    std::filesystem::path from = source_config;
    if (!guest_dir.empty()) {
        std::ifstream in(source_config);
        std::stringstream text;
        text << in.rdbuf();
        std::string s =
            std::regex_replace(text.str(), std::regex("\\[\\[disk\\]\\]\npath = \"[^\"]*\"\n"), "");
        const std::string build = "\"../build/", to = "\"" + guest_dir.string() + "/";
        for (size_t at = 0; (at = s.find(build, at)) != std::string::npos; at += to.size())
            s.replace(at, build.size(), to);
        from = dir / (source_config.stem().string() + ".source.toml");
        std::ofstream(from) << s;
    }
    SystemImage image{ukvm::load_config(from), dir / (source_config.stem().string() + ".toml")};
    if (memory_mib) image.config.memory_mib = *memory_mib;
    std::ofstream t(image.toml);
    t << "name = \"" << image.config.name << "\"\nmemory = " << image.config.memory_mib
      << "\nkernel = \"" << image.config.kernel.string() << "\"\ncmdline = \""
      << image.config.cmdline << "\"\n";
    for (const auto& m : image.config.modules)
        t << "[[module]]\npath = \"" << m.path.string() << "\"\nargs = \"" << m.args << "\"\n";
    t << "[console]\ninput = \"stdin\"\n";
    return image;
}

// QEMU's -initrd for a config's modules: "path args,path args,..." (empty without modules).
inline std::string qemu_initrd(const ukvm::GuestConfig& c) {
    std::string initrd;
    for (const auto& m : c.modules)
        initrd +=
            (initrd.empty() ? "" : ",") + m.path.string() + (m.args.empty() ? "" : " " + m.args);
    return initrd;
}

}  // namespace ukvm::bench
