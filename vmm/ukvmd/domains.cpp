#include "vmm/ukvmd/domains.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

#include "vmm/config.hpp"
#include "vmm/control/control_server.hpp"
#include "vmm/machine.hpp"
#include "vmm/ukvmd/guest_toml.hpp"

namespace ukvm::ukvmd {
namespace {

using libvirt::format_uuid;

// A restart policy gives up after this many restarts within the window (a crash or
// reboot loop).
constexpr std::size_t kMaxRestarts = 5;
constexpr std::chrono::seconds kRestartWindow{60};

constexpr std::uintmax_t kLogRotateBytes = 16 * 1024 * 1024;

// What a ukvm process needs besides guest RAM (its code, heap, thread stacks, page tables).
constexpr std::uint64_t kVmmOverheadMib = 64;
namespace err = libvirt::err;

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

Fd open_log(const std::filesystem::path& path) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid())
        throw std::system_error(errno, std::generic_category(), "open " + path.string());
    return fd;
}

// Keeps a guest's log bounded across runs: past the limit at a start, the old log becomes
// NAME.log.1 (replacing the previous one). A single run's output is not cut short.
void rotate_log(const std::filesystem::path& log) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(log, ec);
    if (ec || size < kLogRotateBytes) return;
    std::filesystem::rename(log, log.string() + ".1", ec);
    if (ec) spdlog::warn("cannot rotate {}: {}", log.string(), ec.message());
}

}  // namespace

Domains::Domains(StateDir& dir, std::string ukvm_binary, EventLoop& loop, const Cgroups& cgroups)
    : dir_(dir), ukvm_binary_(std::move(ukvm_binary)), loop_(loop), cgroups_(cgroups) {}

void Domains::load() {
    for (const std::string& name : dir_.defined_names()) {
        try {
            const auto xml = read_small_file(dir_.definition(name));
            if (!xml) continue;
            auto d = std::make_unique<Domain>();
            d->def = libvirt::parse_domain_xml(*xml);
            if (d->def.config.name != name) {
                spdlog::warn("{}: names domain '{}', skipped", dir_.definition(name).string(),
                             d->def.config.name);
                continue;
            }
            d->autostart = std::filesystem::exists(dir_.autostart_flag(name));
            // A guest an earlier ukvmd started: "PID STARTTIME LOGOFFSET".
            if (const auto pid_text = read_small_file(dir_.pid_file(name))) {
                std::istringstream in(*pid_text);
                long pid = 0;
                std::uint64_t start = 0, offset = 0;
                if (in >> pid >> start >> offset) {
                    d->process = GuestProcess::adopt(static_cast<pid_t>(pid), start);
                    d->console_offset = offset;
                }
                if (!d->process) remove_file(dir_.pid_file(name));
            }
            // Its control socket names the process too (pid file lost or never written).
            if (!d->process) d->process = adopt_through_control_socket(name, d->console_offset);
            {
                if (d->process) {
                    d->id = next_id_++;
                    d->state = state::kRunning;
                    d->reason = state::kRunningUnknown;
                    d->started = std::chrono::steady_clock::now();
                    spdlog::info("domain '{}': ukvm process {} still running, adopted", name,
                                 d->process->pid());
                }
            }
            // How the last run ended, as the previous daemon saw it.
            if (const auto exit_text = read_small_file(dir_.exit_file(name));
                exit_text && !d->process) {
                std::istringstream in(*exit_text);
                int reason = state::kShutoffUnknown;
                if (in >> reason && reason >= 0 && reason <= state::kShutoffFailed) {
                    d->reason = reason;
                    std::getline(in >> std::ws, d->last_exit);
                }
            }
            domains_.push_back(std::move(d));
            if (domains_.back()->process) watch(*domains_.back());
        } catch (const std::exception& e) {
            spdlog::error("domain '{}' not loaded: {}", name, e.what());
        }
    }
    for (auto& d : domains_) {
        if (!d->autostart || d->running()) continue;
        try {
            start(*d);
            spdlog::info("domain '{}' autostarted", d->name());
        } catch (const std::exception& e) {
            spdlog::error("domain '{}' autostart failed: {}", d->name(), e.what());
        }
    }
}

