// ukvm-bench: boot time, hypercall cost and memory overhead of ukvm, each as a ratio
// against a peer measured in the same run (QEMU on the same image, a minimal KVM
// program, a bare port-I/O exit). Prints a Markdown table; see docs/performance.md.
#include <elf.h>
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
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_common.hpp"
#include "vmm/config.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace ukvm::bench;

namespace {

struct Sample {
    int status = -1;
    double first_output_ms = -1;  // first byte on stdout, from fork
    double marker_ms = -1;        // the marker first seen on stdout, from fork
    double exit_ms = -1;          // child reaped, from fork
    long max_rss_kib = 0;
    std::string out, err;
};

// A child with stdin, stdout and stderr piped, timestamped from its fork.
class Child {
public:
    Child(const std::vector<std::string>& argv, std::chrono::seconds timeout)
        : start_(Clock::now()), deadline_(start_ + timeout) {
        int in[2], out[2], err[2];
        if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
            throw std::system_error(errno, std::generic_category(), "pipe2");
        pid_ = fork();
        if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (pid_ == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            dup2(err[1], 2);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        close(err[1]);
        in_ = in[1];
        fds_[0] = {out[0], POLLIN, 0};
        fds_[1] = {err[0], POLLIN, 0};
    }
    ~Child() {
        if (in_ >= 0) close(in_);
        for (auto& f : fds_)
            if (f.fd >= 0) close(f.fd);
        if (pid_ > 0 && !reaped_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void send(const std::string& bytes) {
        if (in_ >= 0 && write(in_, bytes.data(), bytes.size()) < 0) close_input();
    }
    void close_input() {
        if (in_ >= 0) close(in_);
        in_ = -1;
    }
    // Reads output until `marker` has appeared on stdout (true) or the output ends (false).
    bool wait_for(const std::string& marker) {
        marker_ = marker;
        while (sample_.marker_ms < 0 && pump()) {
        }
        return sample_.marker_ms >= 0;
    }
    // User + system CPU time of the child so far (all its threads), in seconds.
    double cpu_seconds() const {
        std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string f;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && fields >> f; ++i) {
            if (i == 14) utime = std::stoull(f);
            if (i == 15) stime = std::stoull(f);
        }
        return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    // Reads everything until the child closes its output (or the deadline kills it), reaps it.
    Sample finish() {
        close_input();
        while (pump()) {
        }
        int status = 0;
        rusage usage{};
        wait4(pid_, &status, 0, &usage);
        reaped_ = true;
        sample_.exit_ms = ms();
        sample_.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sample_.max_rss_kib = usage.ru_maxrss;
        return sample_;
    }

private:
    double ms() const {
        return std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    }
    // One round of reading; false once both streams have ended or the deadline passed.
    bool pump() {
        if (fds_[0].fd < 0 && fds_[1].fd < 0) return false;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
        if (left <= 0 || poll(fds_, 2, static_cast<int>(left)) == 0) {
            kill(pid_, SIGKILL);
            return false;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds_[i].fd < 0 || !(fds_[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            const ssize_t n = read(fds_[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds_[i].fd);
                fds_[i].fd = -1;
                continue;
            }
            if (i == 0 && sample_.first_output_ms < 0) sample_.first_output_ms = ms();
            (i == 0 ? sample_.out : sample_.err).append(buf, static_cast<size_t>(n));
            if (i == 0 && sample_.marker_ms < 0 && !marker_.empty() &&
                sample_.out.find(marker_) != std::string::npos)
                sample_.marker_ms = ms();
        }
        return true;
    }

    Clock::time_point start_, deadline_;
    pid_t pid_ = -1;
    bool reaped_ = false;
    int in_ = -1;
    pollfd fds_[2] = {{-1, 0, 0}, {-1, 0, 0}};
    std::string marker_;
    Sample sample_;
};

Sample run(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
    return Child(argv, timeout).finish();
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

// QEMU booting a guest as ukvm would from `c`: COM1 on stdio, isa-debug-exit for the status,
// the modules (if any) as "-initrd path args,...".
std::vector<std::string> qemu_argv(const std::string& qemu, const ukvm::GuestConfig& c) {
    std::vector<std::string> argv = {qemu,
                                     "-enable-kvm",
                                     "-M",
                                     "pc",
                                     "-m",
                                     std::to_string(c.memory_mib),
                                     "-kernel",
                                     c.kernel.string(),
                                     "-append",
                                     c.cmdline,
                                     "-display",
                                     "none",
                                     "-serial",
                                     "stdio",
                                     "-monitor",
                                     "none",
                                     "-no-reboot",
                                     "-device",
                                     "isa-debug-exit,iobase=0xf4,iosize=0x04"};
    if (const std::string initrd = qemu_initrd(c); !initrd.empty())
        argv.insert(argv.end(), {"-initrd", initrd});
    return argv;
}

// qemu_argv with `image` as a raw virtio-blk disk (modern PCI, like ukvm's) and no NIC.
std::vector<std::string> qemu_argv_with_disk(const std::string& qemu, const ukvm::GuestConfig& c,
                                             const fs::path& image) {
    auto argv = qemu_argv(qemu, c);
    argv.insert(argv.end(),
                {"-nic", "none", "-drive", "file=" + image.string() + ",if=none,id=d0,format=raw",
                 "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"});
    return argv;
}

struct PromptRun {
    double prompt_ms = -1;
    double idle_cpu_s = -1;
};

// Boots to the shell prompt, measures the CPU the idle system takes over `idle`, powers off.
PromptRun prompt_and_idle(const std::vector<std::string>& argv, std::chrono::seconds idle,
                          const std::string& what) {
    Child child(argv, std::chrono::seconds(120));
    if (!child.wait_for("minix# ")) {
        Sample s = child.finish();
        throw std::runtime_error(what + " never showed the shell prompt: " + s.out + s.err);
    }
    PromptRun r;
    const double before = child.cpu_seconds();
    std::this_thread::sleep_for(idle);
    r.idle_cpu_s = child.cpu_seconds() - before;
    child.send("poweroff\n");
    Sample s = child.finish();
    r.prompt_ms = s.marker_ms;
    return r;
}

// A program in the microkernel system booted by `argv` (with the disk the program needs):
// boots to the prompt, types `command` and poweroff; the console output, which must hold
// `expect` (the start of the program's figures line).
std::string program_output(const std::vector<std::string>& argv, const std::string& command,
                           const std::string& expect, const std::string& what) {
    Child child(argv, std::chrono::seconds(900));
    if (!child.wait_for("minix# ")) {
        Sample s = child.finish();
        throw std::runtime_error(what + " never showed the shell prompt: " + s.out + s.err);
    }
    child.send(command + "\npoweroff\n");
    Sample s = child.finish();
    if (s.out.find(expect) == std::string::npos)
        throw std::runtime_error(what + ": " + command + " gave no figures: " + s.out + s.err);
    return s.out;
}

// The console outputs of `rounds` runs of program_output on ukvm and on QEMU (skipped when
// `qemu_argv` is empty), alternating so that drift in the host hits both alike.
struct Outputs {
    std::vector<std::string> ukvm, qemu;
};

Outputs alternate(int rounds, const std::vector<std::string>& ukvm_argv,
                  const std::vector<std::string>& qemu_argv, const std::string& command,
                  const std::string& expect, const std::string& what) {
    Outputs o;
    for (int i = 0; i < rounds; ++i) {
        o.ukvm.push_back(program_output(ukvm_argv, command, expect, "ukvm " + what));
        if (!qemu_argv.empty())
            o.qemu.push_back(program_output(qemu_argv, command, expect, "QEMU " + what));
    }
    return o;
}

// The median of a "key=value" figure over the runs' outputs (-1: not measured).
double median_field(const std::vector<std::string>& outs, const std::string& key) {
    std::vector<double> v;
    for (const auto& o : outs)
        if (auto f = field(o, key)) v.push_back(*f);
    return v.empty() ? -1.0 : median(v);
}

// A row for a figure measured on ukvm (a) and QEMU (b) on the same image; -1: not measured.
Row same_image_row(const std::string& what, double a, double b,
                   const std::function<std::string(double)>& format) {
    const bool peer = b >= 0;
    return {what, a >= 0 ? format(a) : "n/a", peer ? "QEMU -M pc, same image" : "",
            peer ? format(b) : "", a >= 0 && peer ? ratio(a, b) : ""};
}

// `conbench bench KIB SIZE` (guest-servers/programs/conbench.cpp) in the microkernel system:
// the console output, which holds its "bench: console_kib=" line (TTY -> vcons ->
// virtio-console against the hypercall console, timed in the guest in the same run).
std::string conbench_output(const std::vector<std::string>& argv, int kib, int size) {
    Child child(argv, std::chrono::seconds(900));
    if (!child.wait_for("minix# ")) {
        Sample s = child.finish();
        throw std::runtime_error("ukvm never showed the shell prompt: " + s.out + s.err);
    }
    child.send(fmt::format("conbench bench {} {}\npoweroff\n", kib, size));
    Sample s = child.finish();
    if (s.out.find("bench: console_kib=") == std::string::npos)
        throw std::runtime_error("conbench gave no figures: " + s.out + s.err);
    return s.out;
}

// The host's own read bandwidth on the image file (64 KiB preads, page cache warm; the best
// of three passes), in MiB/s: the ceiling for a guest reading the same file.
double host_read_mibps(const fs::path& image) {
    const int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), image.string());
    std::vector<char> buf(64 * 1024);
    double best = 0;
    for (int pass = 0; pass < 4; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        off_t at = 0;
        for (ssize_t n; (n = ::pread(fd, buf.data(), buf.size(), at)) > 0;) at += n;
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (pass > 0 && s > 0) best = std::max(best, static_cast<double>(at) / (1 << 20) / s);
    }
    ::close(fd);
    return best;
}

// Lines of the kernel's sources, and the bytes its image loads (PT_LOAD memory sizes:
// code, data and bss, without the debug information the file also carries). The image is
// the ELF32 Multiboot wrapper.
struct KernelSize {
    long lines = 0;
    std::uint64_t file_bytes = 0;  // code and data in the image
    std::uint64_t bss_bytes = 0;   // zero-filled at load (static tables, stacks)
};

KernelSize kernel_size(const fs::path& source, const fs::path& image) {
    KernelSize size;
    for (const auto& e : fs::recursive_directory_iterator(source / "guest-kernel")) {
        const auto ext = e.path().extension();
        if (ext != ".cpp" && ext != ".hpp" && ext != ".h" && ext != ".S") continue;
        std::ifstream in(e.path());
        size.lines +=
            std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    }
    std::ifstream in(image, std::ios::binary);
    Elf32_Ehdr eh{};
    if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || eh.e_ident[EI_CLASS] != ELFCLASS32)
        throw std::runtime_error(image.string() + " is not an ELF32 image");
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf32_Phdr ph{};
        in.seekg(eh.e_phoff + i * sizeof ph);
        if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) break;
        if (ph.p_type != PT_LOAD) continue;
        size.file_bytes += ph.p_filesz;
        size.bss_bytes += ph.p_memsz - std::min(ph.p_memsz, ph.p_filesz);
    }
    return size;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ukvm-bench: ukvm against QEMU, a minimal KVM program and a bare exit"};
    std::string ukvm = UKVM_BINARY, floor = KVM_FLOOR_BINARY, guests = UKVM_GUEST_DIR;
    std::string qemu = "qemu-system-x86_64";
    int rounds = 10, qemu_rounds = 3, hypercalls = 20000, idle_seconds = 10, blk_mib = 8;
    int blk_rounds = 3, fs_rounds = 3, con_kib = 32;
    std::string source = UKVM_SOURCE_DIR;
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
    app.add_option("--idle-seconds", idle_seconds, "how long to watch the idle system's CPU")
        ->capture_default_str()
        ->check(CLI::Range(1, 600));
    app.add_option("--blk-rounds", blk_rounds, "blkbench runs on each VMM (medians)")
        ->capture_default_str()
        ->check(CLI::Range(1, 20));
    app.add_option("--blk-mib", blk_mib,
                   "MiB blkbench moves sequentially each way (0 skips the block figures)")
        ->capture_default_str()
        ->check(CLI::Range(0, 64));
    app.add_option("--fs-rounds", fs_rounds,
                   "fstest bench runs on each VMM (medians; 0 skips the file system figures)")
        ->capture_default_str()
        ->check(CLI::Range(0, 20));
    app.add_option("--con-kib", con_kib,
                   "KiB conbench writes per path and round (0 skips the console figures)")
        ->capture_default_str();
    app.add_option("--source", source, "source tree (configs/minix.toml, configs/ipc-test.toml)")
        ->capture_default_str();
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
                ukvm::GuestConfig hello_config;
                hello_config.kernel = hello;
                hello_config.cmdline = "exit=0";
                auto q = run(qemu_argv(qemu, hello_config), kTimeout);
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

        // The microkernel system: IPC inside one guest run, boot to the prompt and idle CPU
        // against QEMU on the same image, and the kernel's size.
        std::vector<Row> system_rows;
        try {
            const auto ipc = system_image(fs::path(source) / "configs/ipc-test.toml", dir);
            auto t = run({ukvm, "run", ipc.toml}, kTimeout);
            expect_ok(t, "ukvm ipc-test");
            auto sendrec = field(t.out, "sendrec_ns"), null_call = field(t.out, "null_syscall_ns");
            auto kcall = field(t.out, "kernel_call_ns");
            if (sendrec && null_call) {
                system_rows.push_back(
                    {"SENDREC round trip, ring 3 ↔ ring 3",
                     fmt::format("{:.0f} µs", *sendrec / 1000), "null system call, same guest run",
                     fmt::format("{:.0f} µs", *null_call / 1000), ratio(*sendrec, *null_call)});
                if (kcall)
                    system_rows.push_back(
                        {"kernel call (SENDREC to SYSTEM)", fmt::format("{:.0f} µs", *kcall / 1000),
                         "null system call, same guest run",
                         fmt::format("{:.0f} µs", *null_call / 1000), ratio(*kcall, *null_call)});
            }
            const auto sys = system_image(fs::path(source) / "configs/minix.toml", dir);
            const auto u = prompt_and_idle({ukvm, "run", sys.toml},
                                           std::chrono::seconds(idle_seconds), "ukvm minix");
            PromptRun q;
            if (!qemu.empty())
                q = prompt_and_idle(qemu_argv(qemu, sys.config), std::chrono::seconds(idle_seconds),
                                    "QEMU minix");
            system_rows.push_back({"start → shell prompt", fmt_ms(u.prompt_ms),
                                   qemu.empty() ? "" : "QEMU -M pc",
                                   qemu.empty() ? "" : fmt_ms(q.prompt_ms),
                                   qemu.empty() ? "" : ratio(u.prompt_ms, q.prompt_ms)});
            system_rows.push_back(
                {fmt::format("host CPU of the idle system at its prompt over {} s", idle_seconds),
                 fmt::format("{:.2f} s", u.idle_cpu_s), qemu.empty() ? "" : "QEMU -M pc",
                 qemu.empty() ? "" : fmt::format("{:.2f} s", q.idle_cpu_s),
                 qemu.empty() ? "" : ratio(u.idle_cpu_s, q.idle_cpu_s)});
            const KernelSize k = kernel_size(source, sys.config.kernel);
            system_rows.push_back({"guest kernel size",
                                   fmt::format("{} lines; {} bytes of code and data, {} of bss",
                                               k.lines, k.file_bytes, k.bss_bytes),
                                   "", "", ""});
        } catch (const std::exception& e) {
            fmt::print(stderr, "ukvm-bench: microkernel figures skipped: {}\n", e.what());
        }

        // Block I/O inside the guest (blkbench through vblk0) on a 64 MiB scratch image, ukvm
        // against QEMU on the same image, and the host's read bandwidth on that file.
        std::vector<Row> blk_rows;
        if (blk_mib > 0) try {
                const auto sys = system_image(fs::path(source) / "configs/minix.toml", dir);
                const fs::path image = dir / "blkbench.img";
                {
                    std::ofstream img(image, std::ios::binary);
                    std::vector<char> chunk(1 << 20, '\x5a');
                    for (int i = 0; i < 64; ++i)
                        img.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
                }
                std::ofstream(sys.toml, std::ios::app)
                    << "[[disk]]\npath = \"" << image.string() << "\"\n";
                const Outputs out = alternate(
                    blk_rounds, {ukvm, "run", sys.toml},
                    qemu.empty() ? std::vector<std::string>{}
                                 : qemu_argv_with_disk(qemu, sys.config, image),
                    fmt::format("blkbench {}", blk_mib), "bench: seq_read_kibps=", "blkbench");
                const double host = host_read_mibps(image);
                struct Metric {
                    const char* key;
                    const char* what;
                    double scale;
                    const char* unit;
                };
                for (const Metric& m :
                     {Metric{"seq_read_kibps", "sequential read, 64 KiB requests", 1.0 / 1024,
                             "MiB/s"},
                      Metric{"seq_write_kibps", "sequential write + FLUSH, 64 KiB requests",
                             1.0 / 1024, "MiB/s"},
                      Metric{"rand_read_iops", "random 4 KiB reads", 1, "IOPS"},
                      Metric{"rand_write_iops", "random 4 KiB writes + FLUSH", 1, "IOPS"}}) {
                    blk_rows.push_back(same_image_row(
                        m.what, median_field(out.ukvm, m.key), median_field(out.qemu, m.key),
                        [&m](double v) { return fmt::format("{:.3g} {}", v * m.scale, m.unit); }));
                }
                const double a = median_field(out.ukvm, "seq_read_kibps");
                blk_rows.push_back({"sequential read vs the host's own reads of the file",
                                    a >= 0 ? fmt::format("{:.3g} MiB/s", a / 1024) : "n/a",
                                    "host pread, 64 KiB, page cache",
                                    fmt::format("{:.0f} MiB/s", host),
                                    a >= 0 ? ratio(a / 1024, host) : ""});
            } catch (const std::exception& e) {
                fmt::print(stderr, "ukvm-bench: block figures skipped: {}\n", e.what());
            }

        // The file system inside the guest (fstest bench through VFS, MFS and vblk0) on a
        // fresh 32 MiB MINIX v3 image, ukvm against QEMU on the same image.
        std::vector<Row> fs_rows;
        if (fs_rounds > 0) try {
                const auto sys = system_image(fs::path(source) / "configs/minix.toml", dir);
                const fs::path image = dir / "fsbench.img";
                Child mk({ukvm, "image", "create", image.string(), "--size", "32M"},
                         std::chrono::seconds(60));
                expect_ok(mk.finish(), "ukvm image create");
                std::ofstream(sys.toml, std::ios::app)
                    << "[[disk]]\npath = \"" << image.string() << "\"\n";
                const Outputs out =
                    alternate(fs_rounds, {ukvm, "run", sys.toml},
                              qemu.empty() ? std::vector<std::string>{}
                                           : qemu_argv_with_disk(qemu, sys.config, image),
                              "fstest bench", "bench: fs_write_kibps=", "fstest bench");
                const std::pair<const char*, const char*> metrics[] = {
                    {"fs_write_kibps", "4 MiB file write (64 KiB calls) + fsync"},
                    {"fs_read_kibps", "4 MiB file read back (64 KiB calls)"},
                    {"fs_cached_read_kibps", "256 KiB file read from MFS's cache"}};
                for (const auto& [key, what] : metrics)
                    fs_rows.push_back(same_image_row(
                        what, median_field(out.ukvm, key), median_field(out.qemu, key),
                        [](double v) { return fmt::format("{:.3g} MiB/s", v / 1024); }));
            } catch (const std::exception& e) {
                fmt::print(stderr, "ukvm-bench: file system figures skipped: {}\n", e.what());
            }

        // Console output inside the guest: a program's writes through TTY and vcons to the
        // virtio-console against the same program's writes to the hypercall console (its
        // three alternating rounds each, medians), for 1 KiB and 64-byte writes.
        std::vector<Row> con_rows;
        if (con_kib > 0) try {
                const auto sys = system_image(fs::path(source) / "configs/minix.toml", dir);
                for (const int size : {1024, 64}) {
                    const std::string out = conbench_output({ukvm, "run", sys.toml}, con_kib, size);
                    const auto tty = field(out, "tty_kibps"), direct = field(out, "direct_kibps");
                    const auto tty_us = field(out, "tty_us"), direct_us = field(out, "direct_us");
                    if (!tty || !direct || !tty_us || !direct_us) continue;
                    con_rows.push_back(
                        {fmt::format("{} KiB console output in {}-byte writes, via virtio-console",
                                     con_kib, size),
                         fmt::format("{:.0f} KiB/s ({:.0f} µs a write)", *tty, *tty_us),
                         "hypercall console, same guest run",
                         fmt::format("{:.0f} KiB/s ({:.0f} µs a write)", *direct, *direct_us),
                         ratio(*tty, *direct)});
                }
            } catch (const std::exception& e) {
                fmt::print(stderr, "ukvm-bench: console figures skipped: {}\n", e.what());
            }

        fmt::print(
            "ukvm-bench: {} ukvm/floor rounds, {} QEMU rounds, {} hypercalls per loop; medians\n\n",
            rounds, qemu.empty() ? 0 : qemu_rounds, hypercalls);
        print_table(rows);
        if (!system_rows.empty()) {
            fmt::print("\nThe microkernel system (configs/minix.toml, configs/ipc-test.toml):\n\n");
            print_table(system_rows);
        }
        if (!blk_rows.empty()) {
            fmt::print(
                "\nBlock I/O in the guest (blkbench through vblk0, {} MiB each way; medians of {} "
                "runs each):\n\n",
                blk_mib, blk_rounds);
            print_table(blk_rows);
        }
        if (!fs_rows.empty()) {
            fmt::print(
                "\nFiles in the guest (fstest bench through VFS, MFS and vblk0; medians of {} runs "
                "each):\n\n",
                fs_rounds);
            print_table(fs_rows);
        }
        if (!con_rows.empty()) {
            fmt::print(
                "\nConsole output in the guest (conbench: TTY -> vcons -> virtio-console against "
                "the hypercall console; throughput, higher is better):\n\n");
            fmt::print(
                "| measure | ukvm | peer | peer's figure | ukvm / peer |\n|---|---|---|---|---|\n");
            for (const auto& r : con_rows)
                fmt::print("| {} | {} | {} | {} | {} |\n", r.measure, r.ukvm, r.peer_name, r.peer,
                           r.ratio);
        }
        fs::remove_all(dir);
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "ukvm-bench: {}\n", e.what());
        return 1;
    }
}
