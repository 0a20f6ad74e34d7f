// The ukvm command line: run, validate, version, image; ps/start/stop/ctl for managed guests.
// Maps every failure to an exit status (see vmm/machine.hpp) and a one-line message on stderr.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "ukvm/hypercall.h"
#include "vmm/boot/multiboot.hpp"
#include "vmm/config.hpp"
#include "vmm/control/control_server.hpp"
#include "vmm/devices/virtio_blk.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/image/image_cli.hpp"
#include "vmm/image/minix_image.hpp"
#include "vmm/kvm.hpp"
#include "vmm/machine.hpp"
#include "vmm/net/backend.hpp"
#include "vmm/ukvmd/manage_cli.hpp"

namespace {

// "KVM API version N", or why /dev/kvm cannot be used; never fails, `version` is a probe.
std::string kvm_status() {
    const ukvm::Fd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm.valid()) return std::string("unavailable (") + std::strerror(errno) + ")";
    const int version = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
    if (version < 0) {
        return std::string("unavailable (KVM_GET_API_VERSION: ") + std::strerror(errno) + ")";
    }
    return "KVM API version " + std::to_string(version);
}

void setup_logging(spdlog::level::level_enum level) {
    auto logger = spdlog::stderr_color_mt("ukvm");
    logger->set_pattern("[%T.%e] [%^%l%$] %v");
    logger->set_level(level);
    spdlog::set_default_logger(logger);
}

