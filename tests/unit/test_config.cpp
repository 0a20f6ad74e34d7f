// load_config: a good config, the defaults, and every mistake a user can make, each
// reported with the file, line, column and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "vmm/config.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ukvm::ConfigError;
using ukvm::ConsoleInput;
using ukvm::ConsoleOutput;
using ukvm::derived_mac;
using ukvm::GuestConfig;
using ukvm::HostForward;
using ukvm::load_config;
using ukvm::MacAddress;
using ukvm::NetBackendKind;

// Each test gets its own directory with a dummy kernel and two dummy modules in it.
class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("ukvm-test-config-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(counter++) + "-" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        // Readable by the unprivileged user the permission tests switch to.
        fs::permissions(dir_, fs::perms(0755));
        write("kernel.bin", "kernel");
        write("a.bin", "module a");
        write("b.bin", "module b");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }

    // Writes guest.toml and loads it, expecting a ConfigError; returns its message.
    std::string error_of(const std::string& toml) {
        const fs::path p = write("guest.toml", toml);
        try {
            load_config(p);
        } catch (const ConfigError& e) {
            return e.what();
        }
        ADD_FAILURE() << "no ConfigError for:\n" << toml;
        return {};
    }

    // "FILE:LINE:COL: KEY: " for guest.toml, the start of every positioned message.
    std::string at(int line, int column, const std::string& key) const {
        return (dir_ / "guest.toml").string() + ":" + std::to_string(line) + ":" +
               std::to_string(column) + ": " + key + ": ";
    }

    fs::path dir_;
};

constexpr const char* kMinimal = "name = \"g\"\nkernel = \"kernel.bin\"\n";

TEST_F(ConfigTest, FullConfig) {
    const fs::path file = write("guest.toml", R"(name = "hello_1.2-x"
memory = 256
vcpus = 1
kernel = "kernel.bin"
cmdline = "console=hvc verbose=2"

[[module]]
path = "a.bin"
args = "pm --trace"

[[module]]
path = "./sub/../b.bin"

[console]
output = "file"
file = "out/console.log"
input = "stdin"
)");
    fs::create_directory(dir_ / "out");
    const GuestConfig c = load_config(file);
    EXPECT_EQ(c.source, file);
    EXPECT_EQ(c.name, "hello_1.2-x");
    EXPECT_EQ(c.memory_mib, 256u);
    EXPECT_EQ(c.vcpus, 1u);
    EXPECT_EQ(c.kernel, dir_ / "kernel.bin");
    EXPECT_EQ(c.cmdline, "console=hvc verbose=2");
    ASSERT_EQ(c.modules.size(), 2u);
    EXPECT_EQ(c.modules[0].path, dir_ / "a.bin");
    EXPECT_EQ(c.modules[0].args, "pm --trace");
    EXPECT_EQ(c.modules[1].path, dir_ / "b.bin");
    EXPECT_EQ(c.modules[1].args, "");
    EXPECT_EQ(c.console.output, ConsoleOutput::File);
    EXPECT_EQ(c.console.file, dir_ / "out" / "console.log");
    EXPECT_EQ(c.console.input, ConsoleInput::Stdin);
}

TEST_F(ConfigTest, Defaults) {
    const GuestConfig c = load_config(write("guest.toml", kMinimal));
    EXPECT_EQ(c.name, "g");
    EXPECT_EQ(c.memory_mib, 64u);
    EXPECT_EQ(c.vcpus, 1u);
    EXPECT_EQ(c.cmdline, "");
    EXPECT_TRUE(c.modules.empty());
    EXPECT_EQ(c.console.output, ConsoleOutput::Stdout);
    EXPECT_EQ(c.console.input, ConsoleInput::Auto);
    EXPECT_TRUE(c.console.file.empty());
}

TEST_F(ConfigTest, ConsoleChoices) {
    const GuestConfig c = load_config(write(
        "guest.toml", std::string(kMinimal) + "[console]\noutput = \"null\"\ninput = \"none\"\n"));
    EXPECT_EQ(c.console.output, ConsoleOutput::Null);
    EXPECT_EQ(c.console.input, ConsoleInput::None);
    // Dotted keys are the same table in TOML.
    const GuestConfig d =
        load_config(write("guest.toml", std::string(kMinimal) + "console.input = \"auto\"\n"));
    EXPECT_EQ(d.console.input, ConsoleInput::Auto);
    EXPECT_FALSE(d.console.virtio);
    const GuestConfig v =
        load_config(write("guest.toml", std::string(kMinimal) + "console.virtio = true\n"));
    EXPECT_TRUE(v.console.virtio);
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\nvirtio = \"yes\"\n"),
              at(4, 10, "console.virtio") + "expected a boolean, got a string");
}

