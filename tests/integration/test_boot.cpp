// Boots the test guests (tests/guests) with the real ukvm binary under /dev/kvm and checks
// what they print and how ukvm exits: the guest's own status, 3 for guest faults, 2 for
// images that cannot be booted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::describe;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

fs::path guest_image(const std::string& name) {
    return fs::path(UKVM_GUEST_DIR) / "tests" / "guests" / (name + ".elf");
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary) << bytes;
}

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

struct Module {
    fs::path path;
    std::string args;
};

class UkvmBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        std::string templ = (fs::temp_directory_path() / "ukvm-boot-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // A guest.toml in this test's directory booting kernel; paths are absolute, as TOML
    // literal strings.
    fs::path write_config(const fs::path& kernel, const std::string& cmdline,
                          std::uint64_t memory_mib = 64, const std::vector<Module>& modules = {}) {
        std::ostringstream toml;
        toml << "name = 'test'\nmemory = " << memory_mib << "\nkernel = '" << kernel.string()
             << "'\ncmdline = '" << cmdline << "'\n";
        for (const Module& m : modules)
            toml << "[[module]]\npath = '" << m.path.string() << "'\nargs = '" << m.args << "'\n";
        const fs::path config = dir_ / "guest.toml";
        write_file(config, toml.str());
        return config;
    }

    ProcessResult run(const fs::path& config) {
        ProcessOptions options;
        options.timeout = std::chrono::seconds(60);
        return run_process({UKVM_BINARY, "run", config.string()}, options);
    }

    // Boots a test guest from the build.
    ProcessResult boot(const std::string& guest, const std::string& cmdline = "",
                       std::uint64_t memory_mib = 64, const std::vector<Module>& modules = {}) {
        const fs::path image = guest_image(guest);
        EXPECT_TRUE(fs::exists(image)) << image << " is missing: build the guests first";
        return run(write_config(image, cmdline, memory_mib, modules));
    }

    fs::path dir_;
};

TEST_F(UkvmBoot, HelloPrintsWhatItWasBootedWith) {
    const fs::path module = dir_ / "module.bin";
    write_file(module, std::string(5000, 'm'));
    const ProcessResult r =
        boot("hello", "answer=42 exit=0", 64, {{module, "modarg1 --flag"}, {module, ""}});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Hello from ukvm guest\n"));
    EXPECT_THAT(r.out, HasSubstr("(ukvm hypercalls)\n"));  // loader name and kVersion probe
    EXPECT_THAT(r.out, HasSubstr("memory: 64 MiB (67108864 bytes)\n"));
    EXPECT_THAT(r.out, HasSubstr("cmdline: \"answer=42 exit=0\"\n"));
    EXPECT_THAT(r.out, HasSubstr(" UTC (ok)\n"));  // kTime says after 2024
    EXPECT_THAT(r.out, HasSubstr("modules: 2\n"));
    EXPECT_THAT(r.out, HasSubstr("modarg1 --flag\" at 0x"));
    EXPECT_THAT(r.out, HasSubstr(", 5000 bytes\n"));
    EXPECT_THAT(r.out, HasSubstr("exit: 0\n"));
}

TEST_F(UkvmBoot, HelloExitsWithItsOwnStatus) {
    const ProcessResult r = boot("hello", "exit=7");
    EXPECT_EQ(r.status, 7) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("exit: 7\n"));
}

TEST_F(UkvmBoot, HaltStatusAbove255Becomes255) {
    const ProcessResult r = boot("hello", "exit=300");
    EXPECT_EQ(r.status, 255) << describe(r);
}

TEST_F(UkvmBoot, BadPointersGetTheDocumentedStatus) {
    const ProcessResult r = boot("badptr", "", 64);
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    std::istringstream lines(r.out);
    int checks = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("check ", 0) != 0) continue;
        ++checks;
        EXPECT_TRUE(line.size() >= 4 && line.compare(line.size() - 4, 4, ": ok") == 0) << line;
    }
    EXPECT_GE(checks, 25) << describe(r);  // the guest really ran its checks
    EXPECT_THAT(r.out, HasSubstr(" checks, 0 failed\n"));
}

TEST_F(UkvmBoot, TripleFaultIsAGuestFaultWithRegisters) {
    const ProcessResult r = boot("triplefault");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 3) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("triplefault: empty IDT, then ud2\n"));
    EXPECT_THAT(r.out, Not(HasSubstr("still running")));
    EXPECT_THAT(lowercase(r.err), HasSubstr("rip")) << "no register dump on stderr";
}

TEST_F(UkvmBoot, UnmappedAccessesWarnAndContinue) {
    const ProcessResult r = boot("unmapped");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("unmapped: 0xc0000000: read "));
    EXPECT_THAT(r.out, HasSubstr("unmapped: survived\n"));
    EXPECT_THAT(lowercase(r.err), HasSubstr("c0000000")) << "no warning naming the address";
}

