#include "vmm/devices/cmos_rtc.hpp"

#include <algorithm>

namespace ukvm {

namespace {
enum Index : std::uint8_t {
    kSeconds = 0x00,
    kMinutes = 0x02,
    kHours = 0x04,
    kWeekday = 0x06,
    kDayOfMonth = 0x07,
    kMonth = 0x08,
    kYear = 0x09,
    kStatusA = 0x0A,
    kStatusB = 0x0B,
    kStatusC = 0x0C,
    kStatusD = 0x0D,
    kBaseMemLow = 0x15,  // KiB below 640 KiB
    kBaseMemHigh = 0x16,
    kExtMemLow = 0x17,  // KiB from 1 MiB, capped at 63 MiB
    kExtMemHigh = 0x18,
    kExtMem2Low = 0x30,  // the same, as POST reports it
    kExtMem2High = 0x31,
    kCentury = 0x32,
    kHighMemLow = 0x34,  // 64 KiB units from 16 MiB up to the hole
    kHighMemHigh = 0x35,
    kAbove4gLow = 0x5B,  // 64 KiB units from 4 GiB (3 bytes, as QEMU's firmware reads)
    kAbove4gMid = 0x5C,
    kAbove4gHigh = 0x5D,
};

constexpr std::uint8_t kStatusADefault = 0x26;  // 32.768 kHz base, 1024 Hz; UIP never set
constexpr std::uint8_t kStatusB24Hour = 0x02;
constexpr std::uint8_t kStatusBBinary = 0x04;
constexpr std::uint8_t kStatusDValid = 0x80;  // battery good, RAM valid
constexpr std::uint64_t kMiB = 1ull << 20;

void put16(std::array<std::uint8_t, 128>& ram, std::uint8_t low, std::uint64_t value) {
    value = std::min<std::uint64_t>(value, 0xFFFF);
    ram[low] = static_cast<std::uint8_t>(value);
    ram[low + 1] = static_cast<std::uint8_t>(value >> 8);
}
}  // namespace

CmosRtc::CmosRtc(std::uint64_t low_bytes, std::uint64_t high_bytes,
                 std::function<std::time_t()> now)
    : now_(std::move(now)) {
    ram_[kStatusA] = kStatusADefault;
    ram_[kStatusB] = kStatusB24Hour;  // BCD, 24-hour, as PC firmware leaves it
    ram_[kStatusD] = kStatusDValid;
    put16(ram_, kBaseMemLow, 640);
    std::uint64_t ext_kib = low_bytes > kMiB ? std::min(low_bytes - kMiB, 63 * kMiB) / 1024 : 0;
    put16(ram_, kExtMemLow, ext_kib);
    put16(ram_, kExtMem2Low, ext_kib);
    std::uint64_t high_units = low_bytes > 16 * kMiB ? (low_bytes - 16 * kMiB) >> 16 : 0;
    put16(ram_, kHighMemLow, high_units);
    std::uint64_t above4g = high_bytes >> 16;
    ram_[kAbove4gLow] = static_cast<std::uint8_t>(above4g);
    ram_[kAbove4gMid] = static_cast<std::uint8_t>(above4g >> 8);
    ram_[kAbove4gHigh] = static_cast<std::uint8_t>(above4g >> 16);
}

void CmosRtc::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::uint8_t v = offset == 1 ? read_register(index_) : 0xFF;  // the index port reads 0xFF
    std::fill(data.begin(), data.end(), v);
}

void CmosRtc::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (data.empty()) return;
    if (offset == 0) {
        index_ = data[0] & 0x7F;  // bit 7 masks NMI; there is no NMI source to mask
        return;
    }
    switch (index_) {
        case kStatusA:
            ram_[kStatusA] = static_cast<std::uint8_t>(data[0] & 0x7F);  // UIP is read-only
            break;
        case kStatusC:
        case kStatusD:
            break;  // read-only
        default:
            ram_[index_] = data[0];
    }
}

std::uint8_t CmosRtc::encode(int value) const {
    if (ram_[kStatusB] & kStatusBBinary) return static_cast<std::uint8_t>(value);
    return static_cast<std::uint8_t>(((value / 10) << 4) | (value % 10));
}

std::uint8_t CmosRtc::read_register(std::uint8_t index) {
    std::tm tm{};
    if (index <= kYear || index == kCentury) {
        std::time_t t = now_();
        gmtime_r(&t, &tm);
    }
    switch (index) {
        case kSeconds:
            return encode(tm.tm_sec);
        case kMinutes:
            return encode(tm.tm_min);
        case kHours: {
            if (ram_[kStatusB] & kStatusB24Hour) return encode(tm.tm_hour);
            // 12-hour mode: 1..12 with bit 7 for PM.
            int h12 = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
            return static_cast<std::uint8_t>(encode(h12) | (tm.tm_hour >= 12 ? 0x80 : 0));
        }
        case kWeekday:
            return encode(tm.tm_wday + 1);
        case kDayOfMonth:
            return encode(tm.tm_mday);
        case kMonth:
            return encode(tm.tm_mon + 1);
        case kYear:
            return encode((tm.tm_year + 1900) % 100);
        case kCentury:
            return encode((tm.tm_year + 1900) / 100);
        case kStatusC: {
            std::uint8_t v = ram_[kStatusC];
            ram_[kStatusC] = 0;  // reading C acknowledges the (never raised) interrupt flags
            return v;
        }
        default:
            return ram_[index];  // alarms, status A/B/D, memory sizes, free CMOS RAM
    }
}

}  // namespace ukvm
