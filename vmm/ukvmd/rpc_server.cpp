#include "vmm/ukvmd/rpc_server.hpp"

#include "vmm/control/control_server.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>
#include <thread>

namespace ukvm::ukvmd {
namespace {

using namespace libvirt;

// remote_procedure numbers (src/remote/remote_protocol.x).
namespace proc {
constexpr std::uint32_t kConnectOpen = 1;
constexpr std::uint32_t kConnectClose = 2;
constexpr std::uint32_t kConnectGetType = 3;
constexpr std::uint32_t kConnectGetVersion = 4;
constexpr std::uint32_t kNodeGetInfo = 6;
constexpr std::uint32_t kConnectGetCapabilities = 7;
constexpr std::uint32_t kDomainCreate = 9;
constexpr std::uint32_t kDomainDefineXml = 11;
constexpr std::uint32_t kDomainDestroy = 12;
constexpr std::uint32_t kDomainGetXmlDesc = 14;
constexpr std::uint32_t kDomainGetAutostart = 15;
constexpr std::uint32_t kDomainGetInfo = 16;
constexpr std::uint32_t kDomainGetOsType = 19;
constexpr std::uint32_t kDomainLookupById = 22;
constexpr std::uint32_t kDomainLookupByName = 23;
constexpr std::uint32_t kDomainLookupByUuid = 24;
constexpr std::uint32_t kDomainSetAutostart = 29;
constexpr std::uint32_t kDomainShutdown = 33;
constexpr std::uint32_t kDomainUndefine = 35;
constexpr std::uint32_t kConnectGetHostname = 59;
constexpr std::uint32_t kConnectSupportsFeature = 60;
constexpr std::uint32_t kAuthList = 66;
constexpr std::uint32_t kConnectGetUri = 110;
constexpr std::uint32_t kNodeGetSecurityModel = 122;
constexpr std::uint32_t kConnectIsSecure = 149;
constexpr std::uint32_t kDomainIsActive = 150;
constexpr std::uint32_t kDomainIsPersistent = 151;
constexpr std::uint32_t kConnectGetLibVersion = 157;
constexpr std::uint32_t kDomainHasManagedSaveImage = 183;
constexpr std::uint32_t kDomainCreateWithFlags = 196;
constexpr std::uint32_t kDomainOpenConsole = 201;
constexpr std::uint32_t kDomainGetState = 212;
constexpr std::uint32_t kDomainUndefineFlags = 231;
constexpr std::uint32_t kDomainDestroyFlags = 234;
constexpr std::uint32_t kDomainShutdownFlags = 258;
constexpr std::uint32_t kConnectListAllDomains = 273;
constexpr std::uint32_t kEventCallbackRegisterAny = 316;
constexpr std::uint32_t kEventCallbackDeregisterAny = 317;
constexpr std::uint32_t kEventCallbackLifecycle = 318;
constexpr std::uint32_t kDomainDefineXmlFlags = 350;
}  // namespace proc

// The API call behind a procedure a read-only connection may not make, or nothing.
const char* mutating_api(std::uint32_t p) {
    switch (p) {
        case proc::kDomainCreate:
            return "virDomainCreate";
        case proc::kDomainCreateWithFlags:
            return "virDomainCreateWithFlags";
        case proc::kDomainDefineXml:
            return "virDomainDefineXML";
        case proc::kDomainDefineXmlFlags:
            return "virDomainDefineXMLFlags";
        case proc::kDomainDestroy:
            return "virDomainDestroy";
        case proc::kDomainDestroyFlags:
            return "virDomainDestroyFlags";
        case proc::kDomainSetAutostart:
            return "virDomainSetAutostart";
        case proc::kDomainShutdown:
            return "virDomainShutdown";
        case proc::kDomainShutdownFlags:
            return "virDomainShutdownFlags";
        case proc::kDomainUndefine:
            return "virDomainUndefine";
        case proc::kDomainUndefineFlags:
            return "virDomainUndefineFlags";
        case proc::kDomainOpenConsole:  // a console carries input to the guest
            return "virDomainOpenConsole";
        default:
            return nullptr;
    }
}

constexpr int kFeatureEventCallback = 14;   // VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK
constexpr int kFeatureKeepalive = 10;       // VIR_DRV_FEATURE_PROGRAM_KEEPALIVE
constexpr std::uint32_t kOpenReadOnly = 1;  // VIR_CONNECT_RO
constexpr std::uint32_t kDomainListMax = 16384;
constexpr std::size_t kMaxNameBytes = 4096;
constexpr std::size_t kMaxOutputBytes = 64 * 1024 * 1024;  // a client that stops reading
constexpr std::size_t kConsoleBacklog = 1024 * 1024;
constexpr std::size_t kMaxReadOnlyPacket = 64 * 1024;
constexpr std::int32_t kMaxEventId = 64;
constexpr std::size_t kMaxEventCallbacks = 256;
// ukvm's own version in libvirt's major * 1000000 + minor * 1000 + micro form.
constexpr std::uint64_t kVersion = 1000;

// libvirt's message prefixes, so virsh prints what users of other drivers expect.
std::string with_prefix(int code, const std::string& msg) {
    switch (code) {
        case err::kNoDomain:
            return "Domain not found: " + msg;
        case err::kOperationInvalid:
            return "Requested operation is not valid: " + msg;
        case err::kOperationDenied:
            return "operation forbidden: " + msg;
        case err::kOperationFailed:
        case err::kDomainExists:
            return "operation failed: " + msg;
        case err::kXmlError:
            return "XML error: " + msg;
        case err::kConfigUnsupported:
            return "unsupported configuration: " + msg;
        case err::kInvalidArg:
            return "invalid argument: " + msg;
        case err::kInternal:
            return "internal error: " + msg;
        default:
            return msg;
    }
}

void put_domain(XdrEncoder& e, const Domain& d) {
    e.string(d.name());
    e.fixed_opaque(d.def.uuid);
    e.i32(d.running() ? d.id : -1);
}

std::uint64_t host_memory_kib() {
    struct sysinfo si {};
    if (::sysinfo(&si) != 0) return 0;
    return static_cast<std::uint64_t>(si.totalram) * si.mem_unit / 1024;
}

int host_mhz() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("cpu MHz", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                try {
                    return static_cast<int>(std::stod(line.substr(colon + 1)));
                } catch (const std::exception&) {
                    return 0;
                }
            }
        }
    }
    return 0;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

