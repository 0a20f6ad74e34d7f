// A client of a block-device driver (proto::kBdev*), for the file system and tests. The
// driver is found in DS by name ("vblk0"); each request grants the driver the caller's
// buffer for its duration. A request that meets a dead driver (kEDeadSrcDst: it was
// killed, perhaps mid-request) is sent again, with a fresh grant, to the driver RS starts
// in its place: reads and writes are idempotent, so the caller sees the request complete.
// Waits between attempts sleep on a CLOCK alarm (servers) or through PM (users); gives up
// with kEDeadSrcDst after about 10 s without a live driver.
#pragma once

#include "proto.hpp"
#include "user.hpp"

namespace bdev {

class Client {
public:
    explicit Client(const char* name);
    // -> 0; the size in bytes and kBdevReadOnly in *flags.
    int32_t open(uint64_t* size, uint64_t* flags);
    // offset and len multiples of kBdevSectorSize, len <= kBdevMaxTransfer -> len or error.
    int32_t read(uint64_t offset, void* buf, uint64_t len);
    int32_t write(uint64_t offset, const void* buf, uint64_t len);
    int32_t flush();
    // The serial, NUL-terminated (out holds at least 21 bytes) -> its length.
    int32_t get_id(char* out);
    int retries() const { return retries_; }  // requests sent again to a restarted driver

    // A region (e.g. a file system's block cache) the driver keeps a grant for (read and
    // write; made again for a restarted driver): requests whose buffer lies inside it
    // save the grant create and revoke, two kernel calls each.
    void attach(void* base, uint64_t len);

private:
    int32_t request(ukvm::kernel::Message* m, const void* buf, uint64_t len, uint64_t rights);
    char name_[ukvm::kernel::kNameMax] = {};
    ukvm::kernel::Endpoint driver_ = ukvm::kernel::kNone;
    int retries_ = 0;
    uint64_t region_ = 0, region_len_ = 0;
    int32_t region_grant_ = -1;  // for region_for_
    ukvm::kernel::Endpoint region_for_ = ukvm::kernel::kNone;
};

}  // namespace bdev
