// The ukvm command line as a user sees it: messages and exit statuses of the real binary;
// and the process helper that runs it. None of these boot a guest or need /dev/kvm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tests/integration/process.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ukvm::test::describe;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

const std::string kData = std::string(UKVM_SOURCE_DIR) + "/tests/data";

ProcessResult ukvm(std::vector<std::string> args) {
    args.insert(args.begin(), UKVM_BINARY);
    return run_process(args);
}

// The helper other integration tests rely on: status, output, stdin, env and timeout.
TEST(ProcessHelper, CapturesStatusAndBothStreams) {
    const ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2; exit 7"});
    EXPECT_EQ(r.status, 7);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
}

TEST(ProcessHelper, PassesInputAndEnvironment) {
    ukvm::test::ProcessOptions options;
    options.has_input = true;
    options.input = std::string(200'000, 'x');  // more than a pipe buffer holds
    options.env = {{"UKVM_TEST_VALUE", "42"}};
    const ProcessResult r = run_process({"sh", "-c", "wc -c; echo \"$UKVM_TEST_VALUE\""}, options);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "200000\n42\n");
}

// True once `pid` has ended (gone, or a zombie waiting for its new parent to reap it).
bool ended(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) return true;
        const auto paren = line.rfind(')');
        if (paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] == 'Z')
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

TEST(ProcessHelper, TimeoutKillsTheWholeGroup) {
    ukvm::test::ProcessOptions options;
    options.timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    const ProcessResult r = run_process({"sh", "-c", "sleep 30 & echo $!; wait"}, options);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_EQ(r.status, 128 + SIGKILL);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    // The grandchild went with it.
    const pid_t grandchild = static_cast<pid_t>(std::atoi(r.out.c_str()));
    ASSERT_GT(grandchild, 0) << describe(r);
    EXPECT_TRUE(ended(grandchild));
}

TEST(ProcessHelper, MissingProgramThrows) {
    EXPECT_THROW(run_process({"/nonexistent/ukvm-test-program"}), std::system_error);
}