// What management tools read to learn which guests this "hypervisor" runs.
std::string capabilities_xml() {
    return "<capabilities>\n"
           "  <host>\n"
           "    <cpu>\n"
           "      <arch>x86_64</arch>\n"
           "    </cpu>\n"
           "  </host>\n"
           "  <guest>\n"
           "    <os_type>hvm</os_type>\n"
           "    <arch name='x86_64'>\n"
           "      <wordsize>64</wordsize>\n"
           "      <domain type='ukvm'/>\n"
           "    </arch>\n"
           "  </guest>\n"
           "</capabilities>\n";
}

}  // namespace

// An error reply: code and message as libvirt reports them.
struct RpcServer::Failure {
    int code;
    std::string message;
};

RpcServer::RpcServer(EventLoop& loop, Domains& domains, RpcServerOptions options)
    : loop_(loop), domains_(domains), options_(std::move(options)) {
    listen_on(options_.socket, false, options_.group ? 0660 : 0600);
    listen_on(options_.socket.string() + "-ro", true, 0666);
}

RpcServer::~RpcServer() {
    for (auto& [id, c] : connections_) loop_.remove(c->token);
    connections_.clear();
    for (auto& l : listeners_) {
        loop_.remove(l->token);
        ::unlink(l->path.c_str());
    }
}

