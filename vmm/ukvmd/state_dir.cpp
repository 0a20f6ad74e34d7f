#include "vmm/ukvmd/state_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "vmm/kvm.hpp"

namespace ukvm::ukvmd {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
    throw std::system_error(err, std::generic_category(), what + " " + path.string());
}

void sync_directory(const fs::path& dir) {
    const Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) fail("open directory", dir, errno);
    if (::fsync(fd.get()) != 0) fail("fsync directory", dir, errno);
}

void make_dir(const fs::path& dir, mode_t mode) {
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) fail("mkdir", dir, errno);
}

constexpr std::size_t kMaxStateFileBytes = 8 * 1024 * 1024;

}  // namespace

StateDir::StateDir(fs::path root) : root_(fs::absolute(std::move(root)).lexically_normal()) {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw std::system_error(ec, "create state directory " + root_.string());
    for (const char* sub : {"domains", "run", "logs"}) make_dir(root_ / sub, 0700);
}

fs::path StateDir::definition(std::string_view name) const {
    return root_ / "domains" / (std::string(name) + ".xml");
}
fs::path StateDir::autostart_flag(std::string_view name) const {
    return root_ / "domains" / (std::string(name) + ".autostart");
}
fs::path StateDir::run_config(std::string_view name) const {
    return root_ / "run" / (std::string(name) + ".toml");
}
fs::path StateDir::pid_file(std::string_view name) const {
    return root_ / "run" / (std::string(name) + ".pid");
}
fs::path StateDir::exit_file(std::string_view name) const {
    return root_ / "run" / (std::string(name) + ".exit");
}
fs::path StateDir::control_socket(std::string_view name) const {
    return root_ / "run" / (std::string(name) + ".sock");
}
fs::path StateDir::log(std::string_view name) const {
    return root_ / "logs" / (std::string(name) + ".log");
}

std::vector<std::string> StateDir::defined_names() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(root_ / "domains")) {
        const fs::path& p = entry.path();
        if (p.extension() == ".xml" && entry.is_regular_file()) names.push_back(p.stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

void write_file_atomically(const fs::path& path, std::string_view data) {
    const fs::path tmp = path.string() + ".tmp";
    {
        const Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd.valid()) fail("create", tmp, errno);
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                const int err = errno;
                ::unlink(tmp.c_str());
                fail("write", tmp, err);
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd.get()) != 0) {
            const int err = errno;
            ::unlink(tmp.c_str());
            fail("fsync", tmp, err);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        fail("rename to", path, err);
    }
    sync_directory(path.parent_path());
}

std::optional<std::string> read_small_file(const fs::path& path) {
    const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
        if (errno == ENOENT) return std::nullopt;
        fail("open", path, errno);
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("read", path, errno);
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxStateFileBytes) fail("read (file too large)", path, EFBIG);
    }
    return text;
}

void remove_file(const fs::path& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        fail("unlink", path, errno);
    }
    sync_directory(path.parent_path());
}

}  // namespace ukvm::ukvmd