TEST_F(ConfigTest, ShippedSamplesAreValid) {
    const fs::path data = UKVM_TEST_DATA_DIR;
    const GuestConfig full = load_config(data / "full.toml");
    EXPECT_EQ(full.name, "full-guest_1.0");
    EXPECT_EQ(full.modules.size(), 2u);
    EXPECT_EQ(full.kernel, (data / "kernel.bin").lexically_normal());
    EXPECT_EQ(load_config(data / "minimal.toml").name, "minimal");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
    write("sub/kernel.bin", "another kernel");
    write("sub/guest.toml", kMinimal);
    const fs::path abs_kernel = dir_ / "a.bin";
    write("sub/abs.toml", "name = \"g\"\nkernel = \"" + abs_kernel.string() + "\"\n");

    // Loaded through a relative path from elsewhere: still the config's directory.
    const fs::path cwd = fs::current_path();
    fs::current_path(dir_);
    GuestConfig c;
    EXPECT_NO_THROW(c = load_config("sub/guest.toml"));
    fs::current_path(cwd);
    EXPECT_EQ(c.kernel, dir_ / "sub" / "kernel.bin");
    EXPECT_TRUE(c.kernel.is_absolute());

    EXPECT_EQ(load_config(dir_ / "sub" / "abs.toml").kernel, abs_kernel);
}

TEST_F(ConfigTest, SyntaxErrorHasPosition) {
    const std::string msg = error_of("name = \"g\"\nmemory = [1,\n");
    EXPECT_THAT(msg, StartsWith((dir_ / "guest.toml").string() + ":2:"));
    EXPECT_THAT(msg, HasSubstr("TOML syntax error"));

    const std::string dup = error_of("name = \"g\"\nname = \"h\"\n");
    EXPECT_THAT(dup, StartsWith((dir_ / "guest.toml").string() + ":2:"));
    EXPECT_THAT(dup, HasSubstr("TOML syntax error"));
}

TEST_F(ConfigTest, UnknownKeys) {
    EXPECT_EQ(error_of(std::string(kMinimal) + "\nmemroy = 64\n"),
              at(4, 1, "memroy") + "unknown key");
    // The first one in the file is named, whichever way the table sorts them.
    EXPECT_EQ(error_of("zz = 1\nname = \"g\"\naa = 2\nkernel = \"kernel.bin\"\n"),
              at(1, 1, "zz") + "unknown key");
    EXPECT_EQ(error_of(std::string(kMinimal) +
                       "[[module]]\npath = \"a.bin\"\n[[module]]\npath = \"b.bin\"\n  pth = 1\n"),
              at(7, 3, "module[1].pth") + "unknown key");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\noutput = \"stdout\"\ncolour = true\n"),
              at(5, 1, "console.colour") + "unknown key");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console.extra]\nx = 1\n"),
              at(3, 10, "console.extra") + "unknown key");
}

TEST_F(ConfigTest, WrongTypes) {
    EXPECT_EQ(error_of("name = \"g\"\nkernel = \"kernel.bin\"\nmemory = \"64\"\n"),
              at(3, 10, "memory") + "expected an integer, got a string");
    EXPECT_EQ(error_of(std::string(kMinimal) + "memory = 64.0\n"),
              at(3, 10, "memory") + "expected an integer, got a float");
    EXPECT_EQ(error_of(std::string(kMinimal) + "vcpus = true\n"),
              at(3, 9, "vcpus") + "expected an integer, got a boolean");
    EXPECT_EQ(error_of("name = 7\nkernel = \"kernel.bin\"\n"),
              at(1, 8, "name") + "expected a string, got an integer");
    EXPECT_EQ(error_of("name = \"g\"\nkernel = [\"kernel.bin\"]\n"),
              at(2, 10, "kernel") + "expected a string, got an array");
    EXPECT_EQ(error_of(std::string(kMinimal) + "cmdline = 1979-05-27\n"),
              at(3, 11, "cmdline") + "expected a string, got a date");
    EXPECT_EQ(error_of(std::string(kMinimal) + "module = \"a.bin\"\n"),
              at(3, 10, "module") + "expected an array of tables ([[module]]), got a string");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[module]\npath = \"a.bin\"\n"),
              at(3, 1, "module") + "expected an array of tables ([[module]]), got a table");
    EXPECT_EQ(error_of(std::string(kMinimal) + "module = [\"a.bin\"]\n"),
              at(3, 11, "module[0]") + "expected a table, got a string");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[[module]]\npath = \"a.bin\"\nargs = 3\n"),
              at(5, 8, "module[0].args") + "expected a string, got an integer");
    EXPECT_EQ(error_of(std::string(kMinimal) + "console = \"stdout\"\n"),
              at(3, 11, "console") + "expected a table, got a string");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\noutput = 1\n"),
              at(4, 10, "console.output") + "expected a string, got an integer");
}

