#include "vmm/ukvmd/cgroups.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace ukvm::ukvmd {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Writes `value` to a cgroup control file; false (with errno text in why) on failure.
bool write_control(const fs::path& file, const std::string& value, std::string& why) {
    const Fd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), value.data(), value.size()) < 0) {
        why = "cannot write '" + value + "' to " + file.string() + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

bool has_word(const std::string& text, std::string_view word) {
    std::istringstream in(text);
    for (std::string w; in >> w;) {
        if (w == word) return true;
    }
    return false;
}

}  // namespace

std::optional<fs::path> cgroup2_mount(std::string_view mountinfo) {
    std::istringstream in{std::string(mountinfo)};
    for (std::string line; std::getline(in, line);) {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream tail(line.substr(dash + 3));
        std::string fstype;
        tail >> fstype;
        if (fstype != "cgroup2") continue;
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, dev, root, mountpoint;
        head >> id >> parent >> dev >> root >> mountpoint;
        if (!mountpoint.empty()) return fs::path(mountpoint);
    }
    return std::nullopt;
}

std::optional<std::string> cgroup2_path(std::string_view proc_self_cgroup) {
    std::istringstream in{std::string(proc_self_cgroup)};
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    }
    return std::nullopt;
}

Cgroups Cgroups::probe() {
    Cgroups c;
    const auto mount = cgroup2_mount(read_text("/proc/self/mountinfo"));
    if (!mount) {
        c.reason_ = "no cgroup v2 hierarchy is mounted";
        return c;
    }
    const auto own = cgroup2_path(read_text("/proc/self/cgroup"));
    if (!own) {
        c.reason_ = "this process has no cgroup v2 path in /proc/self/cgroup";
        return c;
    }
    // The root cgroup may hold processes and delegate at once; any other cgroup must be
    // emptied first (cgroup v2's no-internal-processes rule): ukvmd moves to a leaf.
    const bool is_root = fs::path(*own) == "/";
    const fs::path self =
        is_root ? *mount : (*mount / fs::path(*own).relative_path()).lexically_normal();
    return at(self, is_root ? fs::path() : self / "ukvmd");
}

Cgroups Cgroups::at(fs::path base, fs::path self_leaf) {
    Cgroups c;
    c.base_ = std::move(base);
    c.self_leaf_ = std::move(self_leaf);
    const std::string controllers = read_text(c.base_ / "cgroup.controllers");
    std::vector<std::string> missing;
    for (const char* want : {"memory", "cpu"}) {
        if (!has_word(controllers, want)) missing.push_back(want);
    }
    if (!missing.empty()) {
        c.reason_ = "the cgroup v2 hierarchy at " + c.base_.string() + " does not offer the " +
                    missing[0] + (missing.size() > 1 ? " and " + missing[1] : "") + " controller" +
                    (missing.size() > 1 ? "s" : "") +
                    " (bound to cgroup v1 on this host, or not delegated)";
        return c;
    }
    c.enable_controllers();
    return c;
}

void Cgroups::enable_controllers() {
    std::string why;
    if (!self_leaf_.empty()) {
        std::error_code ec;
        fs::create_directory(self_leaf_, ec);
        if (ec || !write_control(self_leaf_ / "cgroup.procs", "0", why)) {
            reason_ = ec ? "cannot create " + self_leaf_.string() + ": " + ec.message() : why;
            return;
        }
    }
    const std::string enabled = read_text(base_ / "cgroup.subtree_control");
    if (has_word(enabled, "memory") && has_word(enabled, "cpu")) return;
    if (!write_control(base_ / "cgroup.subtree_control", "+memory +cpu", why)) reason_ = why;
}

fs::path Cgroups::guest_dir(std::string_view name) const {
    return base_ / ("ukvm-" + std::string(name));
}

std::optional<Fd> Cgroups::prepare(std::string_view name, const CgroupLimits& limits,
                                   std::string& why) const {
    if (!available()) {
        why = reason_;
        return std::nullopt;
    }
    const fs::path dir = guest_dir(name);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        why = "cannot create " + dir.string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    if (limits.memory_bytes != 0 &&
        !write_control(dir / "memory.max", std::to_string(limits.memory_bytes), why)) {
        return std::nullopt;
    }
    if (limits.cpus != 0 &&
        !write_control(dir / "cpu.max", std::to_string(limits.cpus * 100000ull) + " 100000", why)) {
        return std::nullopt;
    }
    Fd procs(::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) {
        why = "cannot open " + (dir / "cgroup.procs").string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    return procs;
}

void Cgroups::release(std::string_view name) const {
    if (available()) ::rmdir(guest_dir(name).c_str());
}

}  // namespace ukvm::ukvmd
