// The libvirt RPC server inside ukvmd: stock virsh and libvirt clients connect to its unix
// sockets through libvirt's remote driver (ukvm+unix:///system?socket=PATH). One epoll
// loop serves every connection; a connection that sends anything malformed is closed on
// its own, without affecting the others or any guest. See docs/management.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vmm/kvm.hpp"
#include "vmm/libvirt/rpc_packet.hpp"
#include "vmm/ukvmd/domains.hpp"
#include "vmm/ukvmd/event_loop.hpp"

namespace ukvm::ukvmd {

inline constexpr const char* kDefaultSocket = "/var/run/libvirt/virtukvmd-sock";

struct RpcServerOptions {
    // The read-write socket; the read-only one is the same path with "-ro" appended.
    std::filesystem::path socket = kDefaultSocket;
    // Group allowed on the read-write socket (mode 0660); without it, root only (0600).
    std::optional<gid_t> group;
    std::size_t max_connections = 128;
};

class RpcServer {
public:
    RpcServer(EventLoop& loop, Domains& domains, RpcServerOptions options);
    ~RpcServer();  // closes connections, removes the sockets (guests keep running)
    RpcServer(const RpcServer&) = delete;
    RpcServer& operator=(const RpcServer&) = delete;

    // Forwards console output to attached streams; called from the loop's tick.
    void tick();
    // A domain stopped: its console streams end once the rest of its output is sent.
    void domain_stopped(const Domain& d);
    // A lifecycle event: sent to every connection that registered for it.
    void domain_event(const Domain& d, int event, int detail);

    std::size_t connection_count() const { return connections_.size(); }

private:
    struct Listener {
        Fd fd;
        std::filesystem::path path;
        bool read_only = false;
        EventLoop::Token token = 0;
    };
    struct ConsoleStream {
        std::uint32_t serial = 0;
        libvirt::Uuid uuid{};
        int run_id = 0;  // the domain id when opened: a later run is another stream
        Fd log;
        std::uint64_t offset = 0;
        bool eof_sent = false;
        Fd input;  // "console-input" on the guest's control socket; invalid: input dropped
    };
    struct Connection {
        explicit Connection(std::size_t max_packet) : in(max_packet) {}
        std::uint64_t id = 0;
        Fd fd;
        EventLoop::Token token = 0;
        bool read_only = false;
        bool opened = false;
        bool dead = false;  // closed; freed by sweep() once no caller holds it
        libvirt::PacketAssembler in;
        std::deque<std::vector<std::uint8_t>> out;
        std::size_t out_pos = 0;    // bytes of out.front() already sent
        std::size_t out_bytes = 0;  // queued, not yet sent
        std::vector<ConsoleStream> streams;
        struct EventCallback {
            std::int32_t id;
            std::int32_t event_id;
            std::optional<libvirt::Uuid> domain;  // nothing: every domain
        };
        std::vector<EventCallback> events;
        std::int32_t next_callback = 1;
    };
    struct Failure;  // an error reply

    void listen_on(const std::filesystem::path& path, bool read_only, mode_t mode);
    void accept_from(Listener& l);
    void on_io(std::uint64_t id, std::uint32_t events);
    void read_from(Connection& c);
    void handle(Connection& c, libvirt::Packet& p);
    void handle_stream(Connection& c, const libvirt::Packet& p);
    void call(Connection& c, const libvirt::Packet& p);
    void reply_failure(Connection& c, const libvirt::Header& h, const Failure& f);
    void send(Connection& c, std::vector<std::uint8_t> bytes);
    void flush(Connection& c);
    void close(std::uint64_t id, const std::string& why);
    void pump_console(Connection& c, ConsoleStream& s);
    void pump_all();
    void sweep();

    EventLoop& loop_;
    Domains& domains_;
    RpcServerOptions options_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
    std::uint64_t next_id_ = 1;
};

}  // namespace ukvm::ukvmd
