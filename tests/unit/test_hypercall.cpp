// The hypercall handler against real guest memory and a recording console, no VM.
#include "vmm/devices/hypercall.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <spdlog/spdlog.h>
#include <time.h>
#include <algorithm>

#include <array>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>

namespace ukvm {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kRam = 2 * kMiB;
constexpr std::uint64_t kMsg = 0x1000;  // where the tests put their message
constexpr std::uint64_t kBuf = 0x2000;  // and their buffers

struct Recorder : ConsoleSink {
    std::string out;
    void write(std::span<const std::uint8_t> b) override { out.append(b.begin(), b.end()); }
};

class HypercallTest : public ::testing::Test {
protected:
    GuestMemory mem{kRam};
    Recorder console;
    HypercallHandler::Clock::time_point created =
        HypercallHandler::Clock::now() - std::chrono::seconds(5);
    HypercallHandler handler{mem, console, {kRam, 2, "init=/sbin/init quiet"}, created};

    template <typename Req>
    hc::Message call(std::int32_t type, const Req& req, std::uint64_t at = kMsg) {
        hc::Message m{};
        m.m_source = 1234;
        m.m_type = type;
        std::memset(m.payload, 0xCC, sizeof m.payload);  // stale bytes the reply must clear
        std::memcpy(m.payload, &req, sizeof req);
        mem.write(at, m);
        last = handler.handle(at);
        return mem.read<hc::Message>(at);
    }
    hc::Message call(std::int32_t type) { return call(type, std::uint8_t{0xCC}); }

    template <typename T>
    static T reply_as(const hc::Message& m) {
        T v;
        std::memcpy(&v, m.payload, sizeof v);
        return v;
    }
    static bool payload_zero(const hc::Message& m) {
        for (auto b : m.payload)
            if (b != 0) return false;
        return true;
    }
    void put_text(std::uint64_t at, const std::string& s) {
        mem.write(at, std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
    }

    HypercallOutcome last{HypercallResult::Dropped};
};

TEST_F(HypercallTest, Version) {
    auto r = call(hc::kVersion);
    EXPECT_EQ(last.result, HypercallResult::Replied);
    EXPECT_EQ(r.m_source, hc::kVmmEndpoint);
    EXPECT_EQ(r.m_type, hc::kOk);
    auto v = reply_as<hc::VersionReply>(r);
    EXPECT_EQ(v.magic, hc::kMagic);
    EXPECT_EQ(v.version, hc::kAbiVersion);
}

TEST_F(HypercallTest, UnknownCallsAreENoSys) {
    for (std::int32_t type : {0, 9, -1, 0x7FFFFFFF}) {
        auto r = call(type);
        EXPECT_EQ(r.m_type, hc::kENoSys) << type;
        EXPECT_EQ(r.m_source, hc::kVmmEndpoint);
        EXPECT_TRUE(payload_zero(r));
    }
}

TEST_F(HypercallTest, EventsAreTakenOnceAndAccumulate) {
    auto r = call(hc::kEvents);
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::EventsReply>(r).pending, 0u);
    handler.post_events(hc::kEventPowerOff);
    handler.post_events(hc::kEventPowerOff | 4);
    r = call(hc::kEvents);
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::EventsReply>(r).pending, hc::kEventPowerOff | 4u);
    // The rest of the payload is zero, and the bits are now clear.
    EXPECT_EQ(reply_as<hc::EventsReply>(call(hc::kEvents)).pending, 0u);
}

TEST_F(HypercallTest, ConsoleWrite) {
    put_text(kBuf, "hello, world\n");
    auto r = call(hc::kConsoleWrite, hc::BufferRequest{kBuf, 13});
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::CountReply>(r).count, 13u);
    EXPECT_EQ(console.out, "hello, world\n");
}

TEST_F(HypercallTest, ConsoleWriteZeroLength) {
    auto r = call(hc::kConsoleWrite, hc::BufferRequest{~0ull, 0});
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::CountReply>(r).count, 0u);
    EXPECT_EQ(console.out, "");
}

