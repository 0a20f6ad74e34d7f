// The MINIX-style system booted for real (configs/minix.toml, with this build's images):
// RS starts DS, PM, TTY and init, init starts the shell, and the shell is driven through
// ukvm's stdin (the guest's COM1). Checks the shell's commands, RS restarting a killed
// service (rstest), the isolation of a hostile user program (isolate), exec/wait through
// init restarting an exited shell, fork (forktest), and the same image reaching the prompt
// under QEMU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::add_rs_args;
using ukvm::test::config_values;
using ukvm::test::describe;
using ukvm::test::find_program;
using ukvm::test::make_temp_dir;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::run_minix;
using ukvm::test::run_minix_qemu;

constexpr const char* kPrompt = "minix# ";

using ukvm::test::minix_config;  // without the shipped root disk: tests run at once

// The console's lines with shell prompts taken off the front.
std::vector<std::string> lines(const std::string& out) {
    std::vector<std::string> result;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        while (line.rfind(kPrompt, 0) == 0) line.erase(0, std::string(kPrompt).size());
        result.push_back(line);
    }
    return result;
}

bool has_line(const std::string& out, const std::string& want) {
    for (const auto& l : lines(out))
        if (l == want) return true;
    return false;
}

bool has_line_matching(const std::string& out, const std::string& pattern) {
    std::regex re(pattern);
    for (const auto& l : lines(out))
        if (std::regex_match(l, re)) return true;
    return false;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++n;
    return n;
}

class MinixBoot : public ::testing::Test {
protected:
    void SetUp() override {
        config_ = minix_config();
        for (const auto& p : config_values(config_, "path")) ASSERT_TRUE(fs::exists(p)) << p;
        ASSERT_TRUE(fs::exists(config_values(config_, "kernel").at(0)));
        dir_ = make_temp_dir("ukvm-minix-test");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Boots the system under ukvm with input on the guest's console (then the script's
    // steps: input written once the console shows what each waits for).
    ProcessResult run_ukvm(const std::string& input,
                           std::vector<ProcessOptions::Step> script = {}) {
        return run_minix(dir_ / "minix.toml", config_, input, std::chrono::seconds(120),
                         std::move(script));
    }

    std::string config_;
    fs::path dir_;
};

TEST_F(MinixBoot, ShellCommandsAndPoweroff) {
    SKIP_WITHOUT_KVM();
    const ProcessResult r = run_ukvm("echo hi\nhelp\nps\nuptime\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr(kPrompt)) << describe(r);
    EXPECT_TRUE(has_line(r.out, "hi")) << describe(r);
    EXPECT_TRUE(has_line_matching(r.out, " *PID +PPID +ENDPOINT .* NAME")) << describe(r);
    for (const char* name : {"rs", "ds", "pm", "tty", "init", "sh"})
        EXPECT_TRUE(has_line_matching(r.out, " *[0-9]+ +[0-9]+ +[0-9]+ .* " + std::string(name)))
            << name << "\n"
            << describe(r);
    EXPECT_TRUE(has_line_matching(r.out, "up 0:00:[0-9][0-9]\\.[0-9]{3}")) << describe(r);
    // help is one print() of more than its 256-byte buffer: the last line must arrive too.
    EXPECT_THAT(r.out, HasSubstr("(init starts another)\nanything else runs the boot program"));
    EXPECT_THAT(r.out, HasSubstr("powering off\n"));
    EXPECT_THAT(r.out, Not(HasSubstr("panic")));
}

TEST_F(MinixBoot, RsRestartsAKilledServiceAndDsFollows) {
    SKIP_WITHOUT_KVM();
    const ProcessResult r = run_ukvm("rstest\nps\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("rs: ds (endpoint 65537, generation 1) was killed"));
    EXPECT_THAT(r.out, HasSubstr("rs: ds restarted: endpoint 131073, generation 2"));
    EXPECT_THAT(r.out, HasSubstr("PASS DS maps the name to the new endpoint"));
    EXPECT_THAT(r.out, HasSubstr("\n10 passed, 0 failed\n")) << describe(r);
    // ps after the restart: ds in slot 1, generation 2.
    EXPECT_TRUE(has_line_matching(r.out, " *[0-9]+ +[0-9]+ +131073 +1 +2 system .* ds"))
        << describe(r);
}

TEST_F(MinixBoot, TtyRestartIsTransparentToTheShell) {
    SKIP_WITHOUT_KVM();
    // The shell's next read reaches the new TTY through DS. (Input typed ahead while TTY
    // is killed is lost with it: the next line is typed once rstest has finished.)
    const ProcessResult r =
        run_ukvm("rstest tty\n", {{"passed, ", "echo after the restart\npoweroff\n"}});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("rs: tty restarted: endpoint 131075, generation 2"));
    EXPECT_THAT(r.out, HasSubstr("\n10 passed, 0 failed\n")) << describe(r);
    EXPECT_TRUE(has_line(r.out, "after the restart")) << describe(r);
}

TEST_F(MinixBoot, SignalsHandlersDefaultsAndWait) {
    SKIP_WITHOUT_KVM();
    // sigtest: handlers, dispositions, EINTR, SIGCHLD, fork (in the guest); then a
    // service ended by SIGTERM through the shell's kill is restarted by RS.
    const ProcessResult r = run_ukvm("sigtest\nkill -TERM 2\nkill -BOGUS 2\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n27 passed, 0 failed\n")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
    EXPECT_THAT(r.out, HasSubstr("rs: ds (endpoint 65537, generation 1) was killed (signal 15)"))
        << describe(r);
    EXPECT_THAT(r.out, HasSubstr("usage: kill [-SIGNAL] PID")) << describe(r);
}

TEST_F(MinixBoot, CtrlCInterruptsTheForegroundProgramNotTheShell) {
    SKIP_WITHOUT_KVM();
    // ^C while a program sleeps (SIGINT's default ends it); while a program with a handler
    // reads the console (its read says EINTR); at the prompt (a new prompt). Input typed
    // ahead of a reading program is what it reads. ^C goes out a little after the reader's
    // message, once it waits in its read: a signal that comes before the read only runs
    // the handler, and the read then waits for input (POSIX has the same window).
    using namespace std::chrono_literals;
    const ProcessResult r =
        run_ukvm("sigtest read\ntyped ahead\nsigtest sleep\n",
                 {{"^C ends me", "\x03"},
                  {"killed by signal 2 (INT)", "sigtest read\n"},
                  {"^C interrupts", "\x03", 500ms},
                  {"read interrupted by signal 2\n" + std::string(kPrompt), "\x03", 500ms},
                  {"^C\n" + std::string(kPrompt), "echo still here\npoweroff\n"}});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(has_line(r.out, "sigtest: read 'typed ahead'")) << describe(r);
    EXPECT_TRUE(has_line_matching(r.out, "\\[[0-9]+\\] sigtest: killed by signal 2 \\(INT\\)"))
        << describe(r);
    EXPECT_TRUE(has_line(r.out, "sigtest: read interrupted by signal 2")) << describe(r);
    EXPECT_TRUE(has_line(r.out, "still here")) << describe(r);
    EXPECT_EQ(count(r.out, "; type help for the commands"), 1u) << describe(r);  // same shell
    // The input after boot came through the virtio-console (configs/minix.toml enables it):
    // vcons wrote this through its transmitq, and the VMM routes input to a driven device.
    EXPECT_THAT(r.out,
                HasSubstr("vcons: console input and output now go through virtio-console\n"));
}

TEST_F(MinixBoot, RsKillsAndRestartsAHungService) {
    SKIP_WITHOUT_KVM();
    ASSERT_TRUE(add_rs_args(config_, "hang"));  // answers one heartbeat, then blocks for good
    const ProcessResult r = run_ukvm("sleep 8000\nps\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("hang: hanging now\n"));
    // hang runs in the slot after RS's table of services: endpoint 0x10000 + slot, then
    // 0x20000 + slot for its second generation.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        r.out, m,
        std::regex("rs: hang \\(endpoint (6553[6-9]|655[4-9][0-9])\\) does not answer; "
                   "killing it\n")))
        << describe(r);
    const int slot = std::stoi(m[1]) - 65536;
    const std::string second = std::to_string(2 * 65536 + slot);
    EXPECT_THAT(r.out,
                HasSubstr("rs: hang restarted: endpoint " + second + ", generation 2 (restart 1)"))
        << describe(r);
    EXPECT_TRUE(has_line_matching(
        r.out, " *[0-9]+ +[0-9]+ +" + second + " +" + std::to_string(slot) + " +2 system .* hang"))
        << describe(r);
}

TEST_F(MinixBoot, IsolationRefusesAndTheSystemKeepsRunning) {
    SKIP_WITHOUT_KVM();
    const ProcessResult r = run_ukvm(
        "isolate calls\nisolate kernel\nisolate phys\nisolate write-text\necho alive\n"
        "poweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n15 passed, 0 failed\n")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
    EXPECT_EQ(count(r.out, "isolate: killed by a fault (vector 14)"), 3u) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("cr2 100000"));   // the kernel image
    EXPECT_THAT(r.out, HasSubstr("cr2 2000000"));  // another process's frames
    EXPECT_THAT(r.out, Not(HasSubstr("must not get here")));
    EXPECT_TRUE(has_line(r.out, "alive")) << describe(r);
}