TEST_F(ConfigTest, MissingRequiredKeysPointAtTheirTable) {
    EXPECT_EQ(error_of("kernel = \"kernel.bin\"\n"), at(1, 1, "name") + "required key is missing");
    EXPECT_EQ(error_of("name = \"g\"\n"), at(1, 1, "kernel") + "required key is missing");
    EXPECT_EQ(error_of(""), at(1, 1, "name") + "required key is missing");
    EXPECT_EQ(error_of(std::string(kMinimal) +
                       "[[module]]\npath = \"a.bin\"\n\n[[module]]\nargs = \"x\"\n"),
              at(6, 1, "module[1].path") + "required key is missing");
    EXPECT_EQ(error_of(std::string(kMinimal) + "\n[console]\noutput = \"file\"\n"),
              at(4, 1, "console.file") + "required when console.output = \"file\"");
}

TEST_F(ConfigTest, OutOfRangeValues) {
    EXPECT_EQ(error_of(std::string(kMinimal) + "memory = 1\n"),
              at(3, 10, "memory") + "1 MiB is out of range (2..65536 MiB)");
    EXPECT_EQ(error_of(std::string(kMinimal) + "memory = 65537\n"),
              at(3, 10, "memory") + "65537 MiB is out of range (2..65536 MiB)");
    EXPECT_EQ(error_of(std::string(kMinimal) + "memory = -64\n"),
              at(3, 10, "memory") + "-64 MiB is out of range (2..65536 MiB)");
    EXPECT_EQ(load_config(write("guest.toml", std::string(kMinimal) + "memory = 2\n")).memory_mib,
              2u);
    EXPECT_EQ(
        load_config(write("guest.toml", std::string(kMinimal) + "memory = 65536\n")).memory_mib,
        65536u);
    EXPECT_EQ(error_of(std::string(kMinimal) + "vcpus = 2\n"),
              at(3, 9, "vcpus") + "only 1 vCPU is supported for now, got 2");
    EXPECT_EQ(error_of(std::string(kMinimal) + "vcpus = 0\n"),
              at(3, 9, "vcpus") + "only 1 vCPU is supported for now, got 0");
}

TEST_F(ConfigTest, BadNames) {
    EXPECT_EQ(error_of("name = \"\"\nkernel = \"kernel.bin\"\n"),
              at(1, 8, "name") + "must not be empty");
    EXPECT_EQ(error_of("name = \"hello world\"\nkernel = \"kernel.bin\"\n"),
              at(1, 8, "name") + "contains ' '; only A-Z a-z 0-9 _ . - are allowed");
    EXPECT_EQ(error_of("name = \"a/b\"\nkernel = \"kernel.bin\"\n"),
              at(1, 8, "name") + "contains '/'; only A-Z a-z 0-9 _ . - are allowed");
    EXPECT_EQ(error_of("name = \"" + std::string(65, 'n') + "\"\nkernel = \"kernel.bin\"\n"),
              at(1, 8, "name") + "is 65 characters long, the limit is 64");
    EXPECT_EQ(load_config(write("guest.toml", "name = \"" + std::string(64, 'n') +
                                                  "\"\nkernel = \"kernel.bin\"\n"))
                  .name.size(),
              64u);
}

TEST_F(ConfigTest, EmptyPaths) {
    EXPECT_EQ(error_of("name = \"g\"\nkernel = \"\"\n"),
              at(2, 10, "kernel") + "must not be empty (a file path is required)");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[[module]]\npath = \"\"\n"),
              at(4, 8, "module[0].path") + "must not be empty (a file path is required)");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\noutput = \"file\"\nfile = \"\"\n"),
              at(5, 8, "console.file") + "must not be empty (a file path is required)");
}

