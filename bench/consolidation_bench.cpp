// ukvm-consolidation-bench: many microkernel guests on one host, ukvm against QEMU on the
// same image in the same run. K guests are started at once and timed until every console
// shows the shell prompt (guests started per second, each guest's start → prompt); then,
// with all of them idle at the prompt, each VMM process's own memory: its resident (and
// proportional) set minus the resident part of its guest-RAM mapping, from
// /proc/PID/smaps. Rounds alternate which VMM goes first. Prints Markdown tables; see
// docs/performance.md ("Consolidation").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_common.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace ukvm::bench;

namespace {

constexpr std::string_view kPrompt = "minix# ";

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

std::system_error os_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// A guest that ended, or did not reach its prompt in time, or whose VMM's memory could not
// be read: that round fails and the run goes on.
struct GuestFailed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The end of a console's output, for error messages.
std::string tail(const std::string& text) {
    constexpr size_t kMax = 1500;
    return text.size() <= kMax ? text : "…" + text.substr(text.size() - kMax);
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// One guest's VMM process: its console on pipes (input held open, output read here), its
// standard error in a file for the error message if it fails.
struct Guest {
    pid_t pid = -1;
    Fd input, output;
    fs::path err_file;
    Clock::time_point start, prompt_at;
    bool at_prompt = false;
    std::string out;
};

// Guests started together. Every one is killed and reaped when the fleet goes (also when a
// round fails), and dies with this program (PR_SET_PDEATHSIG) should it be killed itself.
class Fleet {
public:
    Fleet() = default;
    Fleet(const Fleet&) = delete;
    Fleet& operator=(const Fleet&) = delete;
    ~Fleet() { stop(); }

    void start(const std::vector<std::string>& argv, const fs::path& err_file) {
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC)) throw os_error("pipe2");
        Fd in_r(in[0]), in_w(in[1]);
        if (pipe2(out, O_CLOEXEC)) throw os_error("pipe2");
        Fd out_r(out[0]), out_w(out[1]);
        Fd err(::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (err.get() < 0) throw os_error(err_file.string());
        const pid_t parent = getpid();
        Guest& g = guests_.emplace_back();
        g.err_file = err_file;
        g.start = Clock::now();
        g.pid = fork();
        if (g.pid < 0) throw os_error("fork");
        if (g.pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);
            dup2(in_r.get(), 0);
            dup2(out_w.get(), 1);
            dup2(err.get(), 2);
            execvp(args[0], args.data());
            _exit(127);
        }
        g.input = std::move(in_w);
        g.output = std::move(out_r);
    }

    // Reads the consoles until every guest has shown the prompt; throws GuestFailed naming the
    // first guest that ended before it, or how many had not shown it by the deadline.
    void wait_for_prompts(Clock::time_point deadline) {
        for (;;) {
            std::vector<pollfd> fds;
            std::vector<Guest*> who;
            for (auto& g : guests_)
                if (!g.at_prompt) {
                    fds.push_back({g.output.get(), POLLIN, 0});
                    who.push_back(&g);
                }
            if (fds.empty()) return;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                    .count();
            const int n = left > 0 ? poll(fds.data(), fds.size(), static_cast<int>(left)) : 0;
            if (n < 0 && errno != EINTR) throw os_error("poll");
            if (n == 0)
                throw GuestFailed(fmt::format(
                    "{} of {} guests did not show the prompt in time; one's console: {}",
                    fds.size(), guests_.size(), tail(who.front()->out)));
            for (size_t i = 0; i < fds.size(); ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                Guest& g = *who[i];
                char buf[4096];
                const ssize_t got = read(g.output.get(), buf, sizeof buf);
                if (got <= 0)
                    throw GuestFailed(
                        fmt::format("{} ended before its prompt; console: {}; stderr: {}", g.pid,
                                    tail(g.out), tail(read_text(g.err_file))));
                const size_t from =
                    g.out.size() < kPrompt.size() ? 0 : g.out.size() - kPrompt.size();
                g.out.append(buf, static_cast<size_t>(got));
                if (g.out.find(kPrompt, from) != std::string::npos) {
                    g.at_prompt = true;
                    g.prompt_at = Clock::now();
                }
            }
        }
    }

    void stop() {
        for (auto& g : guests_)
            if (g.pid > 0) kill(g.pid, SIGKILL);
        for (auto& g : guests_)
            if (g.pid > 0) waitpid(g.pid, nullptr, 0);
        guests_.clear();
    }