std::unique_ptr<GuestProcess> Domains::adopt_through_control_socket(const std::string& name,
                                                                    std::uint64_t& offset) {
    const auto socket = dir_.control_socket(name);
    if (!std::filesystem::exists(socket)) return nullptr;
    try {
        const control::ControlReply r = control::control_request(socket, "info");
        long pid = 0;
        bool same_name = false;
        for (const std::string& line : r.lines) {
            if (line.rfind("pid: ", 0) == 0) pid = std::stol(line.substr(5));
            if (line == "name: " + name) same_name = true;
        }
        if (!r.ok || pid <= 1 || !same_name) return nullptr;
        const auto start = process_start_time(static_cast<pid_t>(pid));
        if (!start) return nullptr;
        auto process = GuestProcess::adopt(static_cast<pid_t>(pid), *start);
        if (process) {
            // Console output from here on (the log's earlier runs are not this one's).
            std::error_code ec;
            const auto size = std::filesystem::file_size(dir_.log(name), ec);
            offset = ec ? 0 : size;
            write_file_atomically(dir_.pid_file(name), std::to_string(pid) + " " +
                                                           std::to_string(*start) + " " +
                                                           std::to_string(offset) + "\n");
            spdlog::info("domain '{}': found through its control socket", name);
        }
        return process;
    } catch (const std::exception& e) {
        spdlog::info("domain '{}': stale control socket ({})", name, e.what());
        return nullptr;
    }
}

Domain& Domains::define(std::string_view xml) {
    libvirt::DomainDefinition def;
    try {
        def = libvirt::parse_domain_xml(xml);
    } catch (const libvirt::DomainXmlError& e) {
        throw DomainError(e.code(), e.what());
    }
    Domain* same_uuid = by_uuid(def.uuid);
    Domain* same_name = by_name(def.config.name);
    if (same_uuid != nullptr && same_uuid != same_name) {
        throw DomainError(err::kOperationFailed, "domain '" + same_uuid->name() +
                                                     "' already has uuid " + format_uuid(def.uuid));
    }
    if (same_name != nullptr && same_uuid == nullptr) {
        throw DomainError(err::kDomainExists, "domain '" + same_name->name() +
                                                  "' already exists with uuid " +
                                                  format_uuid(same_name->def.uuid));
    }
    write_file_atomically(dir_.definition(def.config.name), libvirt::format_domain_xml(def));
    if (same_uuid != nullptr) {
        // A redefinition: a running guest keeps its configuration until it next starts.
        same_uuid->def = std::move(def);
        same_uuid->persistent = true;
        emit(*same_uuid, event::kDefined, event::kDefinedUpdated);
        return *same_uuid;
    }
    auto d = std::make_unique<Domain>();
    d->def = std::move(def);
    domains_.push_back(std::move(d));
    emit(*domains_.back(), event::kDefined, event::kDefinedAdded);
    return *domains_.back();
}

void Domains::undefine(Domain& d) {
    if (!d.persistent) {
        throw DomainError(err::kOperationInvalid, "cannot undefine transient domain");
    }
    remove_file(dir_.autostart_flag(d.name()));
    remove_file(dir_.definition(d.name()));
    remove_file(dir_.exit_file(d.name()));
    if (!d.running()) remove_file(dir_.run_config(d.name()));
    d.persistent = false;
    d.autostart = false;
    emit(d, event::kUndefined, 0);  // VIR_DOMAIN_EVENT_UNDEFINED_REMOVED
    // A running domain stays until it stops, as libvirt does.
    if (!d.running()) forget(d);
}

void Domains::forget(Domain& d) {
    std::erase_if(domains_, [&](const auto& p) { return p.get() == &d; });
}