TEST_F(ConfigTest, MissingFiles) {
    EXPECT_EQ(error_of("name = \"g\"\nkernel = \"nope.bin\"\n"),
              at(2, 10, "kernel") + "file '" + (dir_ / "nope.bin").string() + "' does not exist");
    EXPECT_EQ(error_of(std::string(kMinimal) +
                       "[[module]]\npath = \"a.bin\"\n[[module]]\npath = \"gone/b.bin\"\n"),
              at(6, 8, "module[1].path") + "file '" + (dir_ / "gone/b.bin").string() +
                  "' does not exist");
}

TEST_F(ConfigTest, FilesThatAreNotRegular) {
    fs::create_directory(dir_ / "kdir");
    EXPECT_EQ(
        error_of("name = \"g\"\nkernel = \"kdir\"\n"),
        at(2, 10, "kernel") + "'" + (dir_ / "kdir").string() + "' is a directory, not a file");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[[module]]\npath = \"/dev/null\"\n"),
              at(4, 8, "module[0].path") + "'/dev/null' is not a regular file");
}

// The root-run permission tests switch to user nobody, who must be able to reach `dir`.
bool others_can_reach(const fs::path& dir) {
    for (fs::path p = dir; p != p.root_path(); p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    }
    return true;
}

// Runs load_config where file permissions apply: as root (which may read and write
// everything) in a child switched to user nobody, otherwise directly. Returns the error.
std::string error_as_unprivileged(const fs::path& config) {
    if (::geteuid() != 0) {
        try {
            load_config(config);
        } catch (const ConfigError& e) {
            return e.what();
        }
        return "(no error)";
    }
    int fds[2];
    if (::pipe(fds) != 0) return "(pipe failed)";
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        std::string result = "(no error)";
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
            result = "(cannot switch to user nobody)";
        } else {
            try {
                load_config(config);
            } catch (const std::exception& e) {
                result = e.what();
            }
        }
        (void)!::write(fds[1], result.data(), result.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string result;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) result.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    return result;
}

TEST_F(ConfigTest, UnreadableKernel) {
    if (::geteuid() == 0 && !others_can_reach(dir_)) {
        GTEST_SKIP() << "running as root and user nobody cannot reach " << dir_;
    }
    const fs::path config = write("guest.toml", kMinimal);
    fs::permissions(config, fs::perms(0644));
    fs::permissions(dir_ / "kernel.bin", fs::perms::none);
    EXPECT_EQ(error_as_unprivileged(config), at(2, 10, "kernel") + "file '" +
                                                 (dir_ / "kernel.bin").string() +
                                                 "' is not readable: Permission denied");
}

TEST_F(ConfigTest, UnreadableConfig) {
    if (::geteuid() == 0 && !others_can_reach(dir_)) {
        GTEST_SKIP() << "running as root and user nobody cannot reach " << dir_;
    }
    const fs::path config = write("guest.toml", kMinimal);
    fs::permissions(config, fs::perms::none);
    EXPECT_EQ(error_as_unprivileged(config),
              config.string() + ": cannot read config file: Permission denied");
}

TEST_F(ConfigTest, UnwritableConsoleFile) {
    if (::geteuid() == 0 && !others_can_reach(dir_)) {
        GTEST_SKIP() << "running as root and user nobody cannot reach " << dir_;
    }
    const std::string console = std::string(kMinimal) + "[console]\noutput = \"file\"\n";
    write("ro/existing.log", "");
    fs::permissions(dir_ / "ro", fs::perms(0555));
    fs::permissions(dir_ / "ro" / "existing.log", fs::perms(0444));
    const fs::path config = write("guest.toml", console + "file = \"ro/new.log\"\n");
    fs::permissions(config, fs::perms(0644));
    EXPECT_EQ(error_as_unprivileged(config), at(5, 8, "console.file") +
                                                 "cannot create a file in '" +
                                                 (dir_ / "ro").string() + "': Permission denied");
    write("guest.toml", console + "file = \"ro/existing.log\"\n");
    EXPECT_EQ(error_as_unprivileged(config), at(5, 8, "console.file") + "file '" +
                                                 (dir_ / "ro" / "existing.log").string() +
                                                 "' is not writable: Permission denied");
    fs::permissions(dir_ / "ro", fs::perms(0755));  // so that TearDown can remove it
}