    const std::vector<Guest>& guests() const { return guests_; }

private:
    std::vector<Guest> guests_;
};

// A VMM process's memory, in KiB: its whole resident and proportional set, and the resident
// part of its guest RAM (which is private, so its PSS is the same).
struct Memory {
    double rss = 0, pss = 0, guest = 0;
    double own_rss() const { return rss - guest; }
    double own_pss() const { return pss - guest; }
};

// The guest-RAM mapping is the smallest writable mapping at least `guest_bytes` long: ukvm's
// anonymous mapping of exactly the guest's memory, QEMU's pc.ram (its other RAM blocks —
// BIOS, option ROMs — are small and count as the VMM's).
Memory memory_of(pid_t pid, std::uint64_t guest_bytes) {
    const fs::path smaps = fs::path("/proc") / std::to_string(pid) / "smaps";
    std::ifstream in(smaps);
    if (!in) throw GuestFailed("cannot read " + smaps.string() + " (the guest ended?)");
    Memory m;
    std::uint64_t best_size = 0;
    std::uint64_t size = 0;
    bool writable = false;
    double rss = 0;
    auto close_mapping = [&] {
        if (writable && size >= guest_bytes && (best_size == 0 || size < best_size)) {
            best_size = size;
            m.guest = rss;
        }
    };
    for (std::string line; std::getline(in, line);) {
        unsigned long long lo = 0, hi = 0;
        char perms[5] = {};
        if (std::sscanf(line.c_str(), "%llx-%llx %4s", &lo, &hi, perms) == 3) {
            close_mapping();
            size = hi - lo;
            writable = perms[1] == 'w';
            rss = 0;
            continue;
        }
        double kib = 0;
        if (std::sscanf(line.c_str(), "Rss: %lf kB", &kib) == 1) {
            rss = kib;
            m.rss += kib;
        } else if (std::sscanf(line.c_str(), "Pss: %lf kB", &kib) == 1) {
            m.pss += kib;
        }
    }
    close_mapping();
    if (best_size == 0)
        throw std::runtime_error(
            fmt::format("no guest-RAM mapping of {} bytes in {}", guest_bytes, smaps.string()));
    return m;
}

struct Round {
    double wall_ms = 0;             // first start → last prompt
    std::vector<double> prompt_ms;  // each guest's start → its prompt
    std::vector<Memory> memory;     // each idle guest's VMM, `settle` after the last prompt
    int restarted = 0;  // guests whose RS killed a silent server while booting (starved vCPU)
};

// Starts k guests with `argv` at once, waits for every prompt, lets them idle for `settle`,
// reads each VMM's memory, and kills them all.
Round boot_fleet(const std::vector<std::string>& argv, int k, const fs::path& dir,
                 const std::string& label, std::uint64_t guest_bytes, std::chrono::seconds settle,
                 std::chrono::seconds timeout) {
    Fleet fleet;
    const auto t0 = Clock::now();
    for (int i = 0; i < k; ++i) fleet.start(argv, dir / fmt::format("{}-{}.err", label, i));
    fleet.wait_for_prompts(t0 + timeout);
    Round r;
    for (const auto& g : fleet.guests()) {
        r.wall_ms = std::max(r.wall_ms, ms_between(t0, g.prompt_at));
        r.prompt_ms.push_back(ms_between(g.start, g.prompt_at));
        if (g.out.find("does not answer; killing it") != std::string::npos) ++r.restarted;
    }
    std::this_thread::sleep_for(settle);
    for (const auto& g : fleet.guests()) r.memory.push_back(memory_of(g.pid, guest_bytes));
    return r;
}

// Everything measured for one VMM at one k, over all rounds.
struct Series {
    std::vector<double> rate, wall_ms, prompt_ms, own_rss, own_pss, guest;
    int failed = 0;     // rounds in which a guest failed (GuestFailed)
    int restarted = 0;  // guests, over all rounds, whose RS restarted a server while booting
    void add(const Round& r, int k) {
        rate.push_back(k / (r.wall_ms / 1000));
        wall_ms.push_back(r.wall_ms);
        restarted += r.restarted;
        prompt_ms.insert(prompt_ms.end(), r.prompt_ms.begin(), r.prompt_ms.end());
        for (const auto& m : r.memory) {
            own_rss.push_back(m.own_rss() / 1024);
            own_pss.push_back(m.own_pss() / 1024);
            guest.push_back(m.guest / 1024);
        }
    }
};

