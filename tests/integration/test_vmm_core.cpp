// The VMM core under real KVM with tiny guests assembled here: a few bytes of 32-bit code in
// a Multiboot a.out-kludge image loaded at 1 MiB.
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "tests/integration/flat_guest.hpp"
#include "vmm/boot/multiboot.hpp"
#include "vmm/config.hpp"
#include "vmm/machine.hpp"

extern char** environ;

namespace ukvm {
namespace {

namespace fs = std::filesystem;
using test::Bytes;

// Checks EAX == 0x2BADB002, does the version hypercall with its message at 0x8000, checks
// the reply and halts with status 5 (9 if anything was wrong).
const Bytes kVersionThenHalt5 = {
    0x3d, 0x02, 0xb0, 0xad, 0x2b, 0x75, 0x35, 0xc7, 0x05, 0x04, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0xb8, 0x00, 0x80, 0x00, 0x00, 0x66, 0xba, 0x00, 0x05, 0xef, 0x83, 0x3d, 0x04, 0x80, 0x00,
    0x00, 0x00, 0x75, 0x18, 0x81, 0x3d, 0x08, 0x80, 0x00, 0x00, 0x55, 0x4b, 0x56, 0x4d, 0x75, 0x0c,
    0xc7, 0x05, 0x08, 0x80, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0xeb, 0x0a, 0xc7, 0x05, 0x08, 0x80,
    0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x04, 0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0xb8, 0x00, 0x80, 0x00, 0x00, 0x66, 0xba, 0x00, 0x05, 0xef, 0xeb, 0xfe};

// `rep outsb` of the 6 bytes at 0x100100 to COM1, then a console-write hypercall of the 4
// bytes at 0x100108, then halt(0).
const Bytes kStringIoThenConsoleWrite = {
    0xbe, 0x00, 0x01, 0x10, 0x00, 0xb9, 0x06, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xfc,
    0xf3, 0x6e, 0xc7, 0x05, 0x04, 0x80, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x08,
    0x80, 0x00, 0x00, 0x08, 0x01, 0x10, 0x00, 0xc7, 0x05, 0x0c, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xc7, 0x05, 0x10, 0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x14,
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x00, 0x80, 0x00, 0x00, 0x66, 0xba, 0x00,
    0x05, 0xef, 0xc7, 0x05, 0x04, 0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x08,
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xef, 0xeb, 0xfe};

// Sets a stack, programs the PIC (IRQ 4 only, vectors 0x20+), a GDT and an IDT whose vector 0x24
// goes to the handler at 0x100100, enables the UART's RX interrupt, then idles in sti; hlt.
const Bytes kRxInterruptSetup = {
    0xbc, 0x00, 0x70, 0x00, 0x00, 0xb0, 0x11, 0xe6, 0x20, 0xe6, 0xa0, 0xb0, 0x20, 0xe6, 0x21,
    0xb0, 0x28, 0xe6, 0xa1, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x02, 0xe6, 0xa1, 0xb0, 0x01, 0xe6,
    0x21, 0xe6, 0xa1, 0xb0, 0xef, 0xe6, 0x21, 0xb0, 0xff, 0xe6, 0xa1, 0xc7, 0x05, 0x20, 0x71,
    0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0xc7, 0x05, 0x24, 0x71, 0x00, 0x00, 0x00, 0x8e, 0x10,
    0x00, 0x0f, 0x01, 0x1d, 0x8b, 0x00, 0x10, 0x00, 0xc7, 0x05, 0x08, 0x78, 0x00, 0x00, 0xff,
    0xff, 0x00, 0x00, 0xc7, 0x05, 0x0c, 0x78, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xc7, 0x05,
    0x10, 0x78, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0xc7, 0x05, 0x14, 0x78, 0x00, 0x00, 0x00,
    0x92, 0xcf, 0x00, 0x0f, 0x01, 0x15, 0x85, 0x00, 0x10, 0x00, 0x66, 0xba, 0xf9, 0x03, 0xb0,
    0x01, 0xee, 0x66, 0xba, 0xfc, 0x03, 0xb0, 0x08, 0xee, 0xfb, 0xf4, 0xeb, 0xfd, 0x17, 0x00,
    0x00, 0x78, 0x00, 0x00, 0xff, 0x07, 0x00, 0x70, 0x00, 0x00};
// The interrupt handler: reads the received byte and halts with it as the status.
const std::string kRxInterruptHandler = {
    '\x66', '\xba', '\xf8', '\x03', '\xec', '\x0f', '\xb6', '\xc0', '\xc7', '\x05', '\x04', '\x80',
    '\x00', '\x00', '\x04', '\x00', '\x00', '\x00', '\xa3', '\x08', '\x80', '\x00', '\x00', '\xb8',
    '\x00', '\x80', '\x00', '\x00', '\x66', '\xba', '\x00', '\x05', '\xef', '\xeb', '\xfe'};

const Bytes kUd2 = {0x0f, 0x0b};                                 // #UD with no IDT: triple fault
const Bytes kCliHlt = {0xfa, 0xf4, 0xeb, 0xfd};                  // cli; 1: hlt; jmp 1b
const Bytes kStiHlt = {0xfb, 0xf4, 0xeb, 0xfd};                  // sti; 1: hlt; jmp 1b
const Bytes kI8042Reset = {0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe};  // out 0x64, 0xfe; jmp $

Bytes image(const Bytes& code, const std::string& data = "") {
    return test::flat_guest_image(code, data);
}

class VmmCore : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        std::string templ = (fs::temp_directory_path() / "ukvm-core-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    GuestConfig config(const Bytes& kernel_bytes) {
        const fs::path kernel = dir_ / "kernel.bin";
        std::ofstream(kernel, std::ios::binary)
            .write(reinterpret_cast<const char*>(kernel_bytes.data()),
                   static_cast<std::streamsize>(kernel_bytes.size()));
        GuestConfig c;
        c.name = "core-test";
        c.memory_mib = 16;
        c.kernel = kernel;
        c.console.output = ConsoleOutput::File;
        c.console.file = dir_ / "console.txt";
        c.console.input = ConsoleInput::None;
        return c;
    }