TEST_F(ConfigTest, MissingOrOddConfigFile) {
    const fs::path missing = dir_ / "missing.toml";
    try {
        load_config(missing);
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), missing.string() + ": config file does not exist");
    }
    try {
        load_config(dir_);
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), dir_.string() + ": config is not a regular file");
    }
    try {
        load_config("");
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "the config file path is empty");
    }
    // A FIFO must be refused, not waited on for a writer that never comes.
    const fs::path fifo = dir_ / "fifo.toml";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    try {
        load_config(fifo);
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), fifo.string() + ": config is not a regular file");
    }
    EXPECT_EQ(error_of("name = \"g\"\nkernel = \"fifo.toml\"\n"),
              at(2, 10, "kernel") + "'" + fifo.string() + "' is not a regular file");
}

TEST_F(ConfigTest, ConsoleFile) {
    const std::string console = std::string(kMinimal) + "[console]\noutput = \"file\"\n";
    EXPECT_EQ(
        error_of(console + "file = \"logs/console.log\"\n"),
        at(5, 8, "console.file") + "directory '" + (dir_ / "logs").string() + "' does not exist");
    EXPECT_EQ(
        error_of(console + "file = \"kernel.bin/console.log\"\n"),
        at(5, 8, "console.file") + "'" + (dir_ / "kernel.bin").string() + "' is not a directory");
    fs::create_directory(dir_ / "logs");
    EXPECT_EQ(error_of(console + "file = \"logs\"\n"),
              at(5, 8, "console.file") + "'" + (dir_ / "logs").string() + "' is a directory");
    // Need not exist yet; an existing file is fine too.
    EXPECT_EQ(load_config(write("guest.toml", console + "file = \"logs/c.log\"\n")).console.file,
              dir_ / "logs" / "c.log");
    EXPECT_EQ(load_config(write("guest.toml", console + "file = \"a.bin\"\n")).console.file,
              dir_ / "a.bin");

    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\nfile = \"c.log\"\n"),
              at(4, 8, "console.file") + "only allowed when console.output = \"file\"");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\noutput = \"stderr\"\n"),
              at(4, 10, "console.output") +
                  "expected one of \"stdout\", \"file\", \"null\", \"socket\", got \"stderr\"");
    EXPECT_EQ(
        error_of(std::string(kMinimal) + "[console]\ninput = \"tty\"\n"),
        at(4, 9, "console.input") + "expected one of \"auto\", \"stdin\", \"none\", got \"tty\"");
}

TEST_F(ConfigTest, ApiAndConsoleSockets) {
    const GuestConfig c = load_config(
        write("guest.toml", std::string(kMinimal) +
                                "api_socket = \"api.sock\"\n[console]\noutput = \"socket\"\n"
                                "socket = \"console.sock\"\n"));
    EXPECT_EQ(c.api_socket, dir_ / "api.sock");
    EXPECT_EQ(c.console.output, ConsoleOutput::Socket);
    EXPECT_EQ(c.console.socket, dir_ / "console.sock");
    EXPECT_TRUE(load_config(write("guest.toml", kMinimal)).api_socket.empty());
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\noutput = \"socket\"\n"),
              at(3, 1, "console.socket") + "required when console.output = \"socket\"");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[console]\nsocket = \"c.sock\"\n"),
              at(4, 10, "console.socket") + "only allowed when console.output = \"socket\"");
    const std::string long_name(120, 's');
    EXPECT_THAT(error_of(std::string(kMinimal) + "api_socket = \"" + long_name + "\"\n"),
                testing::HasSubstr("bytes (a unix socket path's limit)"));
    EXPECT_THAT(error_of(std::string(kMinimal) + "api_socket = \"nodir/a.sock\"\n"),
                testing::HasSubstr("api_socket: directory"));
}

