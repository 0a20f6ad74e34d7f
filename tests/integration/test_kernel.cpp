// The guest kernel booted for real: ukvm runs the kernel with the in-guest IPC test suite
// (guest-servers/tests) and the suite must report "0 failed" with status 0; the same
// image must pass under QEMU too (COM1 console, isa-debug-exit status). The kernel's own
// statuses (panic 70, deadlock 71; docs/guest-kernel.md) are checked as well.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ukvm::test::describe;
using ukvm::test::find_program;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

constexpr int kStatusPanic = 70;
constexpr int kStatusDeadlock = 71;

fs::path kernel_image() {
    return fs::path(UKVM_GUEST_DIR) / "guest-kernel" / "kernel.elf";
}
fs::path program(const std::string& name) {
    return fs::path(UKVM_GUEST_DIR) / "guest-servers" / name;
}
// The runner first (the only module started at boot: cmdline start=1), then its boot image.
// (ipc_rs starts rs, which starts ds and hang.)
const std::vector<std::string> kSuite = {"ipc_test",   "ipc_echo",     "ipc_user",    "fault",
                                         "ipc_rules",  "ipc_deadlock", "ipc_notify",  "ipc_grants",
                                         "ipc_faults", "ipc_timers",   "ipc_devices", "ipc_rs",
                                         "rs",         "ds",           "hang",        "ipc_bench"};
const std::string kSuiteCmdline = "start=1";

class KernelBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        ASSERT_TRUE(fs::exists(kernel_image())) << kernel_image() << " is missing";
        for (const auto& m : kSuite) ASSERT_TRUE(fs::exists(program(m))) << program(m);
        std::string templ = (fs::temp_directory_path() / "ukvm-kernel-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Writes a config booting the kernel with the given programs as modules.
    fs::path config(const std::vector<std::string>& modules, const std::string& cmdline = "",
                    const std::string& first_args = "") {
        const fs::path file = dir_ / "guest.toml";
        std::ofstream out(file);
        out << "name = \"kernel-test\"\nmemory = 64\nvcpus = 1\n";
        out << "kernel = \"" << kernel_image().string() << "\"\n";
        out << "cmdline = \"" << cmdline << "\"\n";
        for (size_t i = 0; i < modules.size(); ++i)
            out << "[[module]]\npath = \"" << program(modules[i]).string() << "\"\nargs = \""
                << (i == 0 ? first_args : "") << "\"\n";
        out << "[console]\noutput = \"stdout\"\n";
        return file;
    }

    ProcessResult run_ukvm(const fs::path& cfg) {
        ProcessOptions options;
        options.timeout = std::chrono::seconds(120);
        return run_process({UKVM_BINARY, "run", cfg.string()}, options);
    }

    fs::path dir_;
};

TEST_F(KernelBoot, IpcSuitePassesOnUkvm) {
    const ProcessResult r = run_ukvm(config(kSuite, kSuiteCmdline));
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("on ukvm (hypercalls)"));
    EXPECT_THAT(r.out, HasSubstr(" passed, 0 failed\n")) << describe(r);
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("FAIL"))) << describe(r);
    // Every area ran and reported, and the bench line is there for bench/.
    for (const char* area : {"ipc_rules", "ipc_deadlock", "ipc_notify", "ipc_grants", "ipc_faults",
                             "ipc_timers", "ipc_devices", "ipc_rs"})
        EXPECT_THAT(r.out, ::testing::ContainsRegex(std::string("\n") + area +
                                                    ": [1-9][0-9]* passed, 0 failed\n"))
            << area;
    EXPECT_THAT(r.out,
                ::testing::ContainsRegex("\nbench: sendrec_ns=[0-9]+ null_syscall_ns=[0-9]+ "
                                         "replyrecv_ns=[0-9]+ kernel_call_ns=[0-9]+ rounds=200\n"));
}

TEST_F(KernelBoot, PanicHaltsWithItsOwnStatus) {
    const ProcessResult r = run_ukvm(config({}));  // no boot modules: nothing to run
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, kStatusPanic) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("ukvm-kernel: panic: no boot modules"));
}

TEST_F(KernelBoot, DeadlockIsDetected) {
    const ProcessResult r = run_ukvm(config({"ipc_echo"}));  // receives forever
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, kStatusDeadlock) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("deadlock"));
}

TEST_F(KernelBoot, RandomCallsDoNotHurtTheKernel) {
    ASSERT_TRUE(fs::exists(program("fuzz")));
    for (const char* seed : {"1", "2"}) {
        const ProcessResult r = run_ukvm(config({"fuzz"}, "", std::string("2000 ") + seed));
        ASSERT_FALSE(r.timed_out) << describe(r);
        EXPECT_EQ(r.status, 0) << describe(r);
        EXPECT_THAT(r.out, HasSubstr("fuzz: 2000 random calls survived; time call 0"));
        EXPECT_THAT(r.out, ::testing::Not(HasSubstr("panic")));
    }
}

TEST_F(KernelBoot, IpcSuitePassesOnQemu) {
    const fs::path qemu = find_program("qemu-system-x86_64");
    if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
    std::string initrd;
    for (const auto& m : kSuite) initrd += (initrd.empty() ? "" : ",") + program(m).string();
    ProcessOptions options;
    options.timeout = std::chrono::seconds(120);
    const ProcessResult r = run_process(
        {qemu.string(), "-enable-kvm", "-M",      "pc",
         "-m",          "64",          "-kernel", kernel_image().string(),
         "-append",     kSuiteCmdline, "-initrd", initrd,
         "-display",    "none",        "-serial", "stdio",
         "-monitor",    "none",        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
         "-no-reboot"},
        options);
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (0 << 1) | 1) << describe(r);  // isa-debug-exit: (status << 1) | 1
    EXPECT_THAT(r.out, HasSubstr("no ukvm VMM (UART console)"));
    EXPECT_THAT(r.out, HasSubstr(" passed, 0 failed")) << describe(r);
}

}  // namespace
