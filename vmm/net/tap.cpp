// The tap backend: frames to and from a Linux tap interface (IFF_TAP | IFF_NO_PI, no vnet
// header), an existing one or one ukvm creates for the life of the VMM, optionally
// enslaved to a bridge. Works in whatever network namespace ukvm runs in.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/kvm.hpp"
#include "vmm/net/backend.hpp"

namespace ukvm {

namespace {

class TapBackend final : public NetBackend {
public:
    TapBackend(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

    int rx_fd() const override { return fd_.get(); }

    std::optional<std::size_t> receive(std::span<std::uint8_t> buf) override {
        for (;;) {
            const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno == EINTR) continue;
            // EAGAIN: nothing waits. EIO and the like (the interface went down): nothing
            // to deliver either, the device waits for the next readable event.
            return std::nullopt;
        }
    }

    void send(std::span<const std::uint8_t> frame) override {
        // A full queue (EAGAIN) or a down interface (EIO) drops the frame, as a wire would.
        while (::write(fd_.get(), frame.data(), frame.size()) < 0 && errno == EINTR) {
        }
    }

    std::string describe() const override { return "tap " + name_; }

private:
    Fd fd_;
    std::string name_;
};

// A socket for interface ioctls.
Fd ioctl_socket() {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) s.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    return s;
}

// Interface names are at most IFNAMSIZ - 1 bytes (checked by the config) plus a NUL.
void set_name(ifreq& ifr, const std::string& name) {
    std::memcpy(ifr.ifr_name, name.data(), std::min<std::size_t>(name.size(), IFNAMSIZ - 1));
}

std::string errno_text(int err) {
    return std::strerror(err);
}

}  // namespace

std::unique_ptr<NetBackend> open_tap_backend(const NetConfig& config, const std::string& key) {
    const std::string ifkey = key + ".ifname";
    // Whether it exists decides between attaching and creating (and the error message).
    const bool existed = !config.ifname.empty() && ::if_nametoindex(config.ifname.c_str()) != 0;
    Fd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
        throw NetError(key +
                       ".backend: cannot open /dev/net/tun for a tap device: " + errno_text(errno));
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    const std::string wanted = config.ifname.empty() ? "ukvm%d" : config.ifname;
    set_name(ifr, wanted);
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
        const int err = errno;
        const std::string quoted = "'" + config.ifname + "'";
        if (existed && err == EBUSY) {
            throw NetError(ifkey + ": tap " + quoted + " is in use by another process");
        }
        if (existed && err == EINVAL) {
            throw NetError(ifkey + ": " + quoted + " exists and is not a tap device");
        }
        if (existed && err == EPERM) {
            throw NetError(ifkey + ": tap " + quoted +
                           " belongs to another user (ip tuntap add ... user NAME), and using "
                           "it needs CAP_NET_ADMIN");
        }
        if (err == EPERM) {
            throw NetError((config.ifname.empty() ? key + ".backend" : ifkey) +
                           ": creating a tap device needs CAP_NET_ADMIN: run as root, inside "
                           "`unshare -rn`, or name a tap you own (ip tuntap add NAME mode tap "
                           "user $USER)");
        }
        throw NetError(ifkey + ": cannot open tap " +
                       (config.ifname.empty() ? std::string("device") : quoted) + ": " +
                       errno_text(err));
    }
    const std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    if (!existed) {
        // A tap ukvm created is up for as long as ukvm holds it; one that existed keeps
        // whatever state its owner gave it.
        Fd s = ioctl_socket();
        ifreq up{};
        set_name(up, name);
        if (!s.valid() || ::ioctl(s.get(), SIOCGIFFLAGS, &up) != 0) {
            throw NetError(ifkey + ": cannot read the flags of tap '" + name +
                           "': " + errno_text(errno));
        }
        up.ifr_flags = static_cast<short>(up.ifr_flags | IFF_UP);
        if (::ioctl(s.get(), SIOCSIFFLAGS, &up) != 0) {
            throw NetError(ifkey + ": cannot bring tap '" + name + "' up: " + errno_text(errno));
        }
    }
    if (!config.bridge.empty()) {
        Fd s = ioctl_socket();
        ifreq br{};
        set_name(br, config.bridge);
        br.ifr_ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
        if (!s.valid() || ::ioctl(s.get(), SIOCBRADDIF, &br) != 0) {
            const int err = errno;
            std::string why = errno_text(err);
            if (err == EPERM) why = "needs CAP_NET_ADMIN";
            if (err == EOPNOTSUPP || err == EINVAL) why = "'" + config.bridge + "' is not a bridge";
            if (err == ENODEV) why = "there is no interface '" + config.bridge + "'";
            throw NetError(key + ".bridge: cannot attach tap '" + name + "' to bridge '" +
                           config.bridge + "': " + why);
        }
    }
    return std::make_unique<TapBackend>(std::move(fd), name);
}

}  // namespace ukvm
