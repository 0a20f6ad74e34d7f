// The ukvm command line as a user sees it: messages and exit statuses of the real binary.
// None of these boot a guest, so none need /dev/kvm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
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

TEST(Cli, VersionNamesTheAbiAndKvm) {
    const ProcessResult r = ukvm({"version"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, StartsWith(std::string("ukvm ") + UKVM_VERSION + " (hypercall ABI v1)\n"));
    // Either a version or the reason, but always a line about /dev/kvm.
    EXPECT_THAT(r.out, HasSubstr("\n/dev/kvm: "));
    EXPECT_EQ(r.err, "");
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