TEST_F(UkvmBoot, HaltWithInterruptsDisabledIsAGuestFault) {
    const ProcessResult r = boot("cli_hlt");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 3) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("cli_hlt: cli; hlt\n"));
    EXPECT_THAT(r.err, HasSubstr("interrupts disabled"));
}

TEST_F(UkvmBoot, I8042ResetEndsTheVmWithTheResetStatus) {
    const ProcessResult r = boot("reset");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 4) << describe(r);  // kExitGuestReset
    EXPECT_THAT(r.out, HasSubstr("reset: i8042 reset\n"));
    EXPECT_THAT(r.out, Not(HasSubstr("still running")));
}

// Both loops and the TSC calibration, in ring 0 and (with IOPL 3) in ring 3.
TEST_F(UkvmBoot, HcbenchReportsBothCosts) {
    const std::regex line(
        "\nhypercall_ns=[1-9][0-9]* bare_exit_ns=[1-9][0-9]* ratio=[0-9]+\\.[0-9]{2}\n");
    for (const char* cmdline : {"n=200", "n=200 ring3=1"}) {
        SCOPED_TRACE(cmdline);
        const ProcessResult r = boot("hcbench", cmdline);
        ASSERT_FALSE(r.timed_out) << describe(r);
        EXPECT_EQ(r.status, 0) << describe(r);
        EXPECT_TRUE(std::regex_search(r.out, line)) << describe(r);
        EXPECT_THAT(r.err, Not(HasSubstr("dropped"))) << "hcbench sent a bad message";
    }
}

// Images that cannot be booted: status 2 and a message naming the file, nothing run.

TEST_F(UkvmBoot, TruncatedKernelIsRejected) {
    const std::string image = read_file(guest_image("hello"));
    ASSERT_GT(image.size(), 4096u);
    const fs::path kernel = dir_ / "truncated.elf";
    write_file(kernel, image.substr(0, image.size() / 3));
    const ProcessResult r = run(write_config(kernel, ""));
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("truncated.elf"));
    EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
}

TEST_F(UkvmBoot, TextFileKernelIsRejected) {
    const fs::path kernel = dir_ / "notes.txt";
    write_file(kernel, "this is not a kernel image, just some text\n");
    const ProcessResult r = run(write_config(kernel, ""));
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("notes.txt"));
}

// hello.elf (ELF32) with its last loadable segment's memory size raised to 32 MiB: a
// kernel that needs more than the guest's 4 MiB.
TEST_F(UkvmBoot, KernelLargerThanMemoryIsRejected) {
    std::string image = read_file(guest_image("hello"));
    ASSERT_GE(image.size(), 52u);
    ASSERT_EQ(image.compare(0, 4,
                            "\x7f"
                            "ELF"),
              0);
    ASSERT_EQ(image[4], 1) << "expected an ELF32 image";
    auto u32 = [&](size_t off) {
        std::uint32_t v;
        std::memcpy(&v, image.data() + off, 4);
        return v;
    };
    auto u16 = [&](size_t off) {
        std::uint16_t v;
        std::memcpy(&v, image.data() + off, 2);
        return v;
    };
    const std::uint32_t phoff = u32(28);
    const std::uint16_t phentsize = u16(42), phnum = u16(44);
    size_t last_load = 0;
    for (std::uint16_t i = 0; i < phnum; ++i) {
        const size_t ph = phoff + size_t(i) * phentsize;
        ASSERT_LE(ph + 32, image.size());
        if (u32(ph) == 1) last_load = ph;  // PT_LOAD
    }
    ASSERT_NE(last_load, 0u);
    const std::uint32_t memsz = 32u << 20;
    std::memcpy(image.data() + last_load + 20, &memsz, 4);  // p_memsz
    const fs::path kernel = dir_ / "huge-bss.elf";
    write_file(kernel, image);

    const ProcessResult r = run(write_config(kernel, "", 4));
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("huge-bss.elf"));
    EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
}

TEST_F(UkvmBoot, ModuleLargerThanMemoryIsRejected) {
    const fs::path module = dir_ / "big-module.bin";
    write_file(module, std::string(6u << 20, 'x'));
    const ProcessResult r = boot("hello", "", 4, {{module, "big"}});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("big-module.bin"));
    EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
}

// configs/hello.toml names ../build/tests/guests/hello.elf, so it only boots when this
// build is <source>/build.
TEST_F(UkvmBoot, ShippedHelloConfigBoots) {
    const fs::path source = UKVM_SOURCE_DIR;
    std::error_code ec;
    if (!fs::equivalent(fs::path(UKVM_GUEST_DIR), source / "build", ec))
        GTEST_SKIP() << "configs/hello.toml boots build/tests/guests/hello.elf; the guests here "
                        "are in "
                     << UKVM_GUEST_DIR;
    const ProcessResult r = run(source / "configs" / "hello.toml");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Hello from ukvm guest\n"));
    EXPECT_THAT(r.out, HasSubstr("memory: 64 MiB"));
}

}  // namespace