void RpcServer::listen_on(const std::filesystem::path& path, bool read_only, mode_t mode) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.empty() || p.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("socket path '" + p + "' is empty or longer than " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);

    // A socket file left by a daemon that died is replaced; a live daemon is not.
    {
        Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe.valid() &&
            ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            throw std::runtime_error("another daemon is already listening on " + p);
        }
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(p + " exists and is not a socket");
            ::unlink(p.c_str());
        }
    }

    auto l = std::make_unique<Listener>();
    l->fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!l->fd.valid()) throw std::system_error(errno, std::generic_category(), "socket");
    // No window in which the socket exists with looser permissions than asked for.
    const mode_t old_umask = ::umask(0777 & ~mode);
    const int bound = ::bind(l->fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    const int bind_errno = errno;
    ::umask(old_umask);
    if (bound != 0) throw std::system_error(bind_errno, std::generic_category(), "bind " + p);
    if (::chmod(p.c_str(), mode) != 0) {
        throw std::system_error(errno, std::generic_category(), "chmod " + p);
    }
    if (!read_only && options_.group &&
        ::chown(p.c_str(), static_cast<uid_t>(-1), *options_.group) != 0) {
        throw std::system_error(errno, std::generic_category(), "chown " + p);
    }
    if (::listen(l->fd.get(), 64) != 0) {
        throw std::system_error(errno, std::generic_category(), "listen " + p);
    }
    l->path = path;
    l->read_only = read_only;
    Listener* raw = l.get();
    l->token = loop_.add(l->fd.get(), EPOLLIN, [this, raw](std::uint32_t) { accept_from(*raw); });
    listeners_.push_back(std::move(l));
    spdlog::info("listening on {}{}", p, read_only ? " (read-only)" : "");
}

void RpcServer::accept_from(Listener& l) {
    for (;;) {
        Fd fd(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                spdlog::warn("accept on {}: {}", l.path.string(), std::strerror(errno));
            }
            return;
        }
        // Read-only clients (anyone, mode 0666) get at most half the slots, so they
        // cannot lock root out of the read-write socket.
        std::size_t read_only = 0;
        for (const auto& [cid, conn] : connections_) read_only += conn->read_only ? 1 : 0;
        if (connections_.size() >= options_.max_connections ||
            (l.read_only && read_only >= options_.max_connections / 2)) {
            spdlog::warn("refusing a connection on {}: {} already open", l.path.string(),
                         connections_.size());
            continue;  // fd closes here
        }
        // No read-only procedure takes more than a few hundred bytes of arguments.
        auto c = std::make_unique<Connection>(l.read_only ? kMaxReadOnlyPacket : kMaxPacketBytes);
        c->id = next_id_++;
        c->fd = std::move(fd);
        c->read_only = l.read_only;
        const std::uint64_t id = c->id;
        c->token = loop_.add(c->fd.get(), EPOLLIN | EPOLLRDHUP,
                             [this, id](std::uint32_t events) { on_io(id, events); });
        connections_.emplace(id, std::move(c));
    }
}

void RpcServer::on_io(std::uint64_t id, std::uint32_t events) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    if (events & EPOLLOUT) flush(c);
    if (!c.dead && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) read_from(c);
    sweep();
}

void RpcServer::sweep() {
    std::erase_if(connections_, [](const auto& entry) { return entry.second->dead; });
}

void RpcServer::read_from(Connection& c) {
    const std::uint64_t id = c.id;
    std::uint8_t buf[64 * 1024];
    // A bounded number of reads per wakeup: a flooding client cannot starve the others
    // (epoll is level-triggered, so the rest is read on the next round).
    for (int round = 0; round < 16 && !c.dead; ++round) {
        const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n == 0) return close(id, "");
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return close(id, std::strerror(errno));
        }
        try {
            c.in.feed(std::span(buf, static_cast<std::size_t>(n)));
            while (auto p = c.in.next()) {
                handle(c, *p);
                if (c.dead) return;
            }
        } catch (const ProtocolError& e) {
            return close(id, e.what());
        } catch (const XdrError& e) {
            return close(id, std::string("malformed arguments: ") + e.what());
        }
    }
}