TEST_F(MinixBoot, InitStartsANewShellWhenOneExits) {
    SKIP_WITHOUT_KVM();
    const ProcessResult r = run_ukvm("exit 3\necho again\nnosuch\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(has_line_matching(r.out,
                                  "init: sh \\(pid [0-9]+\\) ended \\(reason 0, 3\\); "
                                  "starting another"))
        << describe(r);
    EXPECT_EQ(count(r.out, "; type help for the commands"), 2u) << describe(r);
    EXPECT_TRUE(has_line(r.out, "again")) << describe(r);
    EXPECT_TRUE(has_line(r.out, "nosuch: command not found (try help)")) << describe(r);
}

TEST_F(MinixBoot, ForkCopiesTheCallerAndWaitCollectsTheChild) {
    SKIP_WITHOUT_KVM();
    const ProcessResult r = run_ukvm("forktest\nforktest\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(count(r.out, "\n7 passed, 0 failed\n"), 2u) << describe(r);
    EXPECT_TRUE(has_line_matching(r.out, "forktest: exec'd as pid [0-9]+, exiting with 42"))
        << describe(r);
    EXPECT_TRUE(has_line_matching(r.out, "forktest: child pid [0-9]+, parent [0-9]+"))
        << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
}

TEST_F(MinixBoot, SameImageReachesThePromptOnQemu) {
    SKIP_WITHOUT_KVM();
    const fs::path qemu = find_program("qemu-system-x86_64");
    if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
    const ProcessResult r = run_minix_qemu(qemu, config_, "echo on qemu\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (0 << 1) | 1) << describe(r);  // isa-debug-exit: (status << 1) | 1
    EXPECT_THAT(r.out, HasSubstr("no ukvm VMM (UART console)"));
    EXPECT_THAT(r.out, HasSubstr(kPrompt)) << describe(r);
    EXPECT_TRUE(has_line(r.out, "on qemu")) << describe(r);
}

}  // namespace