void Domains::start(Domain& d) {
    if (d.running()) throw DomainError(err::kOperationInvalid, "domain is already running");
    GuestConfig config = d.def.config;
    config.console.output = ConsoleOutput::Stdout;  // the log file, via ukvm's stdout
    config.console.input = ConsoleInput::None;
    // The control socket: clean shutdown, console input, finding the guest again after a
    // daemon restart. A state directory too deep for a socket path does without.
    const auto control = dir_.control_socket(d.name());
    if (control.string().size() <= kMaxSocketPathBytes) {
        config.api_socket = control;
    } else {
        spdlog::warn("domain '{}': {} is too long for a unix socket; no control socket", d.name(),
                     control.string());
    }
    const auto toml_path = dir_.run_config(d.name());
    write_file_atomically(toml_path, to_guest_toml(config));
    // The same checks `ukvm run` makes, here, so the client sees a missing kernel at once.
    try {
        load_config(toml_path);
    } catch (const ConfigError& e) {
        throw DomainError(err::kOperationFailed, std::string("cannot start: ") + e.what());
    }
    // Guest RAM plus room for the VMM itself; CPU: the guest's vCPUs' worth.
    CgroupLimits limits;
    limits.memory_bytes = (config.memory_mib + kVmmOverheadMib) * 1024 * 1024;
    limits.cpus = config.vcpus;
    std::string no_cgroup;
    const std::optional<Fd> cgroup = cgroups_.prepare(d.name(), limits, no_cgroup);
    const std::string confinement =
        cgroup ? "cgroup " + cgroups_.guest_dir(d.name()).string() + ", memory.max " +
                     std::to_string(config.memory_mib + kVmmOverheadMib) + " MiB, " +
                     std::to_string(limits.cpus) + " CPU"
               : "no cgroup limits: " + no_cgroup;
    rotate_log(dir_.log(d.name()));
    Fd log = open_log(dir_.log(d.name()));
    const std::string header =
        "--- ukvmd: starting '" + d.name() + "' at " + now_utc() + " (" + confinement + ") ---\n";
    (void)!::write(log.get(), header.data(), header.size());
    const off_t offset = ::lseek(log.get(), 0, SEEK_END);
    try {
        d.process =
            GuestProcess::spawn(ukvm_binary_, toml_path, log.get(), cgroup ? cgroup->get() : -1);
    } catch (const std::system_error& e) {
        throw DomainError(err::kOperationFailed, std::string("cannot start: ") + e.what());
    }
    d.console_offset = offset < 0 ? 0 : static_cast<std::uint64_t>(offset);
    d.id = next_id_++;
    d.state = state::kRunning;
    d.reason = state::kRunningBooted;
    d.stop_requested = Domain::Stop::None;
    d.started = std::chrono::steady_clock::now();
    try {
        write_file_atomically(dir_.pid_file(d.name()), std::to_string(d.process->pid()) + " " +
                                                           std::to_string(d.process->start_time()) +
                                                           " " + std::to_string(d.console_offset) +
                                                           "\n");
    } catch (const std::exception& e) {
        // The guest runs; only a daemon restart would lose track of it.
        spdlog::warn("domain '{}': {}", d.name(), e.what());
    }
    watch(d);
    emit(d, event::kStarted, 0);  // VIR_DOMAIN_EVENT_STARTED_BOOTED
    spdlog::info("domain '{}' started: id {}, pid {}", d.name(), d.id, d.process->pid());
}

void Domains::watch(Domain& d) {
    const libvirt::Uuid uuid = d.def.uuid;
    d.watch = loop_.add(d.process->pidfd(), EPOLLIN, [this, uuid](std::uint32_t) {
        Domain* dom = by_uuid(uuid);
        if (dom == nullptr || !dom->process) return;
        if (auto exit = dom->process->reap()) handle_exit(*dom, *exit);
    });
}

void Domains::handle_exit(Domain& d, const ProcessExit& exit) {
    loop_.remove(d.watch);
    d.watch = 0;
    int reason = state::kShutoffUnknown;
    bool rebooted = false;  // the guest reset itself (ukvm's kExitGuestReset)
    std::string how;
    if (!exit.known) {
        how = "ended (adopted process: exit status unknown)";
        reason = state::kShutoffUnknown;
    } else if (exit.signaled) {
        how = "killed by signal " + std::to_string(exit.code);
        reason = state::kShutoffCrashed;
    } else {
        how = "exited with status " + std::to_string(exit.code);
        if (exit.code == kExitGuestFault) {
            reason = state::kShutoffCrashed;
        } else if (exit.code == kExitGuestReset) {
            how = "rebooted (exit status " + std::to_string(exit.code) + ")";
            reason = state::kShutoffShutdown;
            rebooted = true;
        } else if (exit.code == kExitVmmError || exit.code == kExitUsage) {
            reason = state::kShutoffFailed;
        } else {
            reason = state::kShutoffShutdown;
        }
    }
    // What the host asked for is final: no restart policy applies.
    const bool requested = d.stop_requested != Domain::Stop::None;
    if (d.stop_requested == Domain::Stop::Destroy) reason = state::kShutoffDestroyed;
    if (d.stop_requested == Domain::Stop::Shutdown) reason = state::kShutoffShutdown;
    d.process.reset();
    cgroups_.release(d.name());
    d.id = -1;
    d.state = state::kShutoff;
    d.reason = reason;
    d.last_exit = how;
    d.stop_requested = Domain::Stop::None;
    append_log(d, "--- ukvmd: '" + d.name() + "' " + how + " at " + now_utc() + " ---\n");
    try {
        remove_file(dir_.pid_file(d.name()));
        if (d.persistent) {
            write_file_atomically(dir_.exit_file(d.name()),
                                  std::to_string(reason) + " " + how + "\n");
        }
    } catch (const std::exception& e) {
        spdlog::warn("domain '{}': {}", d.name(), e.what());
    }
    spdlog::info("domain '{}' {}", d.name(), how);
    if (on_stopped) on_stopped(d);
    emit(d, event::kStopped,
         reason == state::kShutoffDestroyed ? event::kStoppedDestroyed
         : reason == state::kShutoffCrashed ? event::kStoppedCrashed
         : reason == state::kShutoffFailed  ? event::kStoppedFailed
                                            : event::kStoppedShutdown);
    using L = libvirt::DomainDefinition::Lifecycle;
    if (!d.persistent) {
        forget(d);
    } else if (requested) {
        // destroy, or a shutdown through ukvmd: stays off
    } else if (reason == state::kShutoffCrashed && d.def.on_crash == L::Restart) {
        restart_by_policy(d, "on_crash");
    } else if (rebooted && d.def.on_reboot == L::Restart) {
        restart_by_policy(d, "on_reboot");
    } else if (!rebooted && reason == state::kShutoffShutdown && exit.known &&
               d.def.on_poweroff == L::Restart) {
        restart_by_policy(d, "on_poweroff");
    }
}

