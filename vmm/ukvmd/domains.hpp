// The domains ukvmd manages: definitions (persistent, in the state directory), the ukvm
// process of each running one, and why each stopped. Independent of the RPC front end,
// which maps DomainError codes onto libvirt errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/libvirt/domain_xml.hpp"
#include "vmm/ukvmd/cgroups.hpp"
#include "vmm/ukvmd/event_loop.hpp"
#include "vmm/ukvmd/guest_process.hpp"
#include "vmm/ukvmd/state_dir.hpp"

namespace ukvm::ukvmd {

// virDomainState and the reasons ukvmd reports (include/libvirt/libvirt-domain.h).
namespace state {
inline constexpr int kRunning = 1;
inline constexpr int kShutoff = 5;
inline constexpr int kRunningBooted = 1;
inline constexpr int kRunningUnknown = 0;
inline constexpr int kShutoffUnknown = 0;
inline constexpr int kShutoffShutdown = 1;
inline constexpr int kShutoffDestroyed = 2;
inline constexpr int kShutoffCrashed = 3;
inline constexpr int kShutoffFailed = 6;
}  // namespace state

// virDomainEventType values and details ukvmd emits.
namespace event {
inline constexpr int kDefined = 0;
inline constexpr int kUndefined = 1;
inline constexpr int kStarted = 2;
inline constexpr int kStopped = 5;
inline constexpr int kDefinedAdded = 0;
inline constexpr int kDefinedUpdated = 1;
inline constexpr int kStoppedShutdown = 0;
inline constexpr int kStoppedDestroyed = 1;
inline constexpr int kStoppedCrashed = 2;
inline constexpr int kStoppedFailed = 5;
}  // namespace event

// A request the daemon refuses; code is a virErrorNumber (libvirt::err).
class DomainError : public std::runtime_error {
public:
    DomainError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

struct Domain {
    libvirt::DomainDefinition def;
    bool persistent = true;  // false once undefined while running: gone when it stops
    bool autostart = false;
    int id = -1;  // positive while running
    int state = state::kShutoff;
    int reason = state::kShutoffUnknown;
    std::string last_exit;  // how the last run ended, for the log and `ukvm ps`
    std::unique_ptr<GuestProcess> process;
    EventLoop::Token watch = 0;
    std::chrono::steady_clock::time_point started;
    enum class Stop { None, Shutdown, Destroy } stop_requested = Stop::None;
    std::uint64_t console_offset = 0;  // where this run's output starts in the log
    // When <on_crash>restart</on_crash> restarted it recently (crash-loop limit).
    std::vector<std::chrono::steady_clock::time_point> restarts;

    bool running() const { return process != nullptr; }
    const std::string& name() const { return def.config.name; }
};

class Domains {
public:
    Domains(StateDir& dir, std::string ukvm_binary, EventLoop& loop, const Cgroups& cgroups);

    // Loads the definitions, adopts guests an earlier daemon started, then starts the
    // autostart domains that are not running. Problems with one domain are logged.
    void load();

    Domain& define(std::string_view xml);
    void undefine(Domain& d);
    void start(Domain& d);
    // Asks the guest to power off through its control socket (its PM shuts down cleanly);
    // SIGTERM to its ukvm process when there is no control socket (docs/management.md).
    void shutdown(Domain& d);
    // Kills the guest and waits for it: it is shut off when this returns.
    void destroy(Domain& d);
    void set_autostart(Domain& d, bool autostart);

    Domain* by_uuid(const libvirt::Uuid& uuid);
    Domain* by_name(std::string_view name);
    Domain* by_id(int id);
    std::vector<Domain*> all();

    // Called after a domain stopped (before a transient one is forgotten).
    std::function<void(Domain&)> on_stopped;
    // Lifecycle events for libvirt clients: virDomainEventType and its detail.
    std::function<void(const Domain&, int event, int detail)> on_event;

    const StateDir& state_dir() const { return dir_; }

private:
    void watch(Domain& d);
    void handle_exit(Domain& d, const ProcessExit& exit);
    void append_log(const Domain& d, const std::string& line);
    void forget(Domain& d);
    // <on_poweroff>/<on_reboot>/<on_crash>restart: start again, unless it keeps ending.
    void restart_by_policy(Domain& d, const std::string& why);
    // A guest whose control socket answers `info` with this name and a live pid.
    std::unique_ptr<GuestProcess> adopt_through_control_socket(const std::string& name,
                                                               std::uint64_t& offset);
    void emit(const Domain& d, int type, int detail) {
        if (on_event) on_event(d, type, detail);
    }

    StateDir& dir_;
    std::string ukvm_binary_;
    EventLoop& loop_;
    const Cgroups& cgroups_;
    std::vector<std::unique_ptr<Domain>> domains_;
    int next_id_ = 1;
};

}  // namespace ukvm::ukvmd