TEST_F(ConfigTest, LengthAndCountLimits) {
    const std::string ok_cmdline =
        std::string(kMinimal) + "cmdline = \"" + std::string(4096, 'c') + "\"\n";
    EXPECT_EQ(load_config(write("guest.toml", ok_cmdline)).cmdline.size(), 4096u);
    EXPECT_EQ(error_of(std::string(kMinimal) + "cmdline = \"" + std::string(4097, 'c') + "\"\n"),
              at(3, 11, "cmdline") + "is 4097 bytes long, the limit is 4096");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[[module]]\npath = \"a.bin\"\nargs = \"" +
                       std::string(4097, 'a') + "\"\n"),
              at(5, 8, "module[0].args") + "is 4097 bytes long, the limit is 4096");
    EXPECT_EQ(error_of(std::string(kMinimal) + "cmdline = \"a\\u0000b\"\n"),
              at(3, 11, "cmdline") + "must not contain a NUL character");

    auto modules = [](int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s += "[[module]]\npath = \"a.bin\"\n";
        return s;
    };
    EXPECT_EQ(load_config(write("guest.toml", std::string(kMinimal) + modules(64))).modules.size(),
              64u);
    EXPECT_EQ(error_of(std::string(kMinimal) + modules(65)),
              at(3, 1, "module") + "65 modules given, the limit is 64");
}