void RpcServer::handle(Connection& c, Packet& p) {
    const Header& h = p.header;
    if (h.prog == kKeepaliveProgram) {
        if (h.vers != kKeepaliveVersion || h.type != MessageType::Message) {
            throw ProtocolError("bad keepalive message");
        }
        if (h.proc == kKeepalivePing) {
            Header pong{
                kKeepaliveProgram, kKeepaliveVersion, kKeepalivePong, MessageType::Message, 0,
                MessageStatus::Ok};
            send(c, encode_packet(pong, {}));
        }
        return;  // PONGs (we never ping) are ignored
    }
    if (h.prog != kRemoteProgram) throw ProtocolError("unknown program " + std::to_string(h.prog));
    if (h.vers != kRemoteVersion) throw ProtocolError("unknown version " + std::to_string(h.vers));
    switch (h.type) {
        case MessageType::Call:
            if (h.status != MessageStatus::Ok) throw ProtocolError("call with a non-OK status");
            return call(c, p);
        case MessageType::Stream:
            return handle_stream(c, p);
        default:
            // Clients send neither replies nor file descriptors (unix socket without SCM_RIGHTS).
            throw ProtocolError("unexpected message type " +
                                std::to_string(static_cast<unsigned>(h.type)));
    }
}

void RpcServer::handle_stream(Connection& c, const Packet& p) {
    const Header& h = p.header;
    if (h.proc != proc::kDomainOpenConsole) throw ProtocolError("stream for an unknown procedure");
    auto it = std::find_if(c.streams.begin(), c.streams.end(),
                           [&](const ConsoleStream& s) { return s.serial == h.serial; });
    if (h.status == MessageStatus::Continue) {
        // Console input, to the guest's control socket. Never blocks the daemon: what the
        // socket cannot take now is dropped, like a full UART.
        if (it != c.streams.end() && it->input.valid() && !p.payload.empty()) {
            if (::send(it->input.get(), p.payload.data(), p.payload.size(),
                       MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
                errno != EAGAIN && errno != EWOULDBLOCK) {
                it->input.reset();
            }
        }
        return;
    }
    // Finish (OK) or abort (ERROR): acknowledge and forget the stream.
    if (it != c.streams.end()) c.streams.erase(it);
    Header ack = h;
    ack.type = MessageType::Stream;
    ack.status = MessageStatus::Ok;
    send(c, encode_packet(ack, {}));
}

void RpcServer::call(Connection& c, const Packet& p) {
    const Header& h = p.header;
    XdrDecoder args(p.payload);
    XdrEncoder ret;
    std::optional<ConsoleStream> new_stream;

    auto fail = [](int code, const std::string& msg) -> Failure { return {code, msg}; };
    auto get_domain = [&]() -> Domain& {
        const std::string name = args.string(kMaxNameBytes);
        const Uuid uuid = args.uuid();
        args.i32();  // id: the uuid identifies the domain
        Domain* d = domains_.by_uuid(uuid);
        if (d == nullptr) {
            throw fail(err::kNoDomain,
                       "no domain with matching uuid '" + format_uuid(uuid) + "' (" + name + ")");
        }
        return *d;
    };
    auto guard = [&](auto&& body) {
        try {
            body();
        } catch (const DomainError& e) {
            throw fail(e.code(), e.what());
        } catch (const std::system_error& e) {
            throw fail(err::kOperationFailed, e.what());
        }
    };

    try {
        if (!c.opened && h.proc != proc::kAuthList && h.proc != proc::kConnectSupportsFeature &&
            h.proc != proc::kConnectOpen) {
            throw fail(err::kOperationInvalid, "connection not open");
        }
        if (const char* api = mutating_api(h.proc); c.read_only && api != nullptr) {
            throw fail(err::kOperationDenied, std::string("read only access prevents ") + api);
        }
        switch (h.proc) {
            case proc::kAuthList:
                args.expect_end();
                ret.u32(1);
                ret.i32(0);  // REMOTE_AUTH_NONE: the socket's permissions are the access check
                break;
            case proc::kConnectSupportsFeature: {
                const std::int32_t feature = args.i32();
                args.expect_end();
                ret.i32(feature == kFeatureKeepalive || feature == kFeatureEventCallback ? 1 : 0);
                break;
            }
            case proc::kConnectOpen: {
                const auto name = args.optional_string(kMaxNameBytes);
                const std::uint32_t flags = args.u32();
                args.expect_end();
                if (flags & kOpenReadOnly) c.read_only = true;
                c.opened = true;
                spdlog::debug("connection {} opened {}{}", c.id, name.value_or("(default)"),
                              c.read_only ? " read-only" : "");
                break;
            }
            case proc::kConnectClose:
                args.expect_end();
                c.opened = false;
                break;
            case proc::kConnectGetType:
                args.expect_end();
                ret.string("ukvm");
                break;
            case proc::kConnectGetVersion:
            case proc::kConnectGetLibVersion:
                args.expect_end();
                ret.u64(kVersion);
                break;
            case proc::kConnectGetHostname:
                args.expect_end();
                ret.string(host_name());
                break;
            case proc::kConnectGetUri:
                args.expect_end();
                ret.string("ukvm:///system");
                break;
            case proc::kConnectIsSecure:
                args.expect_end();
                ret.i32(1);  // a local unix socket
                break;
            case proc::kNodeGetInfo: {
                args.expect_end();
                const char model[] = "x86_64";
                for (std::size_t i = 0; i < 32; ++i) ret.i32(i < sizeof model ? model[i] : 0);
                const int cpus = static_cast<int>(std::thread::hardware_concurrency());
                ret.u64(host_memory_kib());
                ret.i32(cpus);
                ret.i32(host_mhz());
                ret.i32(1);     // NUMA nodes
                ret.i32(1);     // sockets per node
                ret.i32(cpus);  // cores per socket
                ret.i32(1);     // threads per core
                break;
            }
            case proc::kEventCallbackRegisterAny: {
                const std::int32_t event_id = args.i32();
                std::optional<Uuid> only;
                if (args.boolean()) {
                    args.string(kMaxNameBytes);
                    only = args.uuid();
                    args.i32();
                }
                args.expect_end();
                // Every event ID is accepted (virsh event --all registers them all); only
                // lifecycle events (ID 0) are ever sent.
                if (event_id < 0 || event_id >= kMaxEventId) {
                    throw fail(err::kInvalidArg, "unknown event ID " + std::to_string(event_id));
                }
                if (c.events.size() >= kMaxEventCallbacks) {
                    throw fail(err::kOperationFailed, "too many event callbacks");
                }
                const std::int32_t id = c.next_callback++;
                c.events.push_back({id, event_id, only});
                ret.i32(id);
                break;
            }
            case proc::kEventCallbackDeregisterAny: {
                const std::int32_t id = args.i32();
                args.expect_end();
                const auto n = std::erase_if(
                    c.events, [&](const Connection::EventCallback& e) { return e.id == id; });
                if (n == 0) {
                    throw fail(err::kInvalidArg, "no event callback " + std::to_string(id));
                }
                break;
            }
            case proc::kConnectGetCapabilities:
                args.expect_end();
                ret.string(capabilities_xml());
                break;
            case proc::kNodeGetSecurityModel:
                args.expect_end();
                ret.u32(0);  // model: none
                ret.u32(0);  // doi
                break;
            case proc::kConnectListAllDomains: {
                const bool need_results = args.i32() != 0;
                const std::uint32_t flags = args.u32();
                args.expect_end();
                // Each pair of flags filters only when exactly one of the two is given.
                auto pick = [&](std::uint32_t yes, std::uint32_t no, bool is) {
                    const bool want_yes = flags & yes, want_no = flags & no;
                    return want_yes == want_no || (is ? want_yes : want_no);
                };
                std::vector<Domain*> picked;
                for (Domain* d : domains_.all()) {
                    const bool active = d->running();
                    bool ok = pick(1, 2, active) && pick(4, 8, d->persistent) &&
                              pick(1024, 2048, d->autostart) && pick(256, 512, false) &&
                              pick(4096, 8192, false);
                    // RUNNING 16 / PAUSED 32 / SHUTOFF 64 / OTHER 128: any of those given.
                    if (flags & (16 | 32 | 64 | 128)) {
                        ok = ok && ((active && (flags & 16)) || (!active && (flags & 64)));
                    }
                    if (ok) picked.push_back(d);
                }
                if (picked.size() > kDomainListMax) picked.resize(kDomainListMax);
                ret.u32(need_results ? static_cast<std::uint32_t>(picked.size()) : 0);
                if (need_results) {
                    for (Domain* d : picked) put_domain(ret, *d);
                }
                ret.u32(static_cast<std::uint32_t>(picked.size()));
                break;
            }
            case proc::kDomainLookupById: {
                const std::int32_t id = args.i32();
                args.expect_end();
                Domain* d = domains_.by_id(id);
                if (d == nullptr) {
                    throw fail(err::kNoDomain, "no domain with matching id " + std::to_string(id));
                }
                put_domain(ret, *d);
                break;
            }
            case proc::kDomainLookupByName: {
                const std::string name = args.string(kMaxNameBytes);
                args.expect_end();
                Domain* d = domains_.by_name(name);
                if (d == nullptr) {
                    throw fail(err::kNoDomain, "no domain with matching name '" + name + "'");
                }
                put_domain(ret, *d);
                break;
            }
            case proc::kDomainLookupByUuid: {
                const Uuid uuid = args.uuid();
                args.expect_end();
                Domain* d = domains_.by_uuid(uuid);
                if (d == nullptr) {
                    throw fail(err::kNoDomain,
                               "no domain with matching uuid '" + format_uuid(uuid) + "'");
                }
                put_domain(ret, *d);
                break;
            }
            case proc::kDomainGetState: {
                Domain& d = get_domain();
                args.u32();  // flags
                args.expect_end();
                ret.i32(d.state);
                ret.i32(d.reason);
                break;
            }
            case proc::kDomainGetInfo: {
                Domain& d = get_domain();
                args.expect_end();
                const std::uint64_t kib = d.def.config.memory_mib * 1024;
                ret.u32(static_cast<std::uint32_t>(d.state));
                ret.u64(kib);  // maxMem
                ret.u64(kib);  // memory
                ret.u32(d.def.config.vcpus);
                ret.u64(d.running() ? d.process->cpu_time_ns() : 0);
                break;
            }
            case proc::kDomainGetOsType: {
                Domain& d = get_domain();
                args.expect_end();
                (void)d;
                ret.string(std::string(kOsType));
                break;
            }
            case proc::kDomainIsActive: {
                Domain& d = get_domain();
                args.expect_end();
                ret.i32(d.running() ? 1 : 0);
                break;
            }
            case proc::kDomainIsPersistent: {
                Domain& d = get_domain();
                args.expect_end();
                ret.i32(d.persistent ? 1 : 0);
                break;
            }
            case proc::kDomainGetAutostart: {
                Domain& d = get_domain();
                args.expect_end();
                ret.i32(d.autostart ? 1 : 0);
                break;
            }
            case proc::kDomainSetAutostart: {
                Domain& d = get_domain();
                const bool on = args.i32() != 0;
                args.expect_end();
                guard([&] { domains_.set_autostart(d, on); });
                break;
            }
            case proc::kDomainHasManagedSaveImage: {
                get_domain();
                args.u32();
                args.expect_end();
                ret.i32(0);  // ukvm has no managed save
                break;
            }
            case proc::kDomainGetXmlDesc: {
                Domain& d = get_domain();
                const std::uint32_t flags = args.u32();
                args.expect_end();
                const bool inactive = flags & 2;  // VIR_DOMAIN_XML_INACTIVE
                ret.string(format_domain_xml(d.def, d.running() && !inactive ? d.id : -1));
                break;
            }
            case proc::kDomainDefineXml:
            case proc::kDomainDefineXmlFlags: {
                const std::string xml = args.string();
                if (h.proc == proc::kDomainDefineXmlFlags) {
                    const std::uint32_t flags = args.u32();
                    if (flags & ~1u) {  // VIR_DOMAIN_DEFINE_VALIDATE: we always validate
                        throw fail(err::kInvalidArg, "unsupported flags " + std::to_string(flags));
                    }
                }
                args.expect_end();
                Domain* d = nullptr;
                guard([&] { d = &domains_.define(xml); });
                spdlog::info("domain '{}' defined", d->name());
                put_domain(ret, *d);
                break;
            }
            case proc::kDomainUndefine:
            case proc::kDomainUndefineFlags: {
                Domain& d = get_domain();
                if (h.proc == proc::kDomainUndefineFlags) {
                    // Managed save, snapshots, NVRAM, checkpoints, TPM: ukvm keeps none,
                    // so every known flag is trivially honoured.
                    const std::uint32_t flags = args.u32();
                    if (flags & ~127u) {
                        throw fail(err::kInvalidArg, "unsupported flags " + std::to_string(flags));
                    }
                }
                args.expect_end();
                const std::string name = d.name();
                guard([&] { domains_.undefine(d); });
                spdlog::info("domain '{}' undefined", name);
                break;
            }
            case proc::kDomainCreate:
            case proc::kDomainCreateWithFlags: {
                Domain& d = get_domain();
                if (h.proc == proc::kDomainCreateWithFlags) {
                    const std::uint32_t flags = args.u32();
                    if (flags & 1) {
                        throw fail(err::kConfigUnsupported,
                                   "starting a domain paused is not supported");
                    }
                }
                args.expect_end();
                guard([&] { domains_.start(d); });
                if (h.proc == proc::kDomainCreateWithFlags) put_domain(ret, d);
                break;
            }
            case proc::kDomainShutdown:
            case proc::kDomainShutdownFlags: {
                Domain& d = get_domain();
                if (h.proc == proc::kDomainShutdownFlags) {
                    const std::uint32_t flags = args.u32();
                    if (flags & ~8u) {  // only VIR_DOMAIN_SHUTDOWN_SIGNAL (and the default)
                        throw fail(err::kConfigUnsupported,
                                   "shutdown modes other than 'signal' are not supported");
                    }
                }
                args.expect_end();
                guard([&] { domains_.shutdown(d); });
                break;
            }
            case proc::kDomainDestroy:
            case proc::kDomainDestroyFlags: {
                Domain& d = get_domain();
                if (h.proc == proc::kDomainDestroyFlags) args.u32();  // GRACEFUL: killed anyway
                args.expect_end();
                guard([&] { domains_.destroy(d); });
                break;
            }
            case proc::kDomainOpenConsole: {
                Domain& d = get_domain();
                args.optional_string(kMaxNameBytes);  // device name: there is one console
                args.u32();                           // flags (FORCE, SAFE)
                args.expect_end();
                if (!d.running()) throw fail(err::kOperationInvalid, "domain is not running");
                ConsoleStream s;
                s.serial = h.serial;
                s.uuid = d.def.uuid;
                s.run_id = d.id;
                s.offset = d.console_offset;
                const auto log = domains_.state_dir().log(d.name());
                s.log.reset(::open(log.c_str(), O_RDONLY | O_CLOEXEC));
                if (!s.log.valid()) {
                    throw fail(err::kOperationFailed, "cannot open the console log " +
                                                          log.string() + ": " +
                                                          std::strerror(errno));
                }
                try {
                    s.input =
                        control::open_console_input(domains_.state_dir().control_socket(d.name()));
                } catch (const std::exception& e) {
                    spdlog::info("domain '{}': console without input: {}", d.name(), e.what());
                }
                new_stream = std::move(s);
                break;
            }
            default:
                // Exactly what libvirtd says, so the client reports VIR_ERR_NO_SUPPORT and
                // virsh falls back to another procedure where it has one.
                throw fail(err::kRpc, "unknown procedure: " + std::to_string(h.proc));
        }
    } catch (const std::system_error& e) {
        return reply_failure(c, h, {err::kOperationFailed, e.what()});
    } catch (const XdrError&) {
        throw;  // malformed arguments: the caller closes the connection
    } catch (const std::exception& e) {
        // A bug or resource exhaustion in one call must not take the daemon down.
        return reply_failure(c, h, {err::kInternal, e.what()});
    } catch (Failure& f) {
        return reply_failure(c, h, f);
    }
    send(c, encode_packet(reply_header(h, MessageStatus::Ok), ret.bytes()));
    if (new_stream) {
        c.streams.push_back(std::move(*new_stream));
        pump_console(c, c.streams.back());
    }
}

void RpcServer::reply_failure(Connection& c, const Header& h, const Failure& f) {
    {
        RemoteError e;
        e.code = f.code;
        e.domain = f.code == err::kRpc ? from::kRpc : from::kDom;
        e.message = with_prefix(f.code, f.message);
        send(c, encode_packet(reply_header(h, MessageStatus::Error), encode_error(e)));
    }
}

void RpcServer::send(Connection& c, std::vector<std::uint8_t> bytes) {
    if (c.dead) return;
    c.out_bytes += bytes.size();
    c.out.push_back(std::move(bytes));
    if (c.out_bytes > kMaxOutputBytes) return close(c.id, "client is not reading its replies");
    flush(c);
}

void RpcServer::flush(Connection& c) {
    if (c.dead) return;
    while (!c.out.empty()) {
        const auto& front = c.out.front();
        const ssize_t n = ::send(c.fd.get(), front.data() + c.out_pos, front.size() - c.out_pos,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return close(c.id, std::strerror(errno));
        }
        c.out_pos += static_cast<std::size_t>(n);
        c.out_bytes -= static_cast<std::size_t>(n);
        if (c.out_pos == front.size()) {
            c.out.pop_front();
            c.out_pos = 0;
        }
    }
    loop_.modify(c.token, EPOLLIN | EPOLLRDHUP | (c.out.empty() ? 0u : EPOLLOUT));
}

void RpcServer::close(std::uint64_t id, const std::string& why) {
    const auto it = connections_.find(id);
    if (it == connections_.end() || it->second->dead) return;
    Connection& c = *it->second;
    if (!why.empty()) spdlog::warn("closing connection {}: {}", id, why);
    // Callers up the stack may still hold a reference: the object goes in sweep().
    c.dead = true;
    loop_.remove(c.token);
    c.fd.reset();
}

void RpcServer::pump_console(Connection& c, ConsoleStream& s) {
    if (s.eof_sent || c.dead) return;
    Header h{kRemoteProgram,      kRemoteVersion, proc::kDomainOpenConsole,
             MessageType::Stream, s.serial,       MessageStatus::Continue};
    std::vector<std::uint8_t> buf(64 * 1024);
    while (c.out_bytes < kConsoleBacklog) {
        const ssize_t n =
            ::pread(s.log.get(), buf.data(), buf.size(), static_cast<off_t>(s.offset));
        if (n <= 0) break;
        s.offset += static_cast<std::uint64_t>(n);
        send(c, encode_packet(h, std::span(buf.data(), static_cast<std::size_t>(n))));
        if (c.dead) return;
    }
    const Domain* d = domains_.by_uuid(s.uuid);
    const bool run_over = d == nullptr || d->id != s.run_id;
    if (run_over && c.out_bytes < kConsoleBacklog) {
        // Everything up to the exit line is out; an empty CONTINUE is the stream's EOF.
        send(c, encode_packet(h, {}));
        s.eof_sent = true;
    }
}

void RpcServer::tick() {
    pump_all();
    sweep();
}

void RpcServer::pump_all() {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, c] : connections_) {
        if (!c->streams.empty()) ids.push_back(id);
    }
    for (std::uint64_t id : ids) {
        for (std::size_t i = 0;; ++i) {
            const auto it = connections_.find(id);
            if (it == connections_.end() || i >= it->second->streams.size()) break;
            pump_console(*it->second, it->second->streams[i]);
        }
    }
}

void RpcServer::domain_event(const Domain& d, int event, int detail) {
    for (auto& [id, c] : connections_) {
        for (const Connection::EventCallback& cb : c->events) {
            if (cb.event_id != 0 || (cb.domain && *cb.domain != d.def.uuid)) continue;
            XdrEncoder msg;
            msg.i32(cb.id);
            put_domain(msg, d);
            msg.i32(event);
            msg.i32(detail);
            const Header h{kRemoteProgram,
                           kRemoteVersion,
                           proc::kEventCallbackLifecycle,
                           MessageType::Message,
                           0,
                           MessageStatus::Ok};
            send(*c, encode_packet(h, msg.bytes()));
        }
    }
}

void RpcServer::domain_stopped(const Domain&) {
    // Sends what is left of the log, then EOF (run ids tell which streams). No sweep: this
    // can run inside a call on a connection that pumping closes.
    pump_all();
}

}  // namespace ukvm::ukvmd
