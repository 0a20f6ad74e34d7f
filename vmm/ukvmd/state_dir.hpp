// ukvmd's state directory: what survives a daemon restart.
//
//   DIR/domains/NAME.xml        the definition (domain XML as dumpxml prints it, uuid included)
//   DIR/domains/NAME.autostart  present when the domain starts with the daemon
//   DIR/run/NAME.toml           the guest.toml the running ukvm process was started with
//   DIR/run/NAME.pid            "PID STARTTIME LOGOFFSET" of that process (to find it again)
//   DIR/run/NAME.exit           "REASON how it ended" of the last run (survives restarts)
//   DIR/run/NAME.sock           the running guest's control socket (docs/control-api.md)
//   DIR/logs/NAME.log           console output and ukvm's messages, appended run after run
//
// Every file is replaced atomically (temporary, fsync, rename, fsync of the directory),
// so a crash leaves the old or the new version, never a torn one.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ukvm::ukvmd {

class StateDir {
public:
    // Creates the directory tree (mode 0700: definitions name files the daemon will run).
    explicit StateDir(std::filesystem::path root);

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path definition(std::string_view name) const;
    std::filesystem::path autostart_flag(std::string_view name) const;
    std::filesystem::path run_config(std::string_view name) const;
    std::filesystem::path pid_file(std::string_view name) const;
    std::filesystem::path exit_file(std::string_view name) const;
    std::filesystem::path control_socket(std::string_view name) const;
    std::filesystem::path log(std::string_view name) const;

    // Names of the domains with a definition file, sorted.
    std::vector<std::string> defined_names() const;

private:
    std::filesystem::path root_;
};

// Replaces `path` with `data` atomically; throws std::system_error naming the step.
void write_file_atomically(const std::filesystem::path& path, std::string_view data);
// The whole file, or nothing if it does not exist; throws on other errors.
std::optional<std::string> read_small_file(const std::filesystem::path& path);
// Removes a file if present (and syncs the directory); throws on errors other than ENOENT.
void remove_file(const std::filesystem::path& path);

}  // namespace ukvm::ukvmd
