// The test guests under QEMU: the same multiboot images ukvm boots also boot under
// `qemu-system-x86_64 -kernel`, with COM1 for output and isa-debug-exit for the status,
// which keeps the guests honest multiboot kernels and gives benchmarks their peer.
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

fs::path guest_image(const std::string& name) {
    return fs::path(UKVM_GUEST_DIR) / "tests" / "guests" / (name + ".elf");
}

class QemuBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        qemu_ = find_program("qemu-system-x86_64");
        if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
        std::string templ = (fs::temp_directory_path() / "ukvm-qemu-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Boots image with -initrd and -append as given; QEMU's status is (guest status << 1) | 1.
    ProcessResult boot(const fs::path& image, const std::string& initrd,
                       const std::string& append) {
        std::vector<std::string> argv = {qemu_.string(), "-enable-kvm", "-M",
                                         "pc",           "-kernel",     image.string()};
        if (!initrd.empty()) argv.insert(argv.end(), {"-initrd", initrd});
        if (!append.empty()) argv.insert(argv.end(), {"-append", append});
        argv.insert(argv.end(),
                    {"-display", "none", "-serial", "stdio", "-monitor", "none", "-device",
                     "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot"});
        ProcessOptions options;
        options.timeout = std::chrono::seconds(60);
        return run_process(argv, options);
    }

    fs::path qemu_;
    fs::path dir_;
};

TEST_F(QemuBoot, HelloWithModuleAndExitStatus) {
    const fs::path image = guest_image("hello");
    ASSERT_TRUE(fs::exists(image)) << image << " is missing: build the guests first";
    const fs::path module = dir_ / "module.bin";
    std::ofstream(module) << "a small module\n";  // 15 bytes

    const ProcessResult r = boot(image, module.string() + " modarg1", "exit=5");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (5 << 1) | 1) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Hello from ukvm guest\n"));
    EXPECT_THAT(r.out, HasSubstr("no hypercalls"));  // QEMU must not look like ukvm
    EXPECT_THAT(r.out, HasSubstr("exit=5\"\n"));
    EXPECT_THAT(r.out, HasSubstr("modules: 1\n"));
    EXPECT_THAT(r.out, HasSubstr("module 0: \"" + module.string() + " modarg1\""));
    EXPECT_THAT(r.out, HasSubstr(", 15 bytes\n"));
    EXPECT_THAT(r.out, HasSubstr(" UTC (ok)\n"));
    EXPECT_THAT(r.out, HasSubstr("exit: 5\n"));
}

TEST_F(QemuBoot, HelloDefaultsToStatusZero) {
    const fs::path image = guest_image("hello");
    ASSERT_TRUE(fs::exists(image)) << image << " is missing: build the guests first";
    const ProcessResult r = boot(image, "", "");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (0 << 1) | 1) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("Hello from ukvm guest\n"));
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("module 0:")));
}

}  // namespace