TEST_F(HypercallTest, ConsoleWriteErrors) {
    struct Case {
        hc::BufferRequest req;
        hc::Status status;
    };
    for (auto [req, status] : {
             Case{{kBuf, hc::kMaxIoBytes + 1}, hc::kE2Big},
             Case{{kRam - 4, 8}, hc::kEFault},    // straddles the end of RAM
             Case{{kRam, 1}, hc::kEFault},        // one past
             Case{{~0ull - 2, 8}, hc::kEFault},   // wraps at 2^64
             Case{{3ull << 30, 1}, hc::kEFault},  // in the hole
         }) {
        auto r = call(hc::kConsoleWrite, req);
        EXPECT_EQ(r.m_type, status) << std::hex << req.addr << "+" << req.len;
        EXPECT_TRUE(payload_zero(r));
    }
    EXPECT_EQ(console.out, "");
    // The last byte of RAM is fine.
    mem.write<std::uint8_t>(kRam - 1, '!');
    EXPECT_EQ(call(hc::kConsoleWrite, hc::BufferRequest{kRam - 1, 1}).m_type, hc::kOk);
    EXPECT_EQ(console.out, "!");
}

TEST_F(HypercallTest, Log) {
    put_text(kBuf, "booted\n");
    auto r = call(hc::kLog, hc::LogRequest{hc::kLogInfo, 0, kBuf, 7});
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::CountReply>(r).count, 7u);
    EXPECT_EQ(console.out, "");  // logs go to the VMM log, not the console
}

TEST_F(HypercallTest, LogGoesToTheVmmLogWithControlCharactersEscaped) {
    std::ostringstream captured;
    auto previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_st>(captured));
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
    put_text(kBuf, "red \x1b[31mtext\tend\n");
    auto r = call(hc::kLog, hc::LogRequest{hc::kLogWarn, 0, kBuf, 18});
    spdlog::set_default_logger(previous);
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(captured.str(), "warning guest: red \\x1b[31mtext\tend\n");
}

TEST_F(HypercallTest, LogErrors) {
    struct Case {
        hc::LogRequest req;
        hc::Status status;
    };
    for (auto [req, status] : {
             Case{{4, 0, kBuf, 1}, hc::kEInval},             // unknown level
             Case{{hc::kLogInfo, 1, kBuf, 1}, hc::kEInval},  // reserved set
             Case{{hc::kLogInfo, 0, kBuf, hc::kMaxIoBytes + 1}, hc::kE2Big},
             Case{{hc::kLogInfo, 0, kRam - 1, 2}, hc::kEFault},
             Case{{hc::kLogInfo, 0, ~0ull, 2}, hc::kEFault},
         }) {
        auto r = call(hc::kLog, req);
        EXPECT_EQ(r.m_type, status);
        EXPECT_TRUE(payload_zero(r));
    }
}

TEST_F(HypercallTest, Time) {
    timespec before{};
    clock_gettime(CLOCK_REALTIME, &before);
    auto r = call(hc::kTime);
    timespec after{};
    clock_gettime(CLOCK_REALTIME, &after);
    EXPECT_EQ(r.m_type, hc::kOk);
    auto t = reply_as<hc::TimeReply>(r);
    auto ns = [](const timespec& ts) {
        return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
               static_cast<std::uint64_t>(ts.tv_nsec);
    };
    EXPECT_GE(t.realtime_ns, ns(before));
    EXPECT_LE(t.realtime_ns, ns(after));
    EXPECT_GE(t.monotonic_ns, 5'000'000'000u);  // the VM was "created" 5 s ago
    EXPECT_LT(t.monotonic_ns, 60'000'000'000u);
}

TEST_F(HypercallTest, HaltClampsTheStatus) {
    struct Case {
        std::int32_t in;
        int out;
    };
    for (auto [in, out] : {Case{0, 0}, Case{5, 5}, Case{255, 255}, Case{256, 255}, Case{-1, 255},
                           Case{INT32_MIN, 255}}) {
        auto r = call(hc::kHalt, hc::HaltRequest{in});
        EXPECT_EQ(last.result, HypercallResult::Halt);
        EXPECT_EQ(last.halt_status, out) << in;
        EXPECT_EQ(r.m_source, 1234);  // no reply: the VM is over
    }
}

TEST_F(HypercallTest, BootInfo) {
    const std::string cmdline = "init=/sbin/init quiet";
    mem.fill(kBuf, 64, 0xEE);
    auto r = call(hc::kBootInfo, hc::BufferRequest{kBuf, 64});
    EXPECT_EQ(r.m_type, hc::kOk);
    auto info = reply_as<hc::BootInfoReply>(r);
    EXPECT_EQ(info.memory_bytes, kRam);
    EXPECT_EQ(info.cmdline_len, cmdline.size());
    EXPECT_EQ(info.vcpus, 2u);
    EXPECT_EQ(info.abi_version, hc::kAbiVersion);
    std::string got(reinterpret_cast<const char*>(mem.span(kBuf, cmdline.size() + 1).data()));
    EXPECT_EQ(got, cmdline);
    EXPECT_EQ(mem.read<std::uint8_t>(kBuf + cmdline.size() + 1), 0xEE);
}

TEST_F(HypercallTest, BootInfoSizesOnlyAndTruncation) {
    auto r = call(hc::kBootInfo, hc::BufferRequest{~0ull, 0});
    EXPECT_EQ(r.m_type, hc::kOk);
    EXPECT_EQ(reply_as<hc::BootInfoReply>(r).cmdline_len, 21u);

    mem.fill(kBuf, 8, 0xEE);
    r = call(hc::kBootInfo, hc::BufferRequest{kBuf, 4});
    EXPECT_EQ(r.m_type, hc::kOk);
    std::array<std::uint8_t, 5> b{};
    mem.read(kBuf, b);
    EXPECT_EQ(b, (std::array<std::uint8_t, 5>{'i', 'n', 'i', 't', 0xEE}));  // no room, no NUL
}

TEST_F(HypercallTest, BootInfoBadBuffer) {
    auto r = call(hc::kBootInfo, hc::BufferRequest{kRam - 2, 4});
    EXPECT_EQ(r.m_type, hc::kEFault);
    EXPECT_TRUE(payload_zero(r));
    EXPECT_EQ(mem.read<std::uint16_t>(kRam - 2), 0u);
}

// A guest that keeps sending unreachable messages cannot flood the VMM's log.
TEST_F(HypercallTest, DroppedMessageWarningsAreRateLimited) {
    std::ostringstream captured;
    auto previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_st>(captured));
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
    for (int i = 0; i < 1000; ++i)
        EXPECT_EQ(handler.handle(kMsg + 8).result, HypercallResult::Dropped);
    spdlog::set_default_logger(previous);
    const std::string log = captured.str();
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 16);
    EXPECT_NE(log.find("further drops are not reported"), std::string::npos);
}

