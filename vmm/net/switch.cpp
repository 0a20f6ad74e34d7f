// The switch backend: a learning Ethernet switch between the guests of one host, without
// root and without a daemon. Every NIC on switch NAME binds a datagram unix socket
// DIR/NAME/<its MAC>.sock (one frame per datagram). Sending, a port looks up the
// destination MAC in what it learned from received datagrams (the kernel names each
// datagram's sender socket); unknown, broadcast and multicast destinations are flooded to
// every socket in the directory. A socket whose owner died refuses datagrams
// (ECONNREFUSED) and is removed by whoever notices. Switches with different names are
// different directories, so their guests never see each other's frames.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "vmm/kvm.hpp"
#include "vmm/net/backend.hpp"

namespace ukvm {

namespace {

namespace fs = std::filesystem;

// Learned MACs per port; a port that forgets them just floods more.
constexpr std::size_t kMaxLearned = 1024;
// The receive buffer: a datagram backlog so bursts wait instead of being refused.
constexpr int kSocketBuffer = 1 << 20;

std::string errno_text(int err) {
    return std::strerror(err);
}

bool is_multicast(const std::uint8_t* mac) {
    return (mac[0] & 1) != 0;  // broadcast too
}

MacAddress mac_at(const std::uint8_t* p) {
    MacAddress m;
    std::memcpy(m.data(), p, m.size());
    return m;
}

// Creates dir (and parents) with mode 0700 where missing; refuses a path that is not a
// directory owned by us (another user's directory could capture our frames).
void make_private_dir(const fs::path& dir, const std::string& key) {
    fs::path at;
    for (const auto& part : dir) {
        at /= part;
        if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) {
            throw NetError(key + ": cannot create switch directory '" + at.string() +
                           "': " + errno_text(errno));
        }
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw NetError(key + ": '" + dir.string() + "' is not a directory");
    }
    if (st.st_uid != ::geteuid()) {
        throw NetError(key + ": switch directory '" + dir.string() + "' belongs to another user");
    }
}

fs::path default_switch_root() {
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
        return fs::path(xdg) / "ukvm" / "switch";
    }
    if (::geteuid() == 0) return "/run/ukvm/switch";
    return fs::path("/tmp") / ("ukvm-" + std::to_string(::geteuid())) / "switch";
}

bool make_address(const fs::path& path, sockaddr_un& addr, socklen_t& len) {
    const std::string s = path.string();
    if (s.size() >= sizeof addr.sun_path) return false;
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, s.data(), s.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.size() + 1);
    return true;
}

class SwitchBackend final : public NetBackend {
public:
    SwitchBackend(Fd fd, std::string name, fs::path dir, fs::path self)
        : fd_(std::move(fd)),
          name_(std::move(name)),
          dir_(std::move(dir)),
          self_(std::move(self)) {}

    ~SwitchBackend() override { ::unlink(self_.c_str()); }

    int rx_fd() const override { return fd_.get(); }

    std::optional<std::size_t> receive(std::span<std::uint8_t> buf) override {
        for (;;) {
            sockaddr_un from{};
            socklen_t from_len = sizeof from;
            // MSG_TRUNC: the real length, so an oversized datagram is seen as such.
            const ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), MSG_TRUNC,
                                         reinterpret_cast<sockaddr*>(&from), &from_len);
            if (n < 0) {
                if (errno == EINTR) continue;
                return std::nullopt;
            }
            const auto len = static_cast<std::size_t>(n);
            if (len >= 14 && len <= buf.size()) learn(buf.data() + 6, from, from_len);
            return len;
        }
    }

    void send(std::span<const std::uint8_t> frame) override {
        if (!is_multicast(frame.data())) {
            const auto it = learned_.find(mac_at(frame.data()));
            if (it != learned_.end()) {
                if (send_to(it->second, frame)) return;
                learned_.erase(it);  // gone: fall back to flooding
            }
        }
        flood(frame);
    }

    std::string describe() const override { return "switch " + name_; }

private:
    void learn(const std::uint8_t* src, const sockaddr_un& from, socklen_t len) {
        if (len <= offsetof(sockaddr_un, sun_path) || from.sun_path[0] == '\0') return;
        if (is_multicast(src)) return;
        const std::size_t path_len = strnlen(from.sun_path, len - offsetof(sockaddr_un, sun_path));
        fs::path peer(std::string(from.sun_path, path_len));
        if (peer.parent_path() != dir_) return;  // not a port of this switch
        if (learned_.size() >= kMaxLearned) learned_.clear();
        learned_[mac_at(src)] = std::move(peer);
    }

    // False when the peer is gone (its socket file was removed then).
    bool send_to(const fs::path& peer, std::span<const std::uint8_t> frame) {
        sockaddr_un addr;
        socklen_t len;
        if (!make_address(peer, addr, len)) return false;
        for (;;) {
            if (::sendto(fd_.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&addr), len) >= 0) {
                return true;
            }
            if (errno == EINTR) continue;
            if (errno == ECONNREFUSED) {
                // Nobody is bound there: a port whose VMM died without cleaning up.
                ::unlink(peer.c_str());
                spdlog::debug("switch {}: removed stale port {}", name_, peer.string());
                return false;
            }
            // ENOENT: already removed; EAGAIN: the peer's queue is full, the frame is lost
            // as on a congested link.
            return errno != ENOENT;
        }
    }

    void flood(std::span<const std::uint8_t> frame) {
        DIR* d = ::opendir(dir_.c_str());
        if (d == nullptr) return;
        std::vector<fs::path> peers;
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > 5 && n.ends_with(".sock")) {
                fs::path p = dir_ / n;
                if (p != self_) peers.push_back(std::move(p));
            }
        }
        ::closedir(d);
        for (const fs::path& p : peers) send_to(p, frame);
    }

    Fd fd_;
    std::string name_;
    fs::path dir_;
    fs::path self_;
    std::map<MacAddress, fs::path> learned_;
};

}  // namespace

std::unique_ptr<NetBackend> open_switch_backend(const NetConfig& config, const std::string& key) {
    const fs::path root = config.switch_dir.empty() ? default_switch_root() : config.switch_dir;
    const fs::path dir = root / config.switch_name;
    make_private_dir(dir, config.switch_dir.empty() ? key + ".switch" : key + ".switch_dir");
    std::string file = format_mac(config.mac);
    std::erase(file, ':');
    const fs::path self = dir / (file + ".sock");
    sockaddr_un addr;
    socklen_t len;
    if (!make_address(self, addr, len)) {
        throw NetError(key + ".switch_dir: the socket path '" + self.string() +
                       "' is longer than a unix socket address allows (107 bytes)");
    }
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw NetError(key + ": cannot create a unix socket: " + errno_text(errno));
    const int size = kSocketBuffer;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        if (errno != EADDRINUSE) {
            throw NetError(key + ".switch: cannot bind '" + self.string() +
                           "': " + errno_text(errno));
        }
        // Someone's socket file: alive (a second NIC with our MAC) or stale.
        Fd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (probe.valid() &&
            ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
            throw NetError(key + ".mac: " + format_mac(config.mac) + " is already on switch '" +
                           config.switch_name + "' (" + self.string() + ")");
        }
        ::unlink(self.c_str());
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
            throw NetError(key + ".switch: cannot bind '" + self.string() +
                           "': " + errno_text(errno));
        }
    }
    return std::make_unique<SwitchBackend>(std::move(fd), config.switch_name, dir, self);
}

}  // namespace ukvm