std::string find_in_path(const std::string& name) {
    if (name.find('/') != std::string::npos) return fs::exists(name) ? name : "";
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string d; std::getline(dirs, d, ':');)
        if (!d.empty() && access((fs::path(d) / name).c_str(), X_OK) == 0)
            return (fs::path(d) / name).string();
    return "";
}

std::string load_average() {
    std::istringstream in(read_text("/proc/loadavg"));
    std::string one, five;
    in >> one >> five;
    return one + " (1 min), " + five + " (5 min)";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "ukvm-consolidation-bench: guests started per second and VMM memory per idle "
        "guest, ukvm against QEMU on the same image"};
    std::string ukvm = UKVM_BINARY, qemu = "qemu-system-x86_64", source = UKVM_SOURCE_DIR;
    std::string guests = UKVM_GUEST_DIR;
    std::vector<int> counts = {10, 20};
    int rounds = 3, memory_mib = 16, settle_seconds = 2, timeout_seconds = 600;
    app.add_option("--ukvm", ukvm, "ukvm binary")->capture_default_str();
    app.add_option("--qemu", qemu, "QEMU binary; empty to skip")->capture_default_str();
    app.add_option("--source", source, "source tree (configs/minix.toml)")->capture_default_str();
    app.add_option("--guests", guests, "build tree holding the guest kernel and servers")
        ->capture_default_str();
    app.add_option("--counts", counts, "guests started at once, one set of rounds per count")
        ->capture_default_str()
        ->delimiter(',')
        ->check(CLI::Range(1, 200));
    app.add_option("--rounds", rounds, "rounds per count, each VMM once per round")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    app.add_option("--memory", memory_mib, "guest memory, MiB")
        ->capture_default_str()
        ->check(CLI::Range(8, 4096));
    app.add_option("--settle-seconds", settle_seconds,
                   "idle time at the prompt before the memory is read")
        ->capture_default_str()
        ->check(CLI::Range(0, 600));
    app.add_option("--timeout", timeout_seconds, "seconds for a fleet to reach its prompts")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    CLI11_PARSE(app, argc, argv);

    fs::path dir;
    try {
        if (access("/dev/kvm", R_OK | W_OK) != 0) {
            fmt::print("ukvm-consolidation-bench: skipped: /dev/kvm is not usable\n");
            return 77;
        }
        if (!qemu.empty()) {
            const std::string found = find_in_path(qemu);
            if (found.empty()) throw std::runtime_error(qemu + " not found (--qemu \"\" skips it)");
            qemu = found;
        }
        char templ[] = "/tmp/ukvm-consolidation-XXXXXX";
        if (!mkdtemp(templ)) throw os_error("mkdtemp");
        dir = templ;
        const auto sys = system_image(fs::path(source) / "configs/minix.toml", dir,
                                      static_cast<std::uint64_t>(memory_mib), guests);
        for (const auto& f : {fs::path(ukvm), sys.config.kernel})
            if (!fs::exists(f))
                throw std::runtime_error(f.string() + " does not exist (build first)");
        const std::uint64_t guest_bytes = sys.config.memory_mib << 20;
        const std::vector<std::string> ukvm_argv = {ukvm, "run", sys.toml.string()};
        const std::vector<std::string> qemu_argv = {qemu,
                                                    "-accel",
                                                    "kvm",
                                                    "-M",
                                                    "pc",
                                                    "-nodefaults",
                                                    "-no-user-config",
                                                    "-display",
                                                    "none",
                                                    "-serial",
                                                    "stdio",
                                                    "-m",
                                                    std::to_string(memory_mib),
                                                    "-kernel",
                                                    sys.config.kernel.string(),
                                                    "-append",
                                                    sys.config.cmdline,
                                                    "-initrd",
                                                    qemu_initrd(sys.config)};
        const std::string load_before = load_average();
        const auto settle = std::chrono::seconds(settle_seconds);
        const auto timeout = std::chrono::seconds(timeout_seconds);

        std::vector<Row> boot_rows, memory_rows;
        int failures = 0;
        auto fmt_mib = [](double v) { return fmt::format("{:.2f} MiB", v); };
        for (const int k : counts) {
            Series u, q;
            for (int i = 0; i < rounds; ++i) {
                // Alternate which VMM goes first, so that drift in the host and the previous
                // fleet's teardown hit both alike.
                for (int turn = 0; turn < 2; ++turn) {
                    const bool ukvm_turn = (turn == 0) == (i % 2 == 0);
                    if (!ukvm_turn && qemu.empty()) continue;
                    const char* name = ukvm_turn ? "ukvm" : "QEMU";
                    Series& series = ukvm_turn ? u : q;
                    try {
                        const Round r = boot_fleet(ukvm_turn ? ukvm_argv : qemu_argv, k, dir, name,
                                                   guest_bytes, settle, timeout);
                        series.add(r, k);
                        fmt::print(stderr,
                                   "ukvm-consolidation-bench: {} guests, round {}, {}: {:.2f} s\n",
                                   k, i + 1, name, r.wall_ms / 1000);
                    } catch (const GuestFailed& e) {
                        ++series.failed;
                        fmt::print(stderr,
                                   "ukvm-consolidation-bench: {} guests, round {}, {} failed: {}\n",
                                   k, i + 1, name, e.what());
                    }
                }
            }
            const bool peer = !qemu.empty();
            // Medians of a figure over the rounds (n/a where every round failed).
            auto row = [&](std::string measure, const std::vector<double>& a,
                           const std::vector<double>& b, auto format) {
                auto show = [&](const std::vector<double>& v) {
                    return v.empty() ? std::string("n/a") : format(median(v));
                };
                return Row{std::move(measure), show(a), peer ? "QEMU -M pc, same image" : "",
                           peer ? show(b) : "",
                           peer && !a.empty() && !b.empty() ? ratio(median(a), median(b)) : ""};
            };
            auto fmt_s = [](double ms) { return fmt::format("{:.2f} s", ms / 1000); };
            auto fmt_rate = [](double v) { return fmt::format("{:.3g} guests/s", v); };
            auto fmt_ms = [](double v) { return fmt::format("{:.0f} ms", v); };
            boot_rows.push_back(row(fmt::format("{} guests started at once → all at the prompt", k),
                                    u.wall_ms, q.wall_ms, fmt_s));
            boot_rows.push_back(row(fmt::format("guests started per second, {} at once", k), u.rate,
                                    q.rate, fmt_rate));
            boot_rows.push_back(row(fmt::format("one guest's start → prompt, {} at once", k),
                                    u.prompt_ms, q.prompt_ms, fmt_ms));
            memory_rows.push_back(
                row(fmt::format("VMM resident memory beyond guest RAM, {} idle guests", k),
                    u.own_rss, q.own_rss, fmt_mib));
            memory_rows.push_back(row(
                fmt::format("VMM proportional memory (PSS) beyond guest RAM, {} idle guests", k),
                u.own_pss, q.own_pss, fmt_mib));
            memory_rows.push_back(row(fmt::format("guest RAM resident, {} idle guests", k), u.guest,
                                      q.guest, fmt_mib));
            if (u.restarted || q.restarted) {
                auto of = [&](int n) { return fmt::format("{} of {}", n, k * rounds); };
                boot_rows.push_back(
                    {fmt::format("guests, {} at once, whose RS killed and restarted a server that "
                                 "missed its heartbeat while booting",
                                 k),
                     of(u.restarted), peer ? "QEMU -M pc, same image" : "",
                     peer ? of(q.restarted) : "", ""});
            }
            if (u.failed || q.failed) {
                auto of = [&](int n) { return fmt::format("{} of {}", n, rounds); };
                boot_rows.push_back({fmt::format("rounds left out: a guest of {} never reached "
                                                 "its prompt (stderr says why)",
                                                 k),
                                     of(u.failed), peer ? "QEMU -M pc, same image" : "",
                                     peer ? of(q.failed) : "", ""});
                failures += u.failed + q.failed;
            }
        }

        fmt::print(
            "ukvm-consolidation-bench: configs/minix.toml without disks, {} MiB per guest, "
            "console on a pipe; {} rounds per count, the VMMs alternating; medians (per guest "
            "over every guest of every round). Load average {} before, {} after.\n\n",
            memory_mib, rounds, load_before, load_average());
        print_table(boot_rows);
        fmt::print(
            "\nEach idle guest's VMM process at its prompt, {} s after the last prompt "
            "(/proc/PID/smaps: the whole process less its guest-RAM mapping's resident "
            "pages):\n\n",
            settle_seconds);
        print_table(memory_rows);
        fs::remove_all(dir);
        return failures ? 1 : 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "ukvm-consolidation-bench: {}\n", e.what());
        if (!dir.empty()) fs::remove_all(dir);
        return 1;
    }
}
