#include "vmm/ukvmd/manage_cli.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <vector>

#include "vmm/libvirt/rpc_client.hpp"
#include "vmm/libvirt/xdr.hpp"

namespace ukvm::ukvmd {
namespace {

using libvirt::RpcCallError;
using libvirt::RpcClient;
using libvirt::XdrDecoder;
using libvirt::XdrEncoder;

constexpr std::uint32_t kListAll = 273;
constexpr std::uint32_t kLookupByName = 23;
constexpr std::uint32_t kGetState = 212;
constexpr std::uint32_t kGetInfo = 16;
constexpr std::uint32_t kCreate = 9;
constexpr std::uint32_t kShutdown = 33;
constexpr std::uint32_t kDestroy = 12;

struct Dom {
    std::string name;
    libvirt::Uuid uuid{};
    std::int32_t id = -1;
};

Dom get_dom(XdrDecoder& d) {
    Dom dom;
    dom.name = d.string(4096);
    dom.uuid = d.uuid();
    dom.id = d.i32();
    return dom;
}

void put_dom(XdrEncoder& e, const Dom& d) {
    e.string(d.name);
    e.fixed_opaque(d.uuid);
    e.i32(d.id);
}

Dom lookup(RpcClient& c, const std::string& name) {
    XdrEncoder e;
    e.string(name);
    const auto reply = c.call(kLookupByName, e.bytes());
    XdrDecoder d(reply);
    return get_dom(d);
}

std::string state_text(int state, int reason) {
    if (state == 1) return "running";
    if (state == 3) return "paused";
    if (state != 5) return "state " + std::to_string(state);
    static const char* kReasons[] = {
        "", " (shutdown)", " (destroyed)", " (crashed)", " (migrated)", " (saved)", " (failed)"};
    return std::string("shut off") + (reason >= 0 && reason < 7 ? kReasons[reason] : "");
}

int report(const RpcCallError& e, std::ostream& err) {
    err << "ukvm: " << e.what() << "\n";
    return 1;
}

}  // namespace

int cli_ps(const std::filesystem::path& socket, std::ostream& out, std::ostream& err) {
    try {
        RpcClient c(socket);
        XdrEncoder list;
        list.i32(1);  // need_results
        list.u32(0);  // every domain
        const auto reply = c.call(kListAll, list.bytes());
        XdrDecoder d(reply);
        std::vector<Dom> doms(d.array_count(16384));
        for (Dom& dom : doms) dom = get_dom(d);
        std::sort(doms.begin(), doms.end(), [](const Dom& a, const Dom& b) {
            // Running guests first, by id; then the others by name (virsh's order).
            if ((a.id > 0) != (b.id > 0)) return a.id > 0;
            return a.id > 0 ? a.id < b.id : a.name < b.name;
        });
        out << fmt::format("{:>4}  {:<24} {:<22} {:>8} {:>10}\n", "ID", "NAME", "STATE", "MEMORY",
                           "CPU TIME");
        for (const Dom& dom : doms) {
            XdrEncoder args;
            put_dom(args, dom);
            XdrEncoder state_args;
            put_dom(state_args, dom);
            state_args.u32(0);
            const auto s = c.call(kGetState, state_args.bytes());
            XdrDecoder sd(s);
            const int state = sd.i32();
            const int reason = sd.i32();
            const auto info = c.call(kGetInfo, args.bytes());
            XdrDecoder id(info);
            id.u32();  // state
            const std::uint64_t max_kib = id.u64();
            id.u64();  // memory
            id.u32();  // vcpus
            const std::uint64_t cpu_ns = id.u64();
            out << fmt::format("{:>4}  {:<24} {:<22} {:>4} MiB {:>9.2f}s\n",
                               dom.id > 0 ? std::to_string(dom.id) : "-", dom.name,
                               state_text(state, reason), max_kib / 1024, cpu_ns / 1e9);
        }
        return 0;
    } catch (const RpcCallError& e) {
        return report(e, err);
    } catch (const libvirt::XdrError& e) {
        err << "ukvm: malformed reply from ukvmd: " << e.what() << "\n";
        return 1;
    }
}

int cli_start(const std::filesystem::path& socket, const std::string& name, std::ostream& out,
              std::ostream& err) {
    try {
        RpcClient c(socket);
        XdrEncoder args;
        put_dom(args, lookup(c, name));
        c.call(kCreate, args.bytes());
        out << "started " << name << "\n";
        return 0;
    } catch (const RpcCallError& e) {
        return report(e, err);
    } catch (const libvirt::XdrError& e) {
        err << "ukvm: malformed reply from ukvmd: " << e.what() << "\n";
        return 1;
    }
}

int cli_stop(const std::filesystem::path& socket, const std::string& name, bool force,
             std::ostream& out, std::ostream& err) {
    try {
        RpcClient c(socket);
        XdrEncoder args;
        put_dom(args, lookup(c, name));
        c.call(force ? kDestroy : kShutdown, args.bytes());
        out << (force ? "destroyed " : "stopping ") << name << "\n";
        return 0;
    } catch (const RpcCallError& e) {
        return report(e, err);
    } catch (const libvirt::XdrError& e) {
        err << "ukvm: malformed reply from ukvmd: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace ukvm::ukvmd
