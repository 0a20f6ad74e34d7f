// blkbench: block-device throughput as a client sees it (bdev::Client -> vblk -> the
// device). Usage: blkbench [MIB [DRIVER]] (default 8 vblk0). Sequential reads and writes
// of MIB MiB (at most the disk) in kBdevMaxTransfer requests, then random 4 KiB reads and
// writes (sector-aligned offsets from a fixed LCG) for as many bytes / 16. Overwrites the
// disk. Prints one parsable line for bench/:
//   bench: seq_read_kibps=N seq_write_kibps=N rand_read_iops=N rand_write_iops=N ...
#include "bdev.hpp"
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr uint64_t kChunk = proto::kBdevMaxTransfer;
constexpr uint64_t kSmall = 4096;

constexpr uint64_t kNsPerS = 1000000000;

uint64_t kibps(uint64_t bytes, uint64_t ns) {
    return ns ? bytes * kNsPerS / 1024 / ns : 0;
}
uint64_t per_s(uint64_t count, uint64_t ns) {
    return ns ? count * kNsPerS / ns : 0;
}

}  // namespace

int main(const char* args) {
    int64_t mib = 8;
    char name[16] = "vblk0";
    char first[16] = {};
    size_t n = 0;
    while (args[n] && args[n] != ' ' && n < 15) first[n] = args[n], ++n;
    if (first[0] && !sys::parse_int(first, &mib)) mib = 8;
    while (args[n] == ' ') ++n;
    if (args[n]) strncpy(name, args + n, sizeof name - 1);
    auto* buf = static_cast<uint8_t*>(malloc(kChunk));
    bdev::Client d(name);
    d.attach(buf, kChunk);  // one grant for every request, as a file system's cache would
    uint64_t size = 0, flags = 0;
    if (d.open(&size, &flags) != kOk || size < kChunk || (flags & proto::kBdevReadOnly)) {
        print("blkbench: %s: no writable disk of at least 64 KiB\n", name);
        return 1;
    }
    uint64_t total = static_cast<uint64_t>(mib > 0 ? mib : 8) << 20;
    if (total > size) total = size / kChunk * kChunk;
    for (uint64_t i = 0; i < kChunk; ++i) buf[i] = static_cast<uint8_t>(i * 13);
    int errors = 0;

    uint64_t t0 = user::uptime_ns();
    for (uint64_t at = 0; at < total; at += kChunk)
        errors += d.write(at, buf, kChunk) != int32_t(kChunk);
    errors += d.flush() != kOk;
    uint64_t t1 = user::uptime_ns();
    for (uint64_t at = 0; at < total; at += kChunk)
        errors += d.read(at, buf, kChunk) != int32_t(kChunk);
    uint64_t t2 = user::uptime_ns();

    uint64_t ops = total / 16 / kSmall, seed = 12345, sectors = size / kSmall;
    auto next = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return (seed >> 33) % sectors * kSmall;
    };
    uint64_t t3 = user::uptime_ns();
    for (uint64_t i = 0; i < ops; ++i) errors += d.read(next(), buf, kSmall) != int32_t(kSmall);
    uint64_t t4 = user::uptime_ns();
    for (uint64_t i = 0; i < ops; ++i) errors += d.write(next(), buf, kSmall) != int32_t(kSmall);
    errors += d.flush() != kOk;
    uint64_t t5 = user::uptime_ns();

    print(
        "blkbench: %lu KiB sequential in %lu-byte requests, %lu random %lu-byte requests, "
        "%d errors\n",
        total >> 10, kChunk, ops, kSmall, errors);
    print(
        "bench: seq_read_kibps=%lu seq_write_kibps=%lu rand_read_iops=%lu rand_write_iops=%lu "
        "bytes=%lu errors=%d\n",
        kibps(total, t2 - t1), kibps(total, t1 - t0), per_s(ops, t4 - t3), per_s(ops, t5 - t4),
        total, errors);
    return errors ? 1 : 0;
}
