#include "vmm/devices/hypercall.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace ukvm {

namespace {

constexpr std::uint64_t kIgnoredWarningBudget = 16;

template <typename T>
T payload_as(const hc::Message& m) {
    static_assert(sizeof(T) <= sizeof(m.payload));
    T value;
    std::memcpy(&value, m.payload, sizeof(T));
    return value;
}

template <typename T>
void set_payload(hc::Message& m, const T& value) {
    static_assert(sizeof(T) <= sizeof(m.payload));
    std::memcpy(m.payload, &value, sizeof(T));
}

// The checks every guest buffer in a request goes through, in this order.
hc::Status check_io_buffer(const GuestMemory& memory, std::uint64_t addr, std::uint64_t len) {
    if (len > hc::kMaxIoBytes) return hc::kE2Big;
    if (!memory.contains(addr, len)) return hc::kEFault;
    return hc::kOk;
}

// Guest text for the VMM's log, with control characters escaped: a guest must not be able
// to drive the operator's terminal (colours, cursor moves) through stderr.
std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c == '\t' || (c >= 0x20 && c != 0x7F)) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    return out;
}

}  // namespace

HypercallHandler::HypercallHandler(GuestMemory& memory, ConsoleSink& console,
                                   HypercallBootInfo info, Clock::time_point created)
    : memory_(memory), console_(console), info_(std::move(info)), created_(created) {}

HypercallOutcome HypercallHandler::handle(std::uint64_t gpa) {
    if (gpa % alignof(hc::Message) != 0 || !memory_.contains(gpa, sizeof(hc::Message))) {
        if (++dropped_ <= kIgnoredWarningBudget) {
            spdlog::warn(
                "hypercall message at {:#x} is misaligned or outside guest RAM; dropped{}", gpa,
                dropped_ == kIgnoredWarningBudget ? " (further drops are not reported)" : "");
        }
        return {HypercallResult::Dropped};
    }
    // One copy in: the guest (another vCPU) cannot change the request under our feet.
    const auto request = memory_.read<hc::Message>(gpa);
    hc::Message reply{};
    hc::Status status = hc::kOk;
    switch (request.m_type) {
        case hc::kVersion:
            set_payload(reply, hc::VersionReply{hc::kMagic, hc::kAbiVersion});
            break;
        case hc::kConsoleWrite:
            status = console_write(request, reply);
            break;
        case hc::kTime:
            status = time(reply);
            break;
        case hc::kHalt: {
            std::int32_t s = payload_as<hc::HaltRequest>(request).status;
            return {HypercallResult::Halt, (s < 0 || s > 255) ? 255 : s};
        }
        case hc::kReboot:
            return {HypercallResult::Reset};
        case hc::kBootInfo:
            status = boot_info(request, reply);
            break;
        case hc::kLog:
            status = log(request, reply);
            break;
        case hc::kEvents:
            set_payload(reply, hc::EventsReply{events_.exchange(0)});
            break;
        default:
            status = hc::kENoSys;
            break;
    }
    if (status != hc::kOk) reply = hc::Message{};  // no partial reply next to an error
    reply.m_source = hc::kVmmEndpoint;
    reply.m_type = status;
    memory_.write(gpa, reply);
    return {HypercallResult::Replied};
}

hc::Status HypercallHandler::console_write(const hc::Message& request, hc::Message& reply) {
    auto [addr, len] = payload_as<hc::BufferRequest>(request);
    if (hc::Status s = check_io_buffer(memory_, addr, len); s != hc::kOk) return s;
    console_.write(memory_.span(addr, len));
    set_payload(reply, hc::CountReply{len});
    return hc::kOk;
}

hc::Status HypercallHandler::log(const hc::Message& request, hc::Message& reply) {
    auto req = payload_as<hc::LogRequest>(request);
    if (req.level > hc::kLogError || req.reserved != 0) return hc::kEInval;
    if (hc::Status s = check_io_buffer(memory_, req.addr, req.len); s != hc::kOk) return s;
    auto bytes = memory_.span(req.addr, req.len);
    std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    static constexpr spdlog::level::level_enum kLevels[] = {
        spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err};
    spdlog::log(kLevels[req.level], "guest: {}", printable(text));
    set_payload(reply, hc::CountReply{req.len});
    return hc::kOk;
}

hc::Status HypercallHandler::time(hc::Message& reply) const {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    hc::TimeReply t{};
    t.realtime_ns = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
                    static_cast<std::uint64_t>(ts.tv_nsec);
    t.monotonic_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - created_).count());
    set_payload(reply, t);
    return hc::kOk;
}

hc::Status HypercallHandler::boot_info(const hc::Message& request, hc::Message& reply) {
    auto [addr, len] = payload_as<hc::BufferRequest>(request);
    if (!memory_.contains(addr, len)) return hc::kEFault;
    auto buffer = memory_.span(addr, len);
    std::size_t n = std::min<std::size_t>(buffer.size(), info_.cmdline.size());
    std::copy_n(info_.cmdline.begin(), n, buffer.begin());
    if (n < buffer.size()) buffer[n] = 0;
    hc::BootInfoReply r{};
    r.memory_bytes = info_.memory_bytes;
    r.cmdline_len = info_.cmdline.size();
    r.vcpus = info_.vcpus;
    r.abi_version = hc::kAbiVersion;
    set_payload(reply, r);
    return hc::kOk;
}

HypercallPort::HypercallPort(HypercallHandler& handler, std::function<void(int)> on_halt,
                             std::function<void()> on_reset)
    : handler_(handler), on_halt_(std::move(on_halt)), on_reset_(std::move(on_reset)) {}

void HypercallPort::read(std::uint64_t, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xFF);
    warn_ignored("read", data.size());
}

void HypercallPort::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset != 0 || data.size() != sizeof(std::uint32_t)) {
        warn_ignored("write", data.size());
        return;
    }
    if (!first_call_) first_call_ = std::chrono::steady_clock::now();
    std::uint32_t gpa = 0;
    std::memcpy(&gpa, data.data(), sizeof gpa);
    HypercallOutcome outcome = handler_.handle(gpa);
    if (outcome.result == HypercallResult::Halt && on_halt_) on_halt_(outcome.halt_status);
    if (outcome.result == HypercallResult::Reset && on_reset_) on_reset_();
}

void HypercallPort::warn_ignored(const char* what, std::size_t size) {
    if (++ignored_ <= kIgnoredWarningBudget) {
        spdlog::warn("ignored {}-byte {} on the hypercall port (only a 4-byte out is a call)", size,
                     what);
    }
}

}  // namespace ukvm