TEST_F(ConfigTest, Nets) {
    const GuestConfig config = load_config(write("guest.toml", std::string(kMinimal) + R"(
[[net]]
backend = "switch"
switch = "lan0"
[[net]]
backend = "user"
hostfwd = ["tcp:8080-:80", "udp:0.0.0.0:5353-10.0.2.16:53"]
mac = "52:54:00:12:34:56"
[[net]]
backend = "tap"
ifname = "tap0"
)"));
    ASSERT_EQ(config.nets.size(), 3u);
    EXPECT_EQ(config.nets[0].backend, NetBackendKind::Switch);
    EXPECT_EQ(config.nets[0].switch_name, "lan0");
    // Derived: locally administered unicast, stable, different per index.
    EXPECT_EQ(config.nets[0].mac, derived_mac(config.name, 0));
    EXPECT_EQ(config.nets[0].mac[0] & 3, 2);
    EXPECT_NE(derived_mac(config.name, 0), derived_mac(config.name, 1));
    EXPECT_NE(derived_mac("a", 0), derived_mac("b", 0));
    EXPECT_EQ((MacAddress{0x52, 0x54, 0, 0x12, 0x34, 0x56}), config.nets[1].mac);
    ASSERT_EQ(config.nets[1].hostfwd.size(), 2u);
    const HostForward& tcp = config.nets[1].hostfwd[0];
    EXPECT_FALSE(tcp.udp);
    EXPECT_EQ(tcp.host_addr, 0x7F000001u);
    EXPECT_EQ(tcp.host_port, 8080);
    EXPECT_EQ(tcp.guest_addr, 0u);
    EXPECT_EQ(tcp.guest_port, 80);
    const HostForward& udp = config.nets[1].hostfwd[1];
    EXPECT_TRUE(udp.udp);
    EXPECT_EQ(udp.host_addr, 0u);
    EXPECT_EQ(udp.guest_addr, 0x0A000210u);
    EXPECT_EQ(udp.guest_port, 53);
    EXPECT_EQ(config.nets[2].ifname, "tap0");

    EXPECT_EQ(error_of(std::string(kMinimal) + "[[net]]\ntap = \"tap0\"\n"),
              at(4, 1, "net[0].tap") + "unknown key");
    EXPECT_EQ(error_of(std::string(kMinimal) + "[[net]]\nbackend = \"tap\"\nswitch = \"x\"\n"),
              at(5, 10, "net[0].switch") + "only allowed with backend = \"switch\"");
    std::string many = kMinimal;
    for (int i = 0; i < 9; ++i) many += "[[net]]\nbackend = \"user\"\n";
    EXPECT_EQ(error_of(many),
              at(3, 1, "net") + "0 disks and 9 NICs given, the limit is 8 virtio devices together");
}

TEST_F(ConfigTest, Disks) {
    write("disk.img", std::string(1024, '\0'));
    write("ro.img", std::string(512, '\0'));
    const GuestConfig config = load_config(write("guest.toml", std::string(kMinimal) + R"(
[[disk]]
path = "disk.img"
serial = "ukvm-disk-0"

[[disk]]
path = "ro.img"
read_only = true
)"));
    ASSERT_EQ(config.disks.size(), 2u);
    EXPECT_EQ(config.disks[0].path, dir_ / "disk.img");
    EXPECT_FALSE(config.disks[0].read_only);
    EXPECT_EQ(config.disks[0].serial, "ukvm-disk-0");
    EXPECT_EQ(config.disks[1].path, dir_ / "ro.img");
    EXPECT_TRUE(config.disks[1].read_only);
    EXPECT_EQ(config.disks[1].serial, "");
    EXPECT_TRUE(load_config(write("guest.toml", kMinimal)).disks.empty());
}

TEST_F(ConfigTest, DiskMistakes) {
    write("disk.img", std::string(512, '\0'));
    const std::string d = std::string(kMinimal) + "[[disk]]\n";
    EXPECT_EQ(error_of(d + "read_only = true\n"),
              at(3, 1, "disk[0].path") + "required key is missing");
    EXPECT_EQ(error_of(d + "path = \"none.img\"\n"), at(4, 8, "disk[0].path") + "disk image '" +
                                                         (dir_ / "none.img").string() +
                                                         "' does not exist");
    fs::create_directory(dir_ / "ddir");
    EXPECT_EQ(error_of(d + "path = \"ddir\"\n"), at(4, 8, "disk[0].path") + "'" +
                                                     (dir_ / "ddir").string() +
                                                     "' is a directory, not a disk image");
    EXPECT_EQ(error_of(d + "path = \"/dev/null\"\n"),
              at(4, 8, "disk[0].path") + "'/dev/null' is not a regular file or block device");
    EXPECT_EQ(error_of(d + "path = \"\"\n"),
              at(4, 8, "disk[0].path") + "must not be empty (a file path is required)");
    EXPECT_EQ(error_of(d + "path = \"disk.img\"\nread_only = \"yes\"\n"),
              at(5, 13, "disk[0].read_only") + "expected a boolean, got a string");
    EXPECT_EQ(error_of(d + "path = \"disk.img\"\nserial = \"" + std::string(21, 's') + "\"\n"),
              at(5, 10, "disk[0].serial") + "is 21 bytes long, the limit is 20");
    EXPECT_EQ(error_of(d + "path = \"disk.img\"\nserial = \"tab\\there\"\n"),
              at(5, 10, "disk[0].serial") + "may only contain printable ASCII characters");
    EXPECT_EQ(error_of(d + "path = \"disk.img\"\nsize = 5\n"),
              at(5, 1, "disk[0].size") + "unknown key");
    EXPECT_EQ(
        error_of(d + "path = \"disk.img\"\n[[disk]]\npath = \"./disk.img\"\n"),
        at(6, 8, "disk[1].path") + "'" + (dir_ / "disk.img").string() + "' is already disk[0]");
    EXPECT_EQ(error_of(std::string(kMinimal) + "disk = \"disk.img\"\n"),
              at(3, 8, "disk") + "expected an array of tables ([[disk]]), got a string");
    std::string nine = kMinimal;
    for (int i = 0; i < 9; ++i) {
        write("d" + std::to_string(i) + ".img", "x");
        nine += "[[disk]]\npath = \"d" + std::to_string(i) + ".img\"\n";
    }
    EXPECT_EQ(error_of(nine), at(3, 1, "disk") + "9 disks given, the limit is 8");
}

TEST_F(ConfigTest, DiskPermissions) {
    if (::geteuid() == 0 && !others_can_reach(dir_)) {
        GTEST_SKIP() << "running as root and user nobody cannot reach " << dir_;
    }
    write("ro.img", std::string(512, '\0'));
    fs::permissions(dir_ / "ro.img", fs::perms(0444));
    fs::permissions(dir_ / "kernel.bin", fs::perms(0644));
    const std::string d = std::string(kMinimal) + "[[disk]]\npath = \"ro.img\"\n";
    fs::path config = write("guest.toml", d);
    fs::permissions(config, fs::perms(0644));
    EXPECT_EQ(error_as_unprivileged(config),
              at(4, 8, "disk[0].path") + "disk image '" + (dir_ / "ro.img").string() +
                  "' is not writable: Permission denied (set read_only = true to use it "
                  "read-only)");
    config = write("guest.toml", d + "read_only = true\n");
    fs::permissions(config, fs::perms(0644));
    EXPECT_EQ(error_as_unprivileged(config), "(no error)");
    fs::permissions(dir_ / "ro.img", fs::perms::none);
    EXPECT_EQ(error_as_unprivileged(config), at(4, 8, "disk[0].path") + "disk image '" +
                                                 (dir_ / "ro.img").string() +
                                                 "' is not readable: Permission denied");
}

}  // namespace
