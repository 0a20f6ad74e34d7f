// The hypercall doorbell (ABI v1, virtio/include/ukvm/hypercall.h; docs/hypercall-abi.md).
//
// HypercallHandler does the work against guest memory and a console sink alone, so it is
// testable without a VM; HypercallPort puts it on the port bus.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ukvm/hypercall.h"
#include "vmm/bus.hpp"
#include "vmm/console.hpp"
#include "vmm/guest_memory.hpp"

namespace ukvm {

struct HypercallBootInfo {
    std::uint64_t memory_bytes = 0;
    std::uint32_t vcpus = 1;
    std::string cmdline;
};

enum class HypercallResult {
    Replied,  // the message now holds the reply
    Dropped,  // the message was unreachable or misaligned; memory untouched
    Halt,     // the guest asked to end the VM with HypercallOutcome::halt_status
    Reset,    // the guest asked to reboot (kReboot): the VM ends as a reset
};

struct HypercallOutcome {
    HypercallResult result;
    int halt_status = 0;  // for Halt: 0..255
};

class HypercallHandler {
public:
    using Clock = std::chrono::steady_clock;

    HypercallHandler(GuestMemory& memory, ConsoleSink& console, HypercallBootInfo info,
                     Clock::time_point created = Clock::now());

    // Handles the message at guest-physical address gpa.
    HypercallOutcome handle(std::uint64_t gpa);

    // Sets host-request bits (hc::EventBits) for the guest's next kEvents call; any thread.
    // The caller raises hc::kEventIrq.
    void post_events(std::uint64_t bits) { events_.fetch_or(bits); }

private:
    hc::Status console_write(const hc::Message& request, hc::Message& reply);
    hc::Status log(const hc::Message& request, hc::Message& reply);
    hc::Status time(hc::Message& reply) const;
    hc::Status boot_info(const hc::Message& request, hc::Message& reply);

    GuestMemory& memory_;
    ConsoleSink& console_;
    HypercallBootInfo info_;
    Clock::time_point created_;
    std::atomic<std::uint64_t> events_{0};
    std::uint64_t dropped_ = 0;  // warnings are rate-limited: a guest must not flood the log
};

class HypercallPort : public Device {
public:
    HypercallPort(HypercallHandler& handler, std::function<void(int)> on_halt,
                  std::function<void()> on_reset = {});

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // When the first hypercall arrived (for RunOptions::timing).
    std::optional<std::chrono::steady_clock::time_point> first_call() const { return first_call_; }

private:
    void warn_ignored(const char* what, std::size_t size);

    HypercallHandler& handler_;
    std::function<void(int)> on_halt_;
    std::function<void()> on_reset_;
    std::optional<std::chrono::steady_clock::time_point> first_call_;
    std::uint64_t ignored_ = 0;
};

}  // namespace ukvm
