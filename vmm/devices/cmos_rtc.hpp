// The MC146818 CMOS RTC at ports 0x70 (index) / 0x71 (data): host UTC time, never in an
// update cycle, and the memory-size registers PC firmware leaves for the OS.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>

#include "vmm/bus.hpp"

namespace ukvm {

class CmosRtc : public Device {
public:
    static constexpr std::uint16_t kBasePort = 0x70;

    // low_bytes: RAM below the 3 GiB hole; high_bytes: RAM from 4 GiB. now: the clock
    // (tests pass a fixed one).
    CmosRtc(
        std::uint64_t low_bytes, std::uint64_t high_bytes,
        std::function<std::time_t()> now = [] { return std::time(nullptr); });

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    std::uint8_t read_register(std::uint8_t index);
    std::uint8_t encode(int value) const;  // BCD or binary per status B

    std::function<std::time_t()> now_;
    std::array<std::uint8_t, 128> ram_{};
    std::uint8_t index_ = 0;
};

}  // namespace ukvm
