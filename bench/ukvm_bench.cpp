// ukvm-bench: boot time, hypercall cost and memory overhead of ukvm, each as a ratio
// against a peer measured in the same run (QEMU on the same image, a minimal KVM
// program, a bare port-I/O exit). Prints a Markdown table; see docs/performance.md.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Sample {
    int status = -1;
    double first_output_ms = -1;  // first byte on stdout, from fork
    double exit_ms = -1;          // child reaped, from fork
    long max_rss_kib = 0;
    std::string out, err;
};

// Runs argv with stdout and stderr piped; timestamps the first stdout byte and the exit.
Sample run(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
        throw std::system_error(errno, std::generic_category(), "pipe2");
    const auto start = Clock::now();
    pid_t pid = fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    auto ms_since_start = [&] {
        return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    };

    Sample s;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        const int left_ms = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count() -
            ms_since_start());
        if (left_ms <= 0 || poll(fds, 2, left_ms) == 0) {
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
                continue;
            }
            if (i == 0 && s.first_output_ms < 0) s.first_output_ms = ms_since_start();
            (i == 0 ? s.out : s.err).append(buf, static_cast<size_t>(n));
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int status = 0;
    rusage usage{};
    wait4(pid, &status, 0, &usage);
    s.exit_ms = ms_since_start();
    s.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    s.max_rss_kib = usage.ru_maxrss;
    return s;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// "key=value" fields from a guest's or ukvm's output line.
std::optional<double> field(const std::string& text, const std::string& key) {
    std::smatch m;
    if (std::regex_search(text, m, std::regex("(^|[\\s:])" + key + "=([0-9.]+)")))
        return std::stod(m[2].str());
    return std::nullopt;
}

void expect_ok(const Sample& s, const std::string& what) {
    if (s.status != 0)
        throw std::runtime_error(what + " exited " + std::to_string(s.status) + ": " + s.err);
}

fs::path write_config(const fs::path& dir, const std::string& name, const fs::path& kernel,
                      const std::string& cmdline) {
    fs::path file = dir / (name + ".toml");
    std::ofstream(file) << "name = \"" << name << "\"\nmemory = 64\nkernel = \"" << kernel.string()
                        << "\"\ncmdline = \"" << cmdline << "\"\n";
    return file;
}

