// ukvmd driven by the real libvirt clients: Debian's virsh and python3-libvirt talk to a
// private ukvmd (temporary socket and state directory) through libvirt's remote driver.
// Skipped, with the reason, without virsh, /dev/kvm or the guest images.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"
#include "vmm/control/control_server.hpp"
#include "vmm/libvirt/rpc_packet.hpp"
#include "vmm/ukvmd/manage_cli.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::describe;
using ukvm::test::ProcessResult;
using ukvm::test::read_text;
using ukvm::test::run_process;
using ukvm::test::shipped_domain_xml;

const fs::path kGuestDir = UKVM_GUEST_DIR;
const fs::path kUkvmd = fs::path(UKVM_BINARY).parent_path() / "ukvmd";

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

// An idle guest (the guest kernel and the `idle` program) that stays up for `ms`
// milliseconds (ten minutes by default), then halts with status 0.
std::string idle_xml(const std::string& name, int memory_mib = 32, int ms = 600000) {
    return "<domain type='ukvm'><name>" + name + "</name><memory unit='MiB'>" +
           std::to_string(memory_mib) + "</memory><os><type>hvm</type><kernel>" +
           (kGuestDir / "guest-kernel/kernel.elf").string() +
           "</kernel><cmdline>quiet=0</cmdline></os><metadata>"
           "<ukvm:modules xmlns:ukvm='https://ukvm.dev/xmlns/1'><ukvm:module path='" +
           (kGuestDir / "guest-servers/idle").string() + "' args='" + std::to_string(ms) +
           "'/></ukvm:modules></metadata>"
           "<devices><console type='pty'><target port='0'/></console></devices></domain>";
}

// A private ukvmd: started in SetUp-like fashion, stopped (and every guest it started
// killed) when the fixture ends.
class Daemon {
public:
    Daemon(fs::path dir) : dir_(std::move(dir)) {}
    ~Daemon() { stop(); }

    fs::path socket() const { return dir_ / "sock"; }
    fs::path state() const { return dir_ / "state"; }
    fs::path log() const { return dir_ / "ukvmd.log"; }

    // Starts ukvmd and waits for its read-write socket to accept connections.
    ::testing::AssertionResult start(const std::vector<std::string>& extra = {}) {
        const std::string log_path = log().string();
        std::vector<std::string> args = {kUkvmd.string(), "--socket",       socket().string(),
                                         "--state-dir",   state().string(), "--ukvm",
                                         UKVM_BINARY,     "--log-level",    "debug"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 100; ++i) {
            if (can_connect()) return ::testing::AssertionSuccess();
            int status;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return ::testing::AssertionFailure() << "ukvmd exited:\n" << read_text(log());
            }
            std::this_thread::sleep_for(50ms);
        }
        return ::testing::AssertionFailure() << "ukvmd did not listen:\n" << read_text(log());
    }

    // SIGTERM, as an administrator stopping the service; guests keep running.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(50ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    // pid of the ukvm process running `name`, from ukvmd's run file; -1 if none.
    pid_t guest_pid(const std::string& name) const {
        std::istringstream in(read_text(state() / "run" / (name + ".pid")));
        long pid = -1;
        in >> pid;
        return static_cast<pid_t>(pid);
    }

    // Kills every guest process this daemon's state still lists (test cleanup).
    void kill_guests() const {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(state() / "run", ec)) {
            if (e.path().extension() != ".pid") continue;
            const pid_t pid = guest_pid(e.path().stem().string());
            if (pid > 1) ::kill(pid, SIGKILL);
        }
    }

    bool can_connect() const {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket().c_str(), sizeof addr.sun_path - 1);
        const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok;
    }

private:
    fs::path dir_;
    pid_t pid_ = -1;
};

class VirshTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/usr/bin/virsh", X_OK) != 0) GTEST_SKIP() << "virsh is not installed";
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        for (const char* f :
             {"guest-kernel/kernel.elf", "guest-servers/idle", "tests/guests/hello.elf"}) {
            if (!fs::exists(kGuestDir / f))
                GTEST_SKIP() << "guest image " << kGuestDir / f << " not built";
        }
        static std::atomic<int> counter{0};
        // Short: unix socket paths are limited to 107 bytes.
        dir_ = fs::path("/tmp") /
               ("ukvmd-t" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        daemon_ = std::make_unique<Daemon>(dir_);
        ASSERT_TRUE(daemon_->start());
    }
    void TearDown() override {
        if (daemon_) {
            daemon_->kill_guests();
            daemon_->stop();
            if (HasFailure()) std::cerr << "--- ukvmd log ---\n" << read_text(daemon_->log());
        }
        std::error_code ec;
        if (!dir_.empty()) fs::remove_all(dir_, ec);
    }

    std::string uri(bool read_only_socket = false) const {
        return "ukvm+unix:///system?socket=" + daemon_->socket().string() +
               (read_only_socket ? "-ro" : "");
    }

    ProcessResult virsh(std::vector<std::string> args, bool read_only_socket = false) {
        args.insert(args.begin(), {"virsh", "-c", uri(read_only_socket)});
        ukvm::test::ProcessOptions options;
        options.timeout = 30s;
        return run_process(args, options);
    }

    // Polls `virsh domstate --reason` until it prints `want` (e.g. "shut off (shutdown)").
    ::testing::AssertionResult wait_state(const std::string& name, const std::string& want) {
        std::string last;
        for (int i = 0; i < 100; ++i) {
            const ProcessResult r = virsh({"domstate", "--reason", name});
            last = r.out + r.err;
            if (r.status == 0 && r.out.find(want) != std::string::npos) {
                return ::testing::AssertionSuccess();
            }
            std::this_thread::sleep_for(100ms);
        }
        return ::testing::AssertionFailure()
               << name << " never reached '" << want << "', last: " << last;
    }

    fs::path write_xml(const std::string& name, const std::string& xml) {
        const fs::path p = dir_ / (name + ".xml");
        write_file(p, xml);
        return p;
    }

    fs::path dir_;
    std::unique_ptr<Daemon> daemon_;
};