void Domains::restart_by_policy(Domain& d, const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(d.restarts, [&](auto t) { return now - t > kRestartWindow; });
    if (d.restarts.size() >= kMaxRestarts) {
        const std::string line = "--- ukvmd: '" + d.name() + "' ended " +
                                 std::to_string(kMaxRestarts + 1) + " times within " +
                                 std::to_string(kRestartWindow.count()) + " s; not restarting (" +
                                 why + "=restart) ---\n";
        append_log(d, line);
        spdlog::warn("domain '{}' keeps ending; left shut off", d.name());
        return;
    }
    d.restarts.push_back(now);
    try {
        append_log(d, "--- ukvmd: restarting '" + d.name() + "' (" + why + "=restart) ---\n");
        start(d);
        spdlog::info("domain '{}' restarted ({}=restart)", d.name(), why);
    } catch (const std::exception& e) {
        spdlog::error("domain '{}' could not be restarted: {}", d.name(), e.what());
    }
}

void Domains::append_log(const Domain& d, const std::string& line) {
    try {
        Fd log = open_log(dir_.log(d.name()));
        (void)!::write(log.get(), line.data(), line.size());
    } catch (const std::exception& e) {
        spdlog::warn("domain '{}': {}", d.name(), e.what());
    }
}

void Domains::shutdown(Domain& d) {
    if (!d.running()) throw DomainError(err::kOperationInvalid, "domain is not running");
    d.stop_requested = Domain::Stop::Shutdown;
    // The guest's PM powers off cleanly (docs/control-api.md); a guest that ignores the
    // request keeps running until destroyed, as libvirt's would. Without a control socket
    // (no PM-capable path at all) SIGTERM stops the VM at once.
    // A guest started a moment ago may not have made its socket yet: wait for it a while.
    const auto control = dir_.control_socket(d.name());
    if (control.string().size() <= kMaxSocketPathBytes) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!std::filesystem::exists(control) && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    try {
        const control::ControlReply r = control::control_request(control, "shutdown");
        if (r.ok) return;
        spdlog::warn("domain '{}': shutdown through the control socket refused: {}", d.name(),
                     r.error);
    } catch (const std::exception& e) {
        spdlog::warn("domain '{}': no control socket ({}); SIGTERM", d.name(), e.what());
    }
    d.process->signal(SIGTERM);
}

void Domains::destroy(Domain& d) {
    if (!d.running()) throw DomainError(err::kOperationInvalid, "domain is not running");
    d.stop_requested = Domain::Stop::Destroy;
    d.process->signal(SIGKILL);
    // SIGKILL is prompt; wait for it so the domain is shut off when destroy returns.
    pollfd p{d.process->pidfd(), POLLIN, 0};
    for (int tries = 0; tries < 50; ++tries) {
        if (::poll(&p, 1, 100) > 0) break;
    }
    if (auto exit = d.process->reap()) {
        handle_exit(d, *exit);
    } else {
        throw DomainError(err::kOperationFailed, "the ukvm process did not die after SIGKILL");
    }
}

void Domains::set_autostart(Domain& d, bool autostart) {
    if (!d.persistent) {
        throw DomainError(err::kOperationInvalid, "cannot set autostart for transient domain");
    }
    if (autostart) {
        write_file_atomically(dir_.autostart_flag(d.name()), "");
    } else {
        remove_file(dir_.autostart_flag(d.name()));
    }
    d.autostart = autostart;
}

Domain* Domains::by_uuid(const libvirt::Uuid& uuid) {
    for (auto& d : domains_) {
        if (d->def.uuid == uuid) return d.get();
    }
    return nullptr;
}

Domain* Domains::by_name(std::string_view name) {
    for (auto& d : domains_) {
        if (d->name() == name) return d.get();
    }
    return nullptr;
}

Domain* Domains::by_id(int id) {
    if (id <= 0) return nullptr;
    for (auto& d : domains_) {
        if (d->id == id) return d.get();
    }
    return nullptr;
}

std::vector<Domain*> Domains::all() {
    std::vector<Domain*> v;
    for (auto& d : domains_) v.push_back(d.get());
    return v;
}

}  // namespace ukvm::ukvmd