TEST_F(HypercallTest, UnreachableMessagesAreDroppedUntouched) {
    for (std::uint64_t gpa : std::initializer_list<std::uint64_t>{
             kMsg + 8, kMsg + 4, kMsg + 1, kRam - 32, kRam, ~0ull - 15, std::uint64_t{3} << 30}) {
        if (mem.contains(gpa, 1)) mem.write<std::uint32_t>(gpa, hc::kVersion);
        EXPECT_EQ(handler.handle(gpa).result, HypercallResult::Dropped) << std::hex << gpa;
    }
    // A misaligned message's bytes are unchanged.
    EXPECT_EQ(mem.read<std::uint32_t>(kMsg + 8), static_cast<std::uint32_t>(hc::kVersion));
    EXPECT_EQ(mem.read<std::uint32_t>(kMsg + 4), 0u);
    // The last 64 bytes of RAM are a valid message.
    call(hc::kVersion);
    EXPECT_EQ(call(hc::kVersion, std::uint8_t{0}, kRam - 64).m_type, hc::kOk);
}

TEST_F(HypercallTest, PortOnlyTakesFourByteWrites) {
    int halted = -1;
    int resets = 0;
    HypercallPort port(
        handler, [&](int s) { halted = s; }, [&] { ++resets; });
    hc::Message m{};
    m.m_type = hc::kVersion;
    mem.write(kMsg, m);
    const std::uint32_t gpa = kMsg;
    std::array<std::uint8_t, 4> four;
    std::memcpy(four.data(), &gpa, 4);

    port.write(0, std::span<const std::uint8_t>(four.data(), 1));
    port.write(0, std::span<const std::uint8_t>(four.data(), 2));
    EXPECT_EQ(mem.read<hc::Message>(kMsg).m_source, 0);  // not a hypercall
    EXPECT_FALSE(port.first_call());
    std::array<std::uint8_t, 4> in{};
    port.read(0, in);
    EXPECT_EQ(in, (std::array<std::uint8_t, 4>{0xFF, 0xFF, 0xFF, 0xFF}));

    port.write(0, four);
    EXPECT_EQ(mem.read<hc::Message>(kMsg).m_source, hc::kVmmEndpoint);
    EXPECT_TRUE(port.first_call());
    EXPECT_EQ(halted, -1);

    m = {};
    m.m_type = hc::kHalt;
    std::int32_t status = 42;
    std::memcpy(m.payload, &status, sizeof status);
    mem.write(kMsg, m);
    port.write(0, four);
    EXPECT_EQ(halted, 42);
    EXPECT_EQ(resets, 0);

    // kReboot is a reset, not a halt with some status.
    halted = -1;
    m = {};
    m.m_type = hc::kReboot;
    mem.write(kMsg, m);
    port.write(0, four);
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(halted, -1);
}

}  // namespace
}  // namespace ukvm