std::vector<std::string> qemu_argv(const std::string& qemu, const fs::path& kernel,
                                   const std::string& cmdline) {
    return {qemu,
            "-enable-kvm",
            "-M",
            "pc",
            "-m",
            "64",
            "-kernel",
            kernel,
            "-append",
            cmdline,
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04"};
}

std::string ratio(double a, double b) {
    return b > 0 ? fmt::format("{:.3g}×", a / b) : "n/a";
}

struct Row {
    std::string measure, ukvm, peer_name, peer, ratio;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ukvm-bench: ukvm against QEMU, a minimal KVM program and a bare exit"};
    std::string ukvm = UKVM_BINARY, floor = KVM_FLOOR_BINARY, guests = UKVM_GUEST_DIR;
    std::string qemu = "qemu-system-x86_64";
    int rounds = 10, qemu_rounds = 3, hypercalls = 20000;
    app.add_option("--ukvm", ukvm, "ukvm binary")->capture_default_str();
    app.add_option("--floor", floor, "minimal KVM program")->capture_default_str();
    app.add_option("--guests", guests, "build tree holding tests/guests/*.elf")
        ->capture_default_str();
    app.add_option("--qemu", qemu, "QEMU binary; empty to skip")->capture_default_str();
    app.add_option("--rounds", rounds, "boots of ukvm and of the floor")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    app.add_option("--qemu-rounds", qemu_rounds, "boots of QEMU (slow here)")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    app.add_option("--hypercalls", hypercalls, "hypercalls per hcbench loop")
        ->capture_default_str()
        ->check(CLI::Range(100, 10000000));
    CLI11_PARSE(app, argc, argv);

    try {
        const fs::path hello = fs::path(guests) / "tests/guests/hello.elf";
        const fs::path hcbench = fs::path(guests) / "tests/guests/hcbench.elf";
        for (const auto& f : {fs::path(ukvm), fs::path(floor), hello, hcbench})
            if (!fs::exists(f))
                throw std::runtime_error(f.string() + " does not exist (build first)");
        char templ[] = "/tmp/ukvm-bench-XXXXXX";
        if (!mkdtemp(templ)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        const fs::path dir = templ;
        const auto hello_cfg = write_config(dir, "hello", hello, "exit=0");
        const constexpr auto kTimeout = std::chrono::seconds(120);

        // Boot: interleave ukvm and the floor so drift in the host affects both alike.
        std::vector<double> u_first, u_exit, u_hc, u_exit_in, u_over, f_exit, f_rss, q_first,
            q_exit;
        for (int i = 0; i < rounds; ++i) {
            auto u = run({ukvm, "run", "--timing", hello_cfg}, kTimeout);
            expect_ok(u, "ukvm hello");
            u_first.push_back(u.first_output_ms);
            u_exit.push_back(u.exit_ms);
            if (auto v = field(u.err, "first-hypercall-us")) u_hc.push_back(*v / 1000);
            if (auto v = field(u.err, "exit-us")) u_exit_in.push_back(*v / 1000);
            auto rss = field(u.err, "rss-kib"), guest = field(u.err, "guest-resident-kib");
            if (rss && guest) u_over.push_back((*rss - *guest) / 1024);
            auto f = run({floor}, kTimeout);
            expect_ok(f, "kvm_floor");
            f_exit.push_back(f.exit_ms);
            f_rss.push_back(f.max_rss_kib / 1024.0);
        }
        if (!qemu.empty()) {
            for (int i = 0; i < qemu_rounds; ++i) {
                auto q = run(qemu_argv(qemu, hello, "exit=0"), kTimeout);
                if (q.status != 1)  // isa-debug-exit: (0 << 1) | 1
                    throw std::runtime_error("QEMU hello exited " + std::to_string(q.status) +
                                             ": " + q.err);
                q_first.push_back(q.first_output_ms);
                q_exit.push_back(q.exit_ms);
            }
        }

        // Hypercall against a bare port-I/O exit, both timed inside the same guest run.
        std::vector<Row> rows;
        auto fmt_ms = [](double v) { return fmt::format("{:.1f} ms", v); };
        if (!qemu.empty()) {
            rows.push_back({"start → first guest output", fmt_ms(median(u_first)), "QEMU -M pc",
                            fmt_ms(median(q_first)), ratio(median(u_first), median(q_first))});
            rows.push_back({"start → guest exited", fmt_ms(median(u_exit)), "QEMU -M pc",
                            fmt_ms(median(q_exit)), ratio(median(u_exit), median(q_exit))});
        }
        rows.push_back({"start → guest exited", fmt_ms(median(u_exit)), "minimal KVM program",
                        fmt_ms(median(f_exit)), ratio(median(u_exit), median(f_exit))});
        if (!u_hc.empty())
            rows.push_back({"start → first hypercall (measured inside ukvm)", fmt_ms(median(u_hc)),
                            "minimal KVM program, whole run", fmt_ms(median(f_exit)),
                            ratio(median(u_hc), median(f_exit))});
        for (const char* mode : {"ring3=0", "ring3=1"}) {
            const auto cfg = write_config(dir, std::string("hcbench-ring") + mode[6], hcbench,
                                          fmt::format("n={} {}", hypercalls, mode));
            auto h = run({ukvm, "run", cfg}, kTimeout);
            expect_ok(h, "ukvm hcbench");
            auto hc = field(h.out, "hypercall_ns"), bare = field(h.out, "bare_exit_ns");
            const std::string where = std::string(mode) == "ring3=1" ? "ring 3" : "ring 0";
            if (hc && bare && *hc > 0 && *bare > 0)
                rows.push_back({"hypercall round trip, guest in " + where,
                                fmt::format("{:.1f} µs", *hc / 1000), "bare port-I/O exit",
                                fmt::format("{:.1f} µs", *bare / 1000), ratio(*hc, *bare)});
            else {
                fmt::print(stderr, "ukvm-bench: hcbench ({}) gave no figures:\n{}", where, h.out);
                rows.push_back(
                    {"hypercall round trip, guest in " + where, "not measured", "", "", ""});
            }
        }
        if (!u_over.empty())
            rows.push_back({"VMM resident memory beyond guest RAM",
                            fmt::format("{:.2f} MiB", median(u_over)), "minimal KVM program RSS",
                            fmt::format("{:.2f} MiB", median(f_rss)),
                            ratio(median(u_over), median(f_rss))});

        fmt::print(
            "ukvm-bench: {} ukvm/floor rounds, {} QEMU rounds, {} hypercalls per loop; medians\n\n",
            rounds, qemu.empty() ? 0 : qemu_rounds, hypercalls);
        fmt::print(
            "| measure | ukvm | peer | peer's figure | ukvm / peer |\n|---|---|---|---|---|\n");
        for (const auto& r : rows)
            fmt::print("| {} | {} | {} | {} | {} |\n", r.measure, r.ukvm, r.peer_name, r.peer,
                       r.ratio);
        fs::remove_all(dir);
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "ukvm-bench: {}\n", e.what());
        return 1;
    }
}
