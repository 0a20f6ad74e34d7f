// `ukvm ps`, `ukvm start NAME`, `ukvm stop [--force] NAME`: ukvmd's guests from the ukvm
// command line, through the daemon's libvirt socket. Return the process exit status.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

namespace ukvm::ukvmd {

// ukvmd's read-write socket unless --socket says otherwise.
inline constexpr const char* kDefaultUkvmdSocket = "/var/run/libvirt/virtukvmd-sock";

int cli_ps(const std::filesystem::path& socket, std::ostream& out, std::ostream& err);
int cli_start(const std::filesystem::path& socket, const std::string& name, std::ostream& out,
              std::ostream& err);
// Shutdown (today SIGTERM to the guest's ukvm), or with force an immediate destroy.
int cli_stop(const std::filesystem::path& socket, const std::string& name, bool force,
             std::ostream& out, std::ostream& err);

}  // namespace ukvm::ukvmd