    fs::path write_toml(const GuestConfig& c, const std::string& input = "none") {
        std::ostringstream toml;
        toml << "name = 'core'\nmemory = " << c.memory_mib << "\nkernel = '" << c.kernel.string()
             << "'\n[console]\noutput = 'null'\ninput = '" << input << "'\n";
        fs::path file = dir_ / "guest.toml";
        std::ofstream(file) << toml.str();
        return file;
    }

    std::string console() {
        std::ifstream in(dir_ / "console.txt", std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }

    fs::path dir_;
};

TEST_F(VmmCore, VersionHypercallThenHaltStatus) {
    EXPECT_EQ(run_guest(config(image(kVersionThenHalt5))), 5);
}

TEST_F(VmmCore, SecondVcpuWaitsForSipiAndDoesNotHoldTheVmUp) {
    GuestConfig c = config(image(kVersionThenHalt5));
    c.vcpus = 2;
    EXPECT_EQ(run_guest(c), 5);
}

TEST_F(VmmCore, LargeMemoryAboveTheHole) {
    GuestConfig c = config(image(kVersionThenHalt5));
    c.memory_mib = 3 * 1024 + 64;  // RAM above 4 GiB as a second memory slot
    EXPECT_EQ(run_guest(c), 5);
}

TEST_F(VmmCore, StringIoAndHypercallShareTheConsole) {
    // "uart: " at 0x100100 for the UART, "ok!\n" at 0x100108 for the hypercall.
    const std::string data("uart: \0\0ok!\n", 12);
    EXPECT_EQ(run_guest(config(image(kStringIoThenConsoleWrite, data))), 0);
    EXPECT_EQ(console(), "uart: ok!\n");
}

TEST_F(VmmCore, TripleFaultIsAGuestFault) {
    testing::internal::CaptureStderr();
    const int status = run_guest(config(image(kUd2)));
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(status, kExitGuestFault);
    EXPECT_NE(err.find("triple fault"), std::string::npos) << err;
    EXPECT_NE(err.find("RIP="), std::string::npos) << err;
    EXPECT_NE(err.find("CR0="), std::string::npos) << err;
}

TEST_F(VmmCore, CliHltIsDetected) {
    testing::internal::CaptureStderr();
    const auto start = std::chrono::steady_clock::now();
    const int status = run_guest(config(image(kCliHlt)));
    const auto took = std::chrono::steady_clock::now() - start;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(status, kExitGuestFault);
    EXPECT_NE(err.find("halted with interrupts disabled"), std::string::npos) << err;
    EXPECT_LT(took, std::chrono::seconds(5));
}

// With a second vCPU that was never started, the boot vCPU in cli; hlt still hangs the VM.
TEST_F(VmmCore, CliHltWithAParkedSecondVcpuIsDetected) {
    GuestConfig c = config(image(kCliHlt));
    c.vcpus = 2;
    testing::internal::CaptureStderr();
    const int status = run_guest(c);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(status, kExitGuestFault);
    EXPECT_NE(err.find("halted with interrupts disabled"), std::string::npos) << err;
    EXPECT_NE(err.find("vCPU 0 registers"), std::string::npos) << err;
    EXPECT_EQ(err.find("vCPU 1 registers"), std::string::npos) << err;  // parked, not dead
}

TEST_F(VmmCore, I8042ResetEndsWithTheResetStatus) {
    EXPECT_EQ(run_guest(config(image(kI8042Reset))), kExitGuestReset);
}

TEST_F(VmmCore, BadImageIsABootError) {
    Bytes bad = image(kVersionThenHalt5);
    std::memset(bad.data() + test::kFlatHeaderOffset + 8, 0, 4);  // checksum
    EXPECT_THROW(run_guest(config(bad)), BootError);
}

// sti; hlt is an idle guest, not a hung one: the watchdog must leave it alone, and SIGTERM
// or SIGINT must stop it cleanly with 128 + the signal.
int run_idle_guest_until(const fs::path& toml, int sig) {
    std::vector<std::string> args = {UKVM_BINARY, "run", toml.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, UKVM_BINARY, nullptr, nullptr, argv.data(), environ) != 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // > 2 watchdog looks
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != 0) {
        ADD_FAILURE() << "ukvm ended on an idle guest";
        return -1;
    }
    ::kill(pid, sig);
    if (::waitpid(pid, &status, 0) != pid) return -1;
    if (!WIFEXITED(status)) {
        ADD_FAILURE() << "killed by signal " << WTERMSIG(status);
        return -1;
    }
    return WEXITSTATUS(status);
}

TEST_F(VmmCore, IdleGuestRunsUntilSigterm) {
    EXPECT_EQ(run_idle_guest_until(write_toml(config(image(kStiHlt))), SIGTERM), 143);
}

TEST_F(VmmCore, IdleGuestRunsUntilSigint) {
    EXPECT_EQ(run_idle_guest_until(write_toml(config(image(kStiHlt))), SIGINT), 130);
}

// On a terminal (input "auto"), ukvm puts it in raw mode while the guest runs and restores
// it when stopped by a signal.
TEST_F(VmmCore, TerminalIsRawWhileRunningAndRestoredAfterSigterm) {
    const fs::path toml = write_toml(config(image(kStiHlt)), "auto");
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl(UKVM_BINARY, UKVM_BINARY, "run", toml.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    termios before{};
    ASSERT_EQ(::tcgetattr(master, &before), 0);
    EXPECT_TRUE(before.c_lflag & ICANON);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    termios during{};
    ASSERT_EQ(::tcgetattr(master, &during), 0);
    EXPECT_FALSE(during.c_lflag & ICANON);
    EXPECT_FALSE(during.c_lflag & ECHO);
    EXPECT_TRUE(during.c_lflag & ISIG);  // Ctrl-C still stops the VM
    ::kill(pid, SIGTERM);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    termios after{};
    ASSERT_EQ(::tcgetattr(master, &after), 0);
    ::close(master);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 143);
    EXPECT_EQ(after.c_lflag, before.c_lflag);
    EXPECT_EQ(after.c_iflag, before.c_iflag);
    EXPECT_EQ(after.c_oflag, before.c_oflag);
}

// A byte on ukvm's stdin reaches the guest through the UART's RX interrupt, routed by the
// in-kernel PIC.
TEST_F(VmmCore, StdinByteArrivesAsUartInterrupt) {
    const fs::path toml =
        write_toml(config(image(kRxInterruptSetup, kRxInterruptHandler)), "stdin");
    test::ProcessOptions options;
    options.timeout = std::chrono::seconds(30);
    options.input = "A";
    options.has_input = true;
    auto r = test::run_process({UKVM_BINARY, "run", toml.string()}, options);
    EXPECT_EQ(r.status, 'A') << test::describe(r);
}

TEST_F(VmmCore, TimingLine) {
    const fs::path toml = write_toml(config(image(kVersionThenHalt5)));
    test::ProcessOptions options;
    options.timeout = std::chrono::seconds(30);
    auto r = test::run_process({UKVM_BINARY, "run", "--timing", toml.string()}, options);
    EXPECT_EQ(r.status, 5) << test::describe(r);
    long long first = -1, exit = -1, rss = -1, guest = -1;
    auto at = r.err.find("ukvm-timing: ");
    ASSERT_NE(at, std::string::npos) << r.err;
    ASSERT_EQ(std::sscanf(r.err.c_str() + at,
                          "ukvm-timing: first-hypercall-us=%lld exit-us=%lld rss-kib=%lld "
                          "guest-resident-kib=%lld",
                          &first, &exit, &rss, &guest),
              4)
        << r.err;
    EXPECT_GT(first, 0);
    EXPECT_GE(exit, first);
    // The guest touched its image and info pages, and the VMM's own pages come on top.
    EXPECT_GT(guest, 0);
    EXPECT_GT(rss, guest);
}

}  // namespace
}  // namespace ukvm
