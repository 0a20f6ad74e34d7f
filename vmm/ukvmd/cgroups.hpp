// Per-guest cgroup v2 limits. Each guest's ukvm process goes into its own cgroup with
// memory.max (guest RAM plus VMM overhead) and cpu.max (its vCPUs' worth of CPU), when
// the host has a cgroup v2 hierarchy with the memory and cpu controllers that ukvmd may
// delegate. When it does not (cgroup v1 hosts, hybrid hosts whose controllers sit on v1,
// containers without delegation), guests run unconfined and ukvmd says why: in its own
// log at start and in each guest's log line when the guest starts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/kvm.hpp"

namespace ukvm::ukvmd {

struct CgroupLimits {
    std::uint64_t memory_bytes = 0;  // 0: none
    unsigned cpus = 0;               // 0: none
};

class Cgroups {
public:
    // Probes the host: the cgroup2 mount in /proc/self/mountinfo, this process's cgroup in
    // /proc/self/cgroup, and the controllers it can enable below it.
    static Cgroups probe();
    // For tests: `base` is the directory guests' cgroups are made under; `self_leaf`
    // where ukvmd moves itself so `base` can delegate controllers (empty: no move).
    static Cgroups at(std::filesystem::path base, std::filesystem::path self_leaf);

    bool available() const { return reason_.empty(); }
    // Why limits are not applied (empty when they are).
    const std::string& reason() const { return reason_; }
    const std::filesystem::path& base() const { return base_; }

    // Creates (or reuses) the guest's cgroup with `limits`; returns an open fd of its
    // cgroup.procs for the child to write "0" to before exec, or nothing (with `why`).
    std::optional<Fd> prepare(std::string_view name, const CgroupLimits& limits,
                              std::string& why) const;
    // Removes the guest's cgroup once its process is gone (best effort).
    void release(std::string_view name) const;
    std::filesystem::path guest_dir(std::string_view name) const;

private:
    void enable_controllers();
    std::filesystem::path base_;
    std::filesystem::path self_leaf_;
    std::string reason_;
};

// "/sys/fs/cgroup" from /proc/self/mountinfo text, or nothing.
std::optional<std::filesystem::path> cgroup2_mount(std::string_view mountinfo);
// "/user.slice/x.scope" from /proc/self/cgroup text (the "0::" line), or nothing.
std::optional<std::string> cgroup2_path(std::string_view proc_self_cgroup);

}  // namespace ukvm::ukvmd
