#include "vmm/libvirt/rpc_client.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ukvm::libvirt {
namespace {
constexpr std::uint32_t kProcConnectOpen = 1;
constexpr std::uint32_t kProcConnectClose = 2;
}  // namespace

RpcClient::RpcClient(const std::filesystem::path& socket) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = socket.string();
    if (p.empty() || p.size() >= sizeof addr.sun_path) {
        throw RpcCallError(0, "socket path '" + p + "' is empty or too long");
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_.valid() ||
        ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw RpcCallError(0, "cannot connect to ukvmd at " + p + ": " + std::strerror(errno));
    }
    XdrEncoder open;
    open.optional_string("ukvm:///system");
    open.u32(0);
    call(kProcConnectOpen, open.bytes());
}

RpcClient::~RpcClient() {
    try {
        call(kProcConnectClose);
    } catch (const std::exception&) {
        // Closing anyway.
    }
}

std::vector<std::uint8_t> RpcClient::call(std::uint32_t proc, std::span<const std::uint8_t> args) {
    Header h;
    h.proc = proc;
    h.serial = serial_++;
    const std::vector<std::uint8_t> packet = encode_packet(h, args);
    std::size_t sent = 0;
    while (sent < packet.size()) {
        const ssize_t n =
            ::send(fd_.get(), packet.data() + sent, packet.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw RpcCallError(0, std::string("send to ukvmd: ") + std::strerror(errno));
        }
        sent += static_cast<std::size_t>(n);
    }
    for (;;) {
        while (auto p = in_.next()) {
            // Keepalive and stream traffic are not for us; replies to our serial are.
            if (p->header.prog != kRemoteProgram || p->header.type != MessageType::Reply ||
                p->header.serial != h.serial) {
                continue;
            }
            if (p->header.status == MessageStatus::Ok) return std::move(p->payload);
            const RemoteError e = decode_error(p->payload);
            throw RpcCallError(e.code, e.message);
        }
        std::uint8_t buf[65536];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n == 0) throw RpcCallError(0, "ukvmd closed the connection");
        if (n < 0) {
            if (errno == EINTR) continue;
            throw RpcCallError(0, std::string("recv from ukvmd: ") + std::strerror(errno));
        }
        in_.feed(std::span(buf, static_cast<std::size_t>(n)));
    }
}

}  // namespace ukvm::libvirt