TEST_F(VirshTest, VersionHostnameNodeinfo) {
    ProcessResult r = virsh({"version"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Using API: ukvm"));
    EXPECT_THAT(r.out, HasSubstr("Running hypervisor: ukvm 0.1.0"));
    r = virsh({"hostname"});
    ASSERT_EQ(r.status, 0) << describe(r);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    EXPECT_EQ(r.out, std::string(host) + "\n\n");  // virsh adds an empty line
    r = virsh({"nodeinfo"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("CPU model:           x86_64"));
    EXPECT_THAT(r.out, HasSubstr("CPU(s):              " +
                                 std::to_string(std::thread::hardware_concurrency()) + "\n"));
    r = virsh({"capabilities"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("<os_type>hvm</os_type>"));
    EXPECT_THAT(r.out, HasSubstr("<domain type='ukvm'/>"));
}

TEST_F(VirshTest, LifecycleOfALongRunningGuest) {
    const fs::path xml = write_xml("idle", idle_xml("idle"));
    ProcessResult r = virsh({"define", xml.string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Domain 'idle' defined from " + xml.string()));
    EXPECT_TRUE(fs::exists(daemon_->state() / "domains/idle.xml"));

    r = virsh({"list", "--all"});
    EXPECT_THAT(r.out, testing::ContainsRegex(" -  +idle +shut off")) << describe(r);
    r = virsh({"list"});
    EXPECT_THAT(r.out, Not(HasSubstr("idle"))) << describe(r);

    r = virsh({"start", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Domain 'idle' started"));
    r = virsh({"list"});
    EXPECT_THAT(r.out, testing::ContainsRegex(" [0-9]+ +idle +running")) << describe(r);
    EXPECT_TRUE(wait_state("idle", "running (booted)"));
    r = virsh({"start", "idle"});
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("Domain is already active")) << describe(r);

    r = virsh({"dominfo", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, testing::ContainsRegex("Name: +idle"));
    EXPECT_THAT(r.out, testing::ContainsRegex("OS Type: +hvm"));
    EXPECT_THAT(r.out, testing::ContainsRegex("State: +running"));
    EXPECT_THAT(r.out, testing::ContainsRegex("CPU\\(s\\): +1"));
    EXPECT_THAT(r.out, testing::ContainsRegex("Max memory: +32768 KiB"));
    EXPECT_THAT(r.out, testing::ContainsRegex("Persistent: +yes"));
    EXPECT_THAT(r.out, testing::ContainsRegex("Autostart: +disable"));

    // dumpxml round trip: the XML virsh prints defines the same domain again.
    r = virsh({"dumpxml", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, testing::ContainsRegex("<domain type=\"ukvm\" id=\"[0-9]+\">"));
    EXPECT_THAT(r.out, HasSubstr("<kernel>" + (kGuestDir / "guest-kernel/kernel.elf").string()));
    EXPECT_THAT(r.out, HasSubstr("args=\"600000\""));
    const std::string dumped = r.out;
    const fs::path again = write_xml("again", dumped);
    r = virsh({"define", again.string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = virsh({"dumpxml", "idle"});
    EXPECT_EQ(r.out, dumped);

    r = virsh({"autostart", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(fs::exists(daemon_->state() / "domains/idle.autostart"));
    EXPECT_THAT(virsh({"dominfo", "idle"}).out, testing::ContainsRegex("Autostart: +enable"));
    EXPECT_THAT(virsh({"list", "--all", "--autostart"}).out, HasSubstr("idle"));
    r = virsh({"autostart", "--disable", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_FALSE(fs::exists(daemon_->state() / "domains/idle.autostart"));

    // The idle guest has no PM: like a libvirt guest without ACPI it ignores the shutdown
    // request and keeps running until it is destroyed.
    r = virsh({"shutdown", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Domain 'idle' is being shutdown"));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(wait_state("idle", "running"));
    r = virsh({"destroy", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(wait_state("idle", "shut off (destroyed)"));
    EXPECT_THAT(read_text(daemon_->state() / "logs/idle.log"), HasSubstr("boot modules loaded"));

    r = virsh({"undefine", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Domain 'idle' has been undefined"));
    EXPECT_FALSE(fs::exists(daemon_->state() / "domains/idle.xml"));
    r = virsh({"list", "--all"});
    EXPECT_THAT(r.out, Not(HasSubstr("idle"))) << describe(r);
    r = virsh({"dominfo", "idle"});
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("failed to get domain 'idle'"));
}

// configs/minix-domain.xml boots the MINIX-style system; virsh shutdown reaches its PM
// through the control socket (a clean power-off, status 0), console input reaches the
// shell, and a restarted ukvmd finds the guest through its control socket alone.
TEST_F(VirshTest, MinixDomainShutsDownThroughPm) {
    std::string xml = shipped_domain_xml("minix-domain.xml");
    ProcessResult r = virsh({"define", write_xml("minix", xml).string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = virsh({"start", "minix"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const fs::path log = daemon_->state() / "logs/minix.log";
    for (int i = 0; i < 300 && read_text(log).find("minix# ") == std::string::npos; ++i) {
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_THAT(read_text(log), HasSubstr("minix# "));
    const fs::path sock = daemon_->state() / "run/minix.sock";
    ASSERT_TRUE(fs::exists(sock));
    // Typed through the control socket's input path, as virsh console does.
    {
        ukvm::Fd in = ukvm::control::open_console_input(sock);
        ASSERT_EQ(::send(in.get(), "echo typed-by-ukvmd\n", 20, MSG_NOSIGNAL), 20);
    }
    for (int i = 0; i < 100 && read_text(log).find("\ntyped-by-ukvmd") == std::string::npos; ++i) {
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_THAT(read_text(log), HasSubstr("\ntyped-by-ukvmd"));
    // A daemon restart without the pid file: the control socket names the process.
    daemon_->stop();
    fs::remove(daemon_->state() / "run/minix.pid");
    ASSERT_TRUE(daemon_->start());
    EXPECT_TRUE(wait_state("minix", "running"));
    r = virsh({"shutdown", "minix"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(wait_state("minix", "shut off"));
    EXPECT_THAT(read_text(log), HasSubstr("pm: the host asked for a shutdown; powering off"));
    EXPECT_THAT(read_text(log), HasSubstr("pm halts the machine with status 0"));
}

// How often needle occurs in haystack.
std::size_t count_of(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = haystack.find(needle, at)) != std::string::npos; ++at) ++n;
    return n;
}

// <on_reboot>, <on_poweroff> with the real guest: its shell's `reboot` (ukvm exits 4) and
// `poweroff` (status 0), typed through the control socket as virsh console does.
TEST_F(VirshTest, RebootAndPoweroffPoliciesOfTheMinixDomain) {
    std::string base = shipped_domain_xml("minix-domain.xml");
    const fs::path log = daemon_->state() / "logs/minix.log";
    const fs::path sock = daemon_->state() / "run/minix.sock";
    // Waits until the log holds `n` copies of `needle`.
    auto wait_log = [&](const std::string& needle, std::size_t n) {
        for (int i = 0; i < 600 && count_of(read_text(log), needle) < n; ++i) {
            std::this_thread::sleep_for(100ms);
        }
        return count_of(read_text(log), needle) >= n;
    };
    auto type = [&](const std::string& line) {
        ukvm::Fd in = ukvm::control::open_console_input(sock);
        return ::send(in.get(), line.data(), line.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(line.size());
    };

    // on_reboot=restart (libvirt's default, and the shipped example's), on_poweroff=destroy.
    ASSERT_EQ(virsh({"define", write_xml("minix", base).string()}).status, 0);
    ASSERT_EQ(virsh({"start", "minix"}).status, 0);
    ASSERT_TRUE(wait_log("minix# ", 1)) << read_text(log);
    const pid_t first = daemon_->guest_pid("minix");
    ASSERT_TRUE(type("reboot\n"));
    ASSERT_TRUE(wait_log("'minix' rebooted (exit status 4)", 1)) << read_text(log);
    ASSERT_TRUE(wait_log("minix# ", 2)) << read_text(log);  // the second boot's shell
    EXPECT_THAT(read_text(log), HasSubstr("restarting 'minix' (on_reboot=restart)"));
    EXPECT_NE(daemon_->guest_pid("minix"), first);
    EXPECT_TRUE(wait_state("minix", "running"));
    ASSERT_TRUE(type("poweroff\n"));
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));  // and stays off
    EXPECT_EQ(count_of(read_text(log), "--- ukvmd: starting 'minix'"), 2u);

    // on_poweroff=restart, on_reboot=destroy: the guest's own poweroff restarts it, a
    // shutdown asked through ukvmd does not, and a reboot leaves it off.
    std::string xml = virsh({"dumpxml", "minix"}).out;  // the same uuid: an update
    const std::string poweroff = "<on_poweroff>destroy", reboot = "<on_reboot>restart";
    xml.replace(xml.find(poweroff), poweroff.size(), "<on_poweroff>restart");
    xml.replace(xml.find(reboot), reboot.size(), "<on_reboot>destroy");
    ProcessResult r = virsh({"define", write_xml("minix2", xml).string()});
    ASSERT_EQ(r.status, 0) << describe(r) << xml;
    EXPECT_THAT(virsh({"dumpxml", "minix"}).out, HasSubstr("<on_poweroff>restart</on_poweroff>"));
    EXPECT_THAT(virsh({"dumpxml", "minix"}).out, HasSubstr("<on_reboot>destroy</on_reboot>"));
    ASSERT_EQ(virsh({"start", "minix"}).status, 0);
    ASSERT_TRUE(wait_log("minix# ", 3)) << read_text(log);
    ASSERT_TRUE(type("poweroff\n"));
    ASSERT_TRUE(wait_log("restarting 'minix' (on_poweroff=restart)", 1)) << read_text(log);
    ASSERT_TRUE(wait_log("minix# ", 4)) << read_text(log);
    EXPECT_TRUE(wait_state("minix", "running"));
    ASSERT_EQ(virsh({"shutdown", "minix"}).status, 0);
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));
    ASSERT_EQ(virsh({"start", "minix"}).status, 0);
    ASSERT_TRUE(wait_log("minix# ", 5)) << read_text(log);
    ASSERT_TRUE(type("reboot\n"));
    ASSERT_TRUE(wait_log("'minix' rebooted (exit status 4)", 2)) << read_text(log);
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(wait_state("minix", "shut off (shutdown)"));
    EXPECT_EQ(count_of(read_text(log), "--- ukvmd: starting 'minix'"), 5u);
}

// <interface type='user'> becomes a [[net]] user backend: the guest's virtio-net driver
// sees the NIC with the MAC from the XML, and dumpxml prints the interface back.
TEST_F(VirshTest, InterfaceGivesTheGuestAVirtioNic) {
    std::string xml = shipped_domain_xml("minix-domain.xml");
    xml.insert(xml.find("</devices>"),
               "<interface type='user'><mac address='52:54:00:6b:76:01'/>"
               "<model type='virtio'/></interface>");
    ProcessResult r = virsh({"define", write_xml("minix", xml).string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = virsh({"dumpxml", "minix"});
    EXPECT_THAT(r.out,
                HasSubstr("<interface type=\"user\">\n      <mac address=\"52:54:00:6b:76:01\" "
                          "/>\n      <model type=\"virtio\" />\n    </interface>"))
        << r.out;
    ASSERT_EQ(virsh({"start", "minix"}).status, 0);
    const fs::path log = daemon_->state() / "logs/minix.log";
    for (int i = 0; i < 300 && read_text(log).find("minix# ") == std::string::npos; ++i) {
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_THAT(read_text(log), HasSubstr("vnet0: MAC 52:54:00:6b:76:01, link up"));
    EXPECT_THAT(read_text(daemon_->state() / "run/minix.toml"), HasSubstr("backend = 'user'"));
    ASSERT_EQ(virsh({"destroy", "minix"}).status, 0);
}

// The example shipped in configs/ boots the hello guest, which prints and exits by itself.
TEST_F(VirshTest, ShippedHelloDomainRunsToCompletion) {
    std::string xml = shipped_domain_xml("hello-domain.xml");
    const fs::path file = write_xml("hello", xml);
    // A log past 16 MiB from earlier runs is rotated away when the guest starts.
    write_file(daemon_->state() / "logs/hello.log", std::string(17 << 20, 'x'));
    ProcessResult r = virsh({"define", file.string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = virsh({"start", "hello"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(wait_state("hello", "shut off (shutdown)"));
    const std::string log = read_text(daemon_->state() / "logs/hello.log");
    EXPECT_THAT(log, HasSubstr("Hello from ukvm guest"));
    EXPECT_THAT(log, HasSubstr("cmdline: \"greeting=hello exit=0\""));
    EXPECT_THAT(log, HasSubstr("'hello' exited with status 0"));
    EXPECT_LT(log.size(), 64u * 1024);
    EXPECT_EQ(fs::file_size(daemon_->state() / "logs/hello.log.1"), 17u << 20);
    // Confined or not, the log says which (this host may lack cgroup v2 controllers).
    EXPECT_THAT(log,
                testing::ContainsRegex("starting 'hello' at [^\n]* \\((cgroup /[^\n]*memory.max "
                                       "96 MiB, 1 CPU|no cgroup limits: [^\n]+)\\) ---\n"));
}

TEST_F(VirshTest, DestroyAndAKilledGuestAreReportedOthersKeepRunning) {
    for (const char* name : {"a", "b", "c"}) {
        ASSERT_EQ(virsh({"define", write_xml(name, idle_xml(name)).string()}).status, 0);
        ProcessResult r = virsh({"start", name});
        ASSERT_EQ(r.status, 0) << describe(r);
    }
    const pid_t b = daemon_->guest_pid("b");
    ASSERT_GT(b, 1);
    ASSERT_EQ(::kill(b, SIGKILL), 0);
    EXPECT_TRUE(wait_state("b", "shut off (crashed)"));
    ProcessResult r = virsh({"destroy", "c"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Domain 'c' destroyed"));
    r = virsh({"domstate", "--reason", "c"});
    EXPECT_THAT(r.out, HasSubstr("shut off (destroyed)")) << describe(r);
    EXPECT_TRUE(wait_state("a", "running"));
    EXPECT_THAT(read_text(daemon_->state() / "logs/b.log"), HasSubstr("killed by signal 9"));
    r = virsh({"list"});
    EXPECT_THAT(r.out, HasSubstr(" a "));
    EXPECT_THAT(r.out, Not(HasSubstr(" b ")));
}

// ukvm's own ps/start/stop speak the same protocol through the same socket.
TEST_F(VirshTest, UkvmPsStartStop) {
    namespace ud = ukvm::ukvmd;
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    ASSERT_EQ(virsh({"define", write_xml("other", idle_xml("other", 48)).string()}).status, 0);
    std::ostringstream out, err;
    ASSERT_EQ(ud::cli_start(daemon_->socket(), "idle", out, err), 0) << err.str();
    EXPECT_EQ(out.str(), "started idle\n");
    EXPECT_TRUE(wait_state("idle", "running"));
    out.str("");
    ASSERT_EQ(ud::cli_ps(daemon_->socket(), out, err), 0) << err.str();
    EXPECT_THAT(out.str(), testing::ContainsRegex("ID +NAME +STATE +MEMORY +CPU TIME\n +1 +idle +"
                                                  "running +32 MiB +[0-9.]+s\n +- +other +shut "
                                                  "off +48 MiB +0.00s\n"));
    out.str("");
    // A shutdown request the PM-less idle guest ignores; --force (destroy) ends it.
    ASSERT_EQ(ud::cli_stop(daemon_->socket(), "idle", false, out, err), 0) << err.str();
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(wait_state("idle", "running"));
    ASSERT_EQ(ud::cli_stop(daemon_->socket(), "idle", true, out, err), 0) << err.str();
    EXPECT_TRUE(wait_state("idle", "shut off (destroyed)"));
    ASSERT_EQ(ud::cli_start(daemon_->socket(), "other", out, err), 0) << err.str();
    ASSERT_EQ(ud::cli_stop(daemon_->socket(), "other", true, out, err), 0) << err.str();
    EXPECT_TRUE(wait_state("other", "shut off (destroyed)"));

    err.str("");
    EXPECT_EQ(ud::cli_start(daemon_->socket(), "nosuch", out, err), 1);
    EXPECT_EQ(err.str(), "ukvm: Domain not found: no domain with matching name 'nosuch'\n");
    err.str("");
    EXPECT_EQ(ud::cli_stop(daemon_->socket(), "idle", false, out, err), 1);
    EXPECT_EQ(err.str(), "ukvm: Requested operation is not valid: domain is not running\n");
    err.str("");
    EXPECT_EQ(ud::cli_ps(dir_ / "nosock", out, err), 1);
    EXPECT_THAT(err.str(), HasSubstr("cannot connect to ukvmd at"));
}

TEST_F(VirshTest, OnCrashRestartBringsAKilledGuestBack) {
    std::string xml = idle_xml("phoenix");
    xml.insert(xml.find("<devices>"), "<on_crash>restart</on_crash>");
    ASSERT_EQ(virsh({"define", write_xml("phoenix", xml).string()}).status, 0);
    ASSERT_EQ(virsh({"start", "phoenix"}).status, 0);
    const pid_t first = daemon_->guest_pid("phoenix");
    ASSERT_GT(first, 1);
    ASSERT_EQ(::kill(first, SIGKILL), 0);
    pid_t second = first;
    for (int i = 0; i < 100 && (second == first || second <= 1); ++i) {
        std::this_thread::sleep_for(50ms);
        second = daemon_->guest_pid("phoenix");
    }
    EXPECT_NE(second, first);
    EXPECT_TRUE(wait_state("phoenix", "running"));
    const std::string log = read_text(daemon_->state() / "logs/phoenix.log");
    EXPECT_THAT(log, HasSubstr("'phoenix' killed by signal 9"));
    EXPECT_THAT(virsh({"dumpxml", "phoenix"}).out, HasSubstr("<on_crash>restart</on_crash>"));
    // A destroy is not a crash: it stays off.
    ASSERT_EQ(virsh({"destroy", "phoenix"}).status, 0);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(wait_state("phoenix", "shut off (destroyed)"));
}

// The same through the ukvm command line.
TEST_F(VirshTest, UkvmCommandLinePsStartStop) {
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    const std::string sock = daemon_->socket().string();
    ProcessResult r = run_process({UKVM_BINARY, "start", "idle", "--socket", sock});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "started idle\n");
    r = run_process({UKVM_BINARY, "ps", "--socket", sock});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, testing::ContainsRegex(" +1 +idle +running +32 MiB"));
    r = run_process({UKVM_BINARY, "stop", "--force", "idle", "--socket", sock});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "destroyed idle\n");
    EXPECT_TRUE(wait_state("idle", "shut off (destroyed)"));
    r = run_process({UKVM_BINARY, "stop", "idle", "--socket", sock});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "ukvm: Requested operation is not valid: domain is not running\n");
    r = run_process({UKVM_BINARY, "start", "--socket", sock});
    EXPECT_EQ(r.status, 2) << describe(r);  // the name is required
}

TEST(UkvmCtl, SendsOneCommandToAControlSocket) {
    int paused = 0;
    ukvm::control::GuestControlHooks hooks;
    hooks.pause = [&] { ++paused; };
    hooks.info = [] {
        ukvm::control::GuestInfo i;
        i.name = "g";
        i.state = "running";
        i.memory_mib = 64;
        return i;
    };
    ukvm::control::HookedGuestControl guest(std::move(hooks));
    const fs::path sock = fs::temp_directory_path() / ("ukvm-ctl-" + std::to_string(::getpid()));
    ukvm::control::ControlServer server(sock, guest);
    ProcessResult r = run_process({UKVM_BINARY, "ctl", sock.string(), "info"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, testing::StartsWith("name: g\nstate: running\n"));
    EXPECT_THAT(r.out, HasSubstr("memory-mib: 64\n"));
    r = run_process({UKVM_BINARY, "ctl", sock.string(), "pause"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(paused, 1);
    r = run_process({UKVM_BINARY, "ctl", sock.string(), "resume"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "ukvm: resume is not supported by this ukvm yet\n");
    r = run_process({UKVM_BINARY, "ctl", sock.string(), "reboot"});
    EXPECT_EQ(r.status, 2) << describe(r);
    r = run_process({UKVM_BINARY, "ctl", (sock.string() + ".none"), "info"});
    EXPECT_EQ(r.status, 1);
    EXPECT_THAT(r.err, HasSubstr("ukvm: connect "));
}

// Consolidation: 20 guests at once, one killed, a daemon restart; the rest run on.
TEST_F(VirshTest, TwentyGuestsOneKilledDaemonRestarted) {
    constexpr int kGuests = 20;
    auto name = [](int i) { return "g" + std::to_string(i); };
    for (int i = 0; i < kGuests; ++i) {
        ASSERT_EQ(virsh({"define", write_xml(name(i), idle_xml(name(i), 16)).string()}).status, 0);
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kGuests; ++i) {
        const ProcessResult r = virsh({"start", name(i)});
        ASSERT_EQ(r.status, 0) << describe(r);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "started " << kGuests << " guests in " << seconds << " s (virsh included)\n";
    auto running = [&] {
        const ProcessResult r = virsh({"list", "--name"});
        int n = 0;
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) n += !line.empty();
        return n;
    };
    EXPECT_EQ(running(), kGuests);
    for (int i = 0; i < kGuests; ++i) EXPECT_TRUE(wait_state(name(i), "running"));
    // Host memory per idle guest: the ukvm processes' resident set (16 MiB guests).
    std::uint64_t rss_kib = 0;
    for (int i = 0; i < kGuests; ++i) {
        std::istringstream status(
            read_text("/proc/" + std::to_string(daemon_->guest_pid(name(i))) + "/status"));
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("VmRSS:", 0) == 0) rss_kib += std::stoull(line.substr(6));
        }
    }
    std::cout << "resident memory per idle 16 MiB guest: " << rss_kib / kGuests << " KiB\n";
    EXPECT_GT(rss_kib, 0u);
    EXPECT_LT(rss_kib / kGuests, (16 + 64) * 1024u) << "more than guest RAM + VMM overhead";

    ASSERT_EQ(::kill(daemon_->guest_pid("g7"), SIGKILL), 0);
    EXPECT_TRUE(wait_state("g7", "shut off (crashed)"));
    EXPECT_EQ(running(), kGuests - 1);

    daemon_->stop();
    ASSERT_TRUE(daemon_->start());
    EXPECT_EQ(running(), kGuests - 1);
    EXPECT_TRUE(wait_state("g7", "shut off (crashed)"));  // remembered across the restart
    EXPECT_TRUE(wait_state("g19", "running"));
}

TEST_F(VirshTest, RestartedDaemonFindsRunningGuests) {
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    ASSERT_EQ(virsh({"start", "idle"}).status, 0);
    const pid_t pid = daemon_->guest_pid("idle");
    ASSERT_GT(pid, 1);
    daemon_->stop();
    EXPECT_EQ(::kill(pid, 0), 0) << "the guest died with the daemon";
    ASSERT_TRUE(daemon_->start());
    EXPECT_TRUE(wait_state("idle", "running"));
    ProcessResult r = virsh({"list"});
    EXPECT_THAT(r.out, testing::ContainsRegex(" [0-9]+ +idle +running")) << describe(r);
    r = virsh({"destroy", "idle"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(wait_state("idle", "shut off (destroyed)"));
}

TEST_F(VirshTest, ReadOnlySocketRefusesMutations) {
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    // Without -r the client library does not refuse by itself: the daemon must.
    ProcessResult r = virsh({"define", write_xml("other", idle_xml("other")).string()}, true);
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("read only access prevents virDomainDefineXML")) << describe(r);
    r = virsh({"start", "idle"}, true);
    EXPECT_THAT(r.err, HasSubstr("read only access prevents virDomainCreate")) << describe(r);
    r = virsh({"undefine", "idle"}, true);
    EXPECT_NE(r.status, 0) << describe(r);
    r = virsh({"list", "--all"}, true);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("idle"));
    EXPECT_THAT(r.out, Not(HasSubstr("other")));
    r = virsh({"dominfo", "idle"}, true);
    EXPECT_EQ(r.status, 0) << describe(r);

    namespace stdfs = std::filesystem;
    EXPECT_EQ(stdfs::status(daemon_->socket()).permissions() & stdfs::perms::all,
              stdfs::perms::owner_read | stdfs::perms::owner_write);
}

TEST_F(VirshTest, SocketGroupOpensTheReadWriteSocketToAGroup) {
    const group* g = ::getgrnam("nogroup");
    if (g == nullptr) GTEST_SKIP() << "no group 'nogroup'";
    daemon_->stop();
    ASSERT_TRUE(daemon_->start({"--socket-group", "nogroup"}));
    struct stat st {};
    ASSERT_EQ(::stat(daemon_->socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(st.st_gid, g->gr_gid);
    ASSERT_EQ(::stat((daemon_->socket().string() + "-ro").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666u);
    EXPECT_EQ(virsh({"list"}).status, 0);
    // An unknown group is a usage error, before anything listens.
    daemon_->stop();
    EXPECT_FALSE(daemon_->start({"--socket-group", "no-such-group-ukvm"}));
    EXPECT_THAT(read_text(daemon_->log()), HasSubstr("--socket-group: no group named"));
}

TEST_F(VirshTest, GuestWithADisk) {
    const fs::path image = dir_ / "data.img";
    write_file(image, std::string(1 << 20, '\0'));
    std::string xml = idle_xml("disk1");
    xml.insert(xml.find("<console"), "<disk type='file' device='disk'><source file='" +
                                         image.string() +
                                         "'/><target dev='vda' bus='virtio'/>"
                                         "<serial>DATA1</serial></disk>");
    ProcessResult r = virsh({"define", write_xml("disk1", xml).string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = virsh({"dumpxml", "disk1"});
    EXPECT_THAT(r.out, HasSubstr("<source file=\"" + image.string() + "\" />"));
    EXPECT_THAT(r.out, HasSubstr("<serial>DATA1</serial>"));
    r = virsh({"start", "disk1"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(wait_state("disk1", "running"));
    EXPECT_THAT(read_text(daemon_->state() / "run/disk1.toml"), HasSubstr("[[disk]]"));
    ASSERT_EQ(virsh({"destroy", "disk1"}).status, 0);

    // A missing image is reported by start, at once, naming the file.
    fs::remove(image);
    r = virsh({"start", "disk1"});
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("disk image '" + image.string() + "' does not exist"))
        << describe(r);
}

TEST_F(VirshTest, UnsupportedXmlIsRejectedNamingTheElement) {
    std::string xml = idle_xml("disky");
    xml.insert(xml.find("</devices>"), "<interface type='direct'/>");
    ProcessResult r = virsh({"define", write_xml("disky", xml).string()});
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("unsupported configuration: <devices><interface> 0: "
                                 "type='direct' is not supported"))
        << describe(r);
    r = virsh({"define", write_xml("bad", "<domain type='ukvm'><name>x</name>").string()});
    EXPECT_THAT(r.err, HasSubstr("XML error: malformed domain XML")) << describe(r);
    EXPECT_THAT(virsh({"list", "--all"}).out, Not(HasSubstr("disky")));
}

// `virsh console` needs a terminal: script(1) gives it one. Input arrives after `delay_s`.
// The output ends with "console-ms=N": how long the console session itself lasted.
ProcessResult virsh_console(const std::string& uri, const std::string& name, int delay_s,
                            const std::string& input, const std::string& virsh_options = "") {
    ukvm::test::ProcessOptions options;
    options.timeout = 60s;
    const std::string cmd = "t0=$(date +%s%N); (sleep " + std::to_string(delay_s) + "; printf '" +
                            input + "') | (script -qec \"virsh " + virsh_options + " -c '" + uri +
                            "' console " + name +
                            "\" /dev/null; echo console-ms=$(( ($(date +%s%N) - t0) / 1000000 )))";
    return run_process({"sh", "-c", cmd}, options);
}

int console_ms(const ProcessResult& r) {
    const auto at = r.out.rfind("console-ms=");
    return at == std::string::npos ? -1 : std::stoi(r.out.substr(at + 11));
}

TEST_F(VirshTest, ConsoleShowsTheGuestAndEndsWithIt) {
    if (::access("/usr/bin/script", X_OK) != 0) GTEST_SKIP() << "no script(1) for a terminal";
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    ASSERT_EQ(virsh({"start", "idle"}).status, 0);
    // Ctrl-] detaches; the guest keeps running.
    ProcessResult r = virsh_console(uri(), "idle", 2, "\\035");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Connected to domain 'idle'"));
    EXPECT_THAT(r.out, HasSubstr("ukvm-kernel: boot modules loaded"));
    EXPECT_GE(console_ms(r), 2000) << describe(r);
    EXPECT_TRUE(wait_state("idle", "running"));

    // Keepalive: a PING after 1 s of silence, dropped after 2 unanswered. The idle guest
    // prints nothing, so only ukvmd's PONGs keep this 6 s session alive.
    r = virsh_console(uri(), "idle", 6, "\\035", "-k 1 -K 2");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("keepalive"))) << describe(r);
    EXPECT_GE(console_ms(r), 6000) << describe(r);

    // A guest that halts by itself ends the session: the stream's EOF, long before Ctrl-].
    ASSERT_EQ(virsh({"define", write_xml("short", idle_xml("short", 32, 2000)).string()}).status,
              0);
    ASSERT_EQ(virsh({"start", "short"}).status, 0);
    r = virsh_console(uri(), "short", 10, "\\035");
    EXPECT_THAT(r.out, HasSubstr("idle: slept"));
    EXPECT_THAT(r.out, HasSubstr("'short' exited with status 0"));
    const int ms = console_ms(r);
    EXPECT_GT(ms, 0) << describe(r);
    EXPECT_LT(ms, 8000) << describe(r);
    EXPECT_TRUE(wait_state("short", "shut off (shutdown)"));
}

// A raw client: sends bytes, reads one packet back.
class RawClient {
public:
    explicit RawClient(const fs::path& socket) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~RawClient() { ::close(fd_); }
    bool connected() const { return connected_; }
    void send(const std::vector<std::uint8_t>& bytes) {
        (void)!::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }
    void call(std::uint32_t proc, std::uint32_t serial, const std::vector<std::uint8_t>& args = {},
              std::uint32_t prog = ukvm::libvirt::kRemoteProgram) {
        ukvm::libvirt::Header h;
        h.prog = prog;
        h.proc = proc;
        h.serial = serial;
        send(ukvm::libvirt::encode_packet(h, args));
    }
    // The next packet, or nothing if the daemon closed the connection (or timed out).
    std::optional<ukvm::libvirt::Packet> receive() {
        ukvm::libvirt::PacketAssembler a;
        for (;;) {
            if (auto p = a.next()) return p;
            std::uint8_t buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return std::nullopt;
            a.feed(std::span(buf, static_cast<std::size_t>(n)));
        }
    }

private:
    int fd_ = -1;
    bool connected_ = false;
};

TEST_F(VirshTest, MalformedPacketsCloseOnlyTheirConnection) {
    ASSERT_EQ(virsh({"define", write_xml("idle", idle_xml("idle")).string()}).status, 0);
    ASSERT_EQ(virsh({"start", "idle"}).status, 0);
    RawClient good(daemon_->socket());
    ASSERT_TRUE(good.connected());
    good.call(66, 0);  // AUTH_LIST
    auto reply = good.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.type, ukvm::libvirt::MessageType::Reply);
    EXPECT_EQ(reply->header.status, ukvm::libvirt::MessageStatus::Ok);

    const std::vector<std::vector<std::uint8_t>> attacks = {
        {0xff, 0xff, 0xff, 0xff},                                      // oversized length
        {0x00, 0x00, 0x00, 0x04},                                      // length below the header
        {0x00, 0x00, 0x00, 0x1c, 1, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 66,  // unknown program
         0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0},
        {0x00, 0x00, 0x00, 0x1c, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 66,  // bad type
         0,    0,    0,    9,    0,    0,    0,    0,    0, 0, 0, 0},
    };
    for (const auto& attack : attacks) {
        RawClient bad(daemon_->socket());
        ASSERT_TRUE(bad.connected());
        bad.send(attack);
        EXPECT_FALSE(bad.receive()) << "connection survived a malformed packet";
    }
    {
        // The read-only socket takes no packet over 64 KiB (no read-only call needs one).
        RawClient bad(daemon_->socket().string() + "-ro");
        ASSERT_TRUE(bad.connected());
        bad.send({0x00, 0x02, 0x00, 0x00});  // 128 KiB announced
        EXPECT_FALSE(bad.receive());
    }
    {
        // Truncated arguments: SUPPORTS_FEATURE without its int.
        RawClient bad(daemon_->socket());
        bad.call(60, 0, {0, 0});
        EXPECT_FALSE(bad.receive());
    }
    // An unknown procedure is an error reply, not a disconnect.
    good.call(1, 1, {0, 0, 0, 0, 0, 0, 0, 0});  // CONNECT_OPEN(NULL, 0)
    ASSERT_TRUE(good.receive());
    good.call(99999, 2);
    reply = good.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.status, ukvm::libvirt::MessageStatus::Error);
    const auto error = ukvm::libvirt::decode_error(reply->payload);
    EXPECT_EQ(error.code, 39);
    EXPECT_EQ(error.message, "unknown procedure: 99999");
    // Keepalive PING gets a PONG.
    ukvm::libvirt::Header ping{
        ukvm::libvirt::kKeepaliveProgram,    1, 1,
        ukvm::libvirt::MessageType::Message, 0, ukvm::libvirt::MessageStatus::Ok};
    good.send(ukvm::libvirt::encode_packet(ping, {}));
    reply = good.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.prog, ukvm::libvirt::kKeepaliveProgram);
    EXPECT_EQ(reply->header.proc, 2u);
    // The first connection, other clients and the guest are unaffected.
    good.call(3, 3);  // CONNECT_GET_TYPE
    reply = good.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.status, ukvm::libvirt::MessageStatus::Ok);
    EXPECT_TRUE(wait_state("idle", "running"));
}

TEST_F(VirshTest, ReadOnlyClientsCannotExhaustConnections) {
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 64; ++i) {
        held.push_back(std::make_unique<RawClient>(daemon_->socket().string() + "-ro"));
        held.back()->call(66, 0);  // AUTH_LIST: the daemon has accepted it once it answers
        ASSERT_TRUE(held.back()->receive()) << "read-only connection " << i << " refused";
    }
    RawClient extra(daemon_->socket().string() + "-ro");
    extra.call(66, 0);
    EXPECT_FALSE(extra.receive()) << "a 65th read-only connection was served";
    const ProcessResult r = virsh({"list", "--all"});  // the read-write socket still works
    EXPECT_EQ(r.status, 0) << describe(r);
}

TEST_F(VirshTest, LifecycleEventsReachVirshEvent) {
    const fs::path xml = write_xml("ev", idle_xml("ev"));
    const std::string v = "virsh -q -c '" + uri() + "' ";
    // `virsh event` listens in the background while another virsh drives the domain.
    const std::string script = v + "event --all --loop --timeout 4 & sleep 1; " + v + "define " +
                               xml.string() + " >/dev/null; " + v + "start ev >/dev/null; " + v +
                               "destroy ev >/dev/null; " + v + "undefine ev >/dev/null; wait";
    ukvm::test::ProcessOptions options;
    options.timeout = 30s;
    const ProcessResult r = run_process({"sh", "-c", script}, options);
    EXPECT_THAT(r.out, testing::ContainsRegex("'ev': Defined Added\n.*'ev': Started Booted\n.*"
                                              "'ev': Stopped Destroyed\n.*'ev': Undefined Removed"))
        << describe(r);
}

TEST_F(VirshTest, PythonLibvirtClient) {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
    const ProcessResult probe = run_process({"/usr/bin/python3", "-c", "import libvirt"});
    if (probe.status != 0) GTEST_SKIP() << "python3-libvirt is not installed";
    const fs::path xml = write_xml("py", idle_xml("py"));
    ukvm::test::ProcessOptions options;
    options.timeout = 60s;
    const ProcessResult r = run_process(
        {"/usr/bin/python3", std::string(UKVM_SOURCE_DIR) + "/tests/integration/virsh_client.py",
         daemon_->socket().string(), xml.string()},
        options);
    ASSERT_EQ(r.status, 0) << describe(r);
    for (const char* step :
         {"ok: open ukvm", "ok: define py", "ok: list py", "ok: lookup", "ok: missing domain",
          "ok: start", "ok: console", "ok: destroy", "ok: undefine"}) {
        EXPECT_THAT(r.out, HasSubstr(step));
    }
}

}  // namespace