std::string plural(std::size_t n, std::string_view word) {
    return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

int run_cli(int argc, char** argv) {
    CLI::App app{"ukvm: a thin KVM hypervisor for Minix-style microkernel guests", "ukvm"};
    // Lets the global --log-level follow the subcommand, too.
    app.fallthrough();
    // Fallthrough would otherwise also accept a second subcommand: `validate x.toml run`.
    app.require_subcommand(0, 1);

    // A plain string checked against the names, so a typo gets a readable message.
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "Log verbosity on stderr (default: info)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
        ->option_text("trace|debug|info|warn|error|off");

    std::string config_file;
    ukvm::RunOptions run_options;
    CLI::App* run = app.add_subcommand("run", "Boot the guest a config describes and run it");
    run->add_option("config", config_file, "The guest's .toml config")->required();
    run->add_flag("--timing", run_options.timing,
                  "Print first-hypercall and exit times (microseconds) on stderr at exit");
    std::string api_socket, console_spec;
    run->add_option("--api-socket", api_socket,
                    "Serve the control API on this unix socket (overrides api_socket)");
    run->add_option("--console", console_spec,
                    "Where the console goes (overrides [console]): stdio, null, file:PATH, "
                    "socket:PATH");

    CLI::App* validate =
        app.add_subcommand("validate", "Check a guest config and the files it names");
    validate->add_option("config", config_file, "The guest's .toml config")->required();

    CLI::App* version = app.add_subcommand("version", "Print versions and KVM availability");

    CLI::App* image = app.add_subcommand("image", "Make, list and unpack MINIX v3 disk images");
    image->require_subcommand(1);
    ukvm::ImageCreateOptions create_options;
    CLI::App* image_create = image->add_subcommand("create", "Make a new MINIX v3 image");
    image_create->add_option("image", create_options.image, "The image file to write")->required();
    image_create->add_option("--size", create_options.size, "Device size: bytes, or with K, M, G")
        ->required();
    image_create->add_option("--from", create_options.from, "Copy this directory's tree in");
    image_create->add_option("--inodes", create_options.inodes,
                             "Number of inodes (default: one per 3 KiB, or as many as needed)");
    image_create->add_flag("--force", create_options.force, "Replace an existing image file");
    std::string image_file, extract_dir, ls_path = "/";
    CLI::App* image_extract =
        image->add_subcommand("extract", "Copy an image's whole tree into a directory");
    image_extract->add_option("image", image_file, "The image to read")->required();
    image_extract->add_option("dir", extract_dir, "Where to put it (created if missing)")
        ->required();
    CLI::App* image_ls = image->add_subcommand("ls", "List a directory or file in an image");
    image_ls->add_option("image", image_file, "The image to read")->required();
    image_ls->add_option("path", ls_path, "Path inside the image (default: /)");

    // Guests managed by ukvmd, through its libvirt socket (docs/management.md).
    std::string ukvmd_socket = ukvm::ukvmd::kDefaultUkvmdSocket;
    const std::string socket_help = "ukvmd's socket (default: " + ukvmd_socket + ")";
    std::string guest_name;
    bool force_stop = false;
    CLI::App* ps = app.add_subcommand("ps", "List the guests ukvmd manages");
    ps->add_option("--socket", ukvmd_socket, socket_help);
    CLI::App* start = app.add_subcommand("start", "Start a guest defined in ukvmd");
    start->add_option("name", guest_name, "The guest's name")->required();
    start->add_option("--socket", ukvmd_socket, socket_help);
    CLI::App* stop = app.add_subcommand("stop", "Stop a guest ukvmd runs");
    stop->add_option("name", guest_name, "The guest's name")->required();
    stop->add_flag("--force", force_stop, "Kill it at once instead of asking it to shut down");
    stop->add_option("--socket", ukvmd_socket, socket_help);
    std::string ctl_socket, ctl_command;
    CLI::App* ctl = app.add_subcommand("ctl", "Send a command to a running guest's control socket");
    ctl->add_option("socket", ctl_socket, "The guest's control socket")->required();
    ctl->add_option("command", ctl_command, "The command")
        ->required()
        ->check(
            CLI::IsMember({"info", "pause", "resume", "shutdown", "destroy", "console", "attach"}))
        ->option_text("info|pause|resume|shutdown|destroy|console|attach");

    app.footer(
        "Exit status: the guest's own (0-255, from its halt hypercall), 1 host/VMM failure,\n"
        "2 usage, config or image error, 3 guest fault.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int status = app.exit(e);  // prints help (exit 0) or the usage error
        return status == 0 ? 0 : ukvm::kExitUsage;
    }

    setup_logging(spdlog::level::from_str(log_level));

    if (*version) {
        std::cout << "ukvm " << UKVM_VERSION << " (hypercall ABI v" << ukvm::hc::kAbiVersion
                  << ")\n/dev/kvm: " << kvm_status() << "\n";
        return 0;
    }
    if (*validate) {
        const ukvm::GuestConfig config = ukvm::load_config(config_file);
        // The images too, into scratch RAM no VM sees: an unbootable kernel is found now.
        ukvm::GuestMemory scratch(config.memory_mib << 20);
        ukvm::load_multiboot(scratch, config.kernel, config.cmdline, config.modules);
        std::cout << config_file << ": ok (" << config.name << ", " << config.memory_mib << " MiB, "
                  << plural(config.modules.size(), "module") << ")\n";
        return 0;
    }
    if (*image_create) return ukvm::image_create(create_options, std::cout, std::cerr);
    if (*image_extract) return ukvm::image_extract(image_file, extract_dir, std::cout, std::cerr);
    if (*image_ls) return ukvm::image_ls(image_file, ls_path, std::cout);
    if (*ps) return ukvm::ukvmd::cli_ps(ukvmd_socket, std::cout, std::cerr);
    if (*start) return ukvm::ukvmd::cli_start(ukvmd_socket, guest_name, std::cout, std::cerr);
    if (*stop) {
        return ukvm::ukvmd::cli_stop(ukvmd_socket, guest_name, force_stop, std::cout, std::cerr);
    }
    if (*ctl) return ukvm::control::cli_ctl(ctl_socket, ctl_command, std::cout, std::cerr);
    if (*run) {
        ukvm::GuestConfig config = ukvm::load_config(config_file);
        if (!api_socket.empty())
            config.api_socket = ukvm::socket_option(api_socket, "--api-socket");
        if (!console_spec.empty()) {  // where the console goes; the devices stay as configured
            const bool virtio = config.console.virtio;
            config.console = ukvm::parse_console_option(console_spec);
            config.console.virtio = virtio;
        }
        spdlog::debug("{}: guest '{}', {} MiB, kernel {}, {}", config_file, config.name,
                      config.memory_mib, config.kernel.string(),
                      plural(config.modules.size(), "module"));
        return ukvm::run_guest(config, run_options);
    }
    std::cerr << app.help();
    return ukvm::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
    int status;
    try {
        status = run_cli(argc, argv);
    } catch (const ukvm::ConfigError& e) {
        std::cerr << "ukvm: " << e.what() << "\n";
        status = ukvm::kExitUsage;
    } catch (const ukvm::ImageError& e) {
        std::cerr << "ukvm: " << e.what() << "\n";
        status = ukvm::kExitUsage;
    } catch (const ukvm::BootError& e) {
        std::cerr << "ukvm: " << e.what() << "\n";
        status = ukvm::kExitUsage;
    } catch (const ukvm::DiskError& e) {  // a disk image missing, unreadable or in use
        std::cerr << "ukvm: " << e.what() << "\n";
        status = ukvm::kExitUsage;
    } catch (const ukvm::NetError& e) {  // a backend that cannot be opened as configured
        std::cerr << "ukvm: " << e.what() << "\n";
        status = ukvm::kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "ukvm: error: " << e.what() << "\n";
        status = ukvm::kExitVmmError;
    } catch (...) {
        std::cerr << "ukvm: error: unknown exception\n";
        status = ukvm::kExitVmmError;
    }
    spdlog::shutdown();
    return status;
}
