// ukvmd: keeps guest definitions, runs each guest as its own `ukvm run` process and serves
// libvirt's RPC protocol so that stock virsh manages them. See docs/management.md.
#include <grp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "vmm/kvm.hpp"
#include "vmm/ukvmd/cgroups.hpp"
#include "vmm/ukvmd/domains.hpp"
#include "vmm/ukvmd/event_loop.hpp"
#include "vmm/ukvmd/rpc_server.hpp"
#include "vmm/ukvmd/state_dir.hpp"

namespace {

namespace fs = std::filesystem;

// `ukvm` next to this executable (a build tree or an install), else from PATH.
std::string default_ukvm_binary() {
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path sibling = self.parent_path() / "ukvm";
        if (::access(sibling.c_str(), X_OK) == 0) return sibling.string();
    }
    return "ukvm";
}

int run(int argc, char** argv) {
    CLI::App app{"ukvmd: runs ukvm guests and serves the libvirt RPC protocol for virsh", "ukvmd"};
    std::string socket = ukvm::ukvmd::kDefaultSocket;
    std::string state_dir = "/var/lib/ukvm";
    std::string ukvm_binary = default_ukvm_binary();
    std::string group;
    std::string log_level = "info";
    app.add_option("--socket", socket,
                   "Read-write socket; PATH-ro is the read-only one (default: " + socket + ")");
    app.add_option("--state-dir", state_dir,
                   "Definitions, logs, run files (default: " + state_dir + ")");
    app.add_option("--ukvm", ukvm_binary, "The ukvm executable to run guests with");
    app.add_option("--socket-group", group,
                   "Group allowed on the read-write socket (default: root only)");
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (default: info)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int status = app.exit(e);
        return status == 0 ? 0 : 2;
    }
    auto logger = spdlog::stderr_color_mt("ukvmd");
    logger->set_pattern("[%Y-%m-%d %T.%e] [%^%l%$] %v");
    logger->set_level(spdlog::level::from_str(log_level));
    spdlog::set_default_logger(logger);

    ukvm::ukvmd::RpcServerOptions options;
    options.socket = socket;
    if (!group.empty()) {
        const struct group* g = ::getgrnam(group.c_str());
        if (g == nullptr) {
            std::cerr << "ukvmd: --socket-group: no group named '" << group << "'\n";
            return 2;
        }
        options.group = g->gr_gid;
    }

    // A client vanishing mid-reply must not kill the daemon; stop signals go to the loop.
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &stop_set, nullptr);
    const ukvm::Fd signals(::signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals.valid()) throw ukvm::KvmError("signalfd", errno);

    ukvm::ukvmd::StateDir dir(state_dir);
    ukvm::ukvmd::EventLoop loop;
    const ukvm::ukvmd::Cgroups cgroups = ukvm::ukvmd::Cgroups::probe();
    if (cgroups.available()) {
        spdlog::info("per-guest cgroups under {} (memory.max, cpu.max)", cgroups.base().string());
    } else {
        spdlog::warn("guests run without cgroup limits: {}", cgroups.reason());
    }
    ukvm::ukvmd::Domains domains(dir, ukvm_binary, loop, cgroups);
    ukvm::ukvmd::RpcServer server(loop, domains, options);
    domains.on_stopped = [&server](const ukvm::ukvmd::Domain& d) { server.domain_stopped(d); };
    domains.on_event = [&server](const ukvm::ukvmd::Domain& d, int event, int detail) {
        server.domain_event(d, event, detail);
    };
    loop.add(signals.get(), EPOLLIN, [&](std::uint32_t) {
        signalfd_siginfo info{};
        if (::read(signals.get(), &info, sizeof info) == sizeof info) {
            spdlog::info("signal {}: stopping (guests keep running)", info.ssi_signo);
            loop.stop();
        }
    });
    loop.set_tick(std::chrono::milliseconds(100), [&server] { server.tick(); });
    spdlog::info("state directory {}, guests run with {}", dir.root().string(), ukvm_binary);
    domains.load();
    loop.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int status;
    try {
        status = run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "ukvmd: error: " << e.what() << "\n";
        status = 1;
    }
    spdlog::shutdown();
    return status;
}