TEST(Cli, VersionNamesTheAbiAndKvm) {
    const ProcessResult r = ukvm({"version"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, StartsWith(std::string("ukvm ") + UKVM_VERSION + " (hypercall ABI v1)\n"));
    // Either a version or the reason, but always a line about /dev/kvm.
    EXPECT_THAT(r.out, HasSubstr("\n/dev/kvm: "));
    EXPECT_EQ(r.err, "");
}

// Without access to /dev/kvm, version still succeeds and says why KVM is unavailable. As
// root that takes running ukvm as user nobody, via setpriv.
TEST(Cli, VersionWithoutKvmSaysWhy) {
    std::vector<std::string> args = {UKVM_BINARY, "version"};
    if (::geteuid() == 0) {
        struct stat st {};
        if (::stat("/dev/kvm", &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
            GTEST_SKIP() << "/dev/kvm is open to every user here";
        }
        if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/setpriv";
        args.insert(args.begin(),
                    {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    } else if (::access("/dev/kvm", R_OK | W_OK) == 0) {
        GTEST_SKIP() << "this user can open /dev/kvm";
    }
    const ProcessResult r = run_process(args);
    if (r.status != 0 && r.err.starts_with("setpriv:")) {
        GTEST_SKIP() << "user nobody cannot run " << UKVM_BINARY << ": " << describe(r);
    }
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n/dev/kvm: unavailable ("));
}

TEST(Cli, ValidateFullConfig) {
    const std::string file = kData + "/full.toml";
    const ProcessResult r = ukvm({"validate", file});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, file + ": ok (full-guest_1.0, 128 MiB, 2 modules)\n");
}

TEST(Cli, ValidateMinimalConfigShowsDefaults) {
    const std::string file = kData + "/minimal.toml";
    const ProcessResult r = ukvm({"validate", file});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, file + ": ok (minimal, 64 MiB, 0 modules)\n");
}

TEST(Cli, ValidateBadConfigExits2WithPosition) {
    const std::string file = kData + "/bad-memory.toml";
    const ProcessResult r = ukvm({"validate", file});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.err, "ukvm: " + file + ":3:10: memory: expected an integer, got a string\n");
    EXPECT_EQ(r.out, "");
}

TEST(Cli, RunMissingConfigExits2) {
    const std::string file = kData + "/no-such-config.toml";
    const ProcessResult r = ukvm({"run", file});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.err, "ukvm: " + file + ": config file does not exist\n");
}

TEST(Cli, RunWithoutConfigExits2) {
    const ProcessResult r = ukvm({"run"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("config"));
}

TEST(Cli, UnknownSubcommandExits2) {
    const ProcessResult r = ukvm({"frobnicate"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("frobnicate"));
}

TEST(Cli, UnknownOptionExits2) {
    const ProcessResult r = ukvm({"validate", "--bogus", kData + "/full.toml"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("--bogus"));
}

TEST(Cli, ExtraArgumentExits2) {
    const ProcessResult r = ukvm({"validate", kData + "/full.toml", kData + "/minimal.toml"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.out, "");
}

TEST(Cli, SecondSubcommandExits2) {
    const ProcessResult r = ukvm({"validate", kData + "/minimal.toml", "version"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.out, "");
}

TEST(Cli, NoSubcommandPrintsHelpAndExits2) {
    const ProcessResult r = ukvm({});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("validate"));
    EXPECT_THAT(r.err, HasSubstr("--log-level"));
}

TEST(Cli, HelpExits0) {
    const ProcessResult r = ukvm({"--help"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("validate"));
}

TEST(Cli, LogLevelAcceptedBeforeAndAfterSubcommand) {
    const std::string file = kData + "/minimal.toml";
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--log-level", "debug", "validate", file},
                                               {"validate", file, "--log-level", "off"},
                                               {"validate", "--log-level=warn", file}}) {
        const ProcessResult r = ukvm(args);
        EXPECT_EQ(r.status, 0) << describe(r);
        EXPECT_EQ(r.out, file + ": ok (minimal, 64 MiB, 0 modules)\n");
    }
}

TEST(Cli, BadLogLevelExits2) {
    const std::string file = kData + "/minimal.toml";
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--log-level", "loud", "validate", file},
                                               {"validate", file, "--log-level", "loud"}}) {
        const ProcessResult r = ukvm(args);
        EXPECT_EQ(r.status, 2) << describe(r);
        EXPECT_THAT(r.err, HasSubstr("loud"));
        EXPECT_EQ(r.out, "");
    }
}

// The level really reaches the logger: debug lines appear only when asked for. (The guest
// is a dummy file, so run fails after the config is loaded; the status is not the point.)
TEST(Cli, LogLevelControlsStderr) {
    const std::string file = kData + "/minimal.toml";
    const ProcessResult debug = ukvm({"run", file, "--log-level", "debug"});
    EXPECT_THAT(debug.err, HasSubstr("[debug] " + file + ": guest 'minimal'")) << describe(debug);
    const ProcessResult info = ukvm({"--log-level", "info", "run", file});
    EXPECT_THAT(info.err, Not(HasSubstr("[debug]"))) << describe(info);
}

}  // namespace

// A disk image another VMM holds is a user error: status 2, the message names the image.
TEST(Cli, RunWithALockedDiskImageExits2NamingIt) {
    namespace fs = std::filesystem;
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
    const fs::path kernel = fs::path(UKVM_GUEST_DIR) / "tests/guests/hello.elf";
    if (!fs::exists(kernel)) GTEST_SKIP() << kernel << " is not built";
    std::string templ = (fs::temp_directory_path() / "ukvm-cli-disk-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const fs::path dir = templ;
    const fs::path disk = dir / "disk.img";
    std::ofstream(disk, std::ios::binary) << std::string(64 * 1024, '\0');
    std::ofstream(dir / "guest.toml") << "name = \"locked\"\nkernel = \"" << kernel.string()
                                      << "\"\n[[disk]]\npath = \"disk.img\"\n";
    // The lock is taken in a child that outlives the check, as a second VMM would hold it.
    ukvm::test::ProcessOptions options;
    options.timeout = std::chrono::seconds(30);
    const ProcessResult r = run_process(
        {"flock", "-x", disk.string(), UKVM_BINARY, "run", (dir / "guest.toml").string()}, options);
    fs::remove_all(dir);
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, StartsWith("ukvm: "));
    EXPECT_THAT(r.err, HasSubstr(disk.string()));
}

// validate also loads the images (into scratch memory): an unbootable kernel is reported
// before `run`, as the same BootError `run` would give, exit 2.
TEST(Cli, ValidateRejectsAKernelWithoutAMultibootHeader) {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "ukvm-cli-validate-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const fs::path dir = templ;
    std::ofstream(dir / "text.elf") << "not a kernel\n";
    std::ofstream(dir / "guest.toml") << "name = \"bad\"\nkernel = \"text.elf\"\n";
    const ProcessResult r = run_process({UKVM_BINARY, "validate", (dir / "guest.toml").string()});
    fs::remove_all(dir);
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, StartsWith("ukvm: "));
    EXPECT_THAT(r.err, HasSubstr("text.elf: no multiboot header"));
    EXPECT_EQ(r.out, "");
}
