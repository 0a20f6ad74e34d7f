// The servers' request protocols: message types and payload layouts for PM, DS, RS and
// TTY. Requests are SENDREC; the reply's m_type is the result (>= 0) or a negative error.
#pragma once

#include <ukvm/kernel.h>

namespace proto {

using ukvm::kernel::kEInval;
using ukvm::kernel::kNameMax;
using ukvm::kernel::kSpawnArgsMax;
using ukvm::kernel::kSpawnArgsOffset;

// Error numbers the servers add to the kernel's (Linux values, negated).
inline constexpr int32_t kEChild = -10;

// PM, the process manager.
enum PmCall : int32_t {
    kPmSpawn = 0x100,      // bytes[0..16) program, bytes[16..56) args -> pid of a new child
    kPmWait = 0x101,       // i64[0] pid, or -1 for any child -> pid; i64[1] reason, i64[2] detail
                           // (ukvm::kernel::ExitReason); kEChild when there is no such child
    kPmGetPid = 0x102,     // -> pid; i64[0] parent's pid
    kPmKill = 0x103,       // i64[0] pid (-pid: the children pid started), i64[1] signal
                           // (0: only check the pid) -> 0
    kPmProcs = 0x104,      // i64[0] slot -> ukvm::kernel::ProcInfo in bytes, pid at kPidOffset
    kPmPowerOff = 0x105,   // i64[0] status, i64[1] 1: reboot instead: ends the VM (user
                           // processes get SIGTERM, then SIGKILL after a grace period)
    kPmFork = 0x106,       // -> the child's pid in the parent, 0 in the child
    kPmSleep = 0x107,      // u64[0] nanoseconds -> 0 when they have passed
    kPmExec = 0x108,       // bytes[0..16) program, bytes[16..48) args: the caller now runs
                           // it (same pid); a reply only on failure
    kPmSigAction = 0x109,  // i64[0] signal, u64[1] handler (kSigDefault, kSigIgnore or an
                           // address), u64[2] restorer -> 0; u64[1] the previous handler
};

// Signals (Linux numbers). Default action: terminate, except kSigChld (ignored); kSigKill
// cannot be caught or ignored.
inline constexpr int kSigHup = 1, kSigInt = 2, kSigQuit = 3, kSigKill = 9, kSigUsr1 = 10,
                     kSigSegv = 11, kSigUsr2 = 12, kSigPipe = 13, kSigAlrm = 14, kSigTerm = 15,
                     kSigChld = 17;
inline constexpr int kNrSignals = 32;  // 1 .. 31
inline constexpr uint64_t kSigDefault = 0, kSigIgnore = 1;
inline constexpr size_t kPidOffset = 48;  // kPmProcs: int32 pid, int32 parent's pid

// DS, the data store: service name -> endpoint. Only RS publishes.
enum DsCall : int32_t {
    kDsPublish = 0x200,  // bytes[0..16) name, i64[2] endpoint -> 0
    kDsLookup = 0x201,   // bytes[0..16) name -> 0; i64[2] endpoint (kESrch if unknown)
};

// TTY, the console driver.
enum TtyCall : int32_t {
    kTtyRead = 0x400,           // -> byte count; the bytes (up to one line) at kTtyDataOffset
    kTtySetForeground = 0x401,  // i64[0] pid (0: none) -> 0: ^C sends it SIGINT through PM
                                // (-pid: pid's children, the shell's job)
    kTtyInput = 0x402,          // u64[0] count, the bytes at kTtyDataOffset -> 0: typed input from
                                // another console device (vcons, the virtio-console driver)
    // Console output. TTY is its one writer: programs' output and TTY's echo go into one
    // buffer, which the console driver (vcons) takes out in batches for its device; without
    // a driver TTY writes it through the VMM endpoint (the hypercall console, COM1 on QEMU).
    kTtyWrite = 0x403,   // u64[0] count (<= kTtyWriteMax), u64[1] a grant of the bytes for TTY
                         // (kGrantRead), or kTtyInline with the bytes at kTtyInlineOffset
                         // (count <= kTtyInlineMax) -> 0 once TTY has them; u64[0] kTtyWriteSelf:
                         // TTY has no driver and nothing queued, the caller writes them itself
    kTtyOutput = 0x404,  // from the console driver: u64[0] a grant of its transmit buffers
                         // (kGrantWrite for TTY), u64[1] room, u64[2] bytes its device has sent
                         // since the last call, u64[3] offset in the grant -> bytes copied in
                         // at that offset (0: none now; TTY
                         // notifies the driver when there are more). The first call makes the
                         // caller TTY's driver; bytes not yet sent go to a new driver again.
    kTtyDrain = 0x405,   // -> 0 once every byte queued before it is out (tcdrain)
};
inline constexpr size_t kTtyDataOffset = 8;
inline constexpr size_t kTtyDataMax = 56 - kTtyDataOffset;
inline constexpr size_t kTtyWriteMax = 4096;
inline constexpr uint64_t kTtyInline = ~uint64_t{0};
inline constexpr size_t kTtyInlineOffset = 16;
inline constexpr size_t kTtyInlineMax = 56 - kTtyInlineOffset;
inline constexpr uint64_t kTtyWriteSelf = 1;

// Block-device drivers (virtio-blk: published in DS as "vblk0", "vblk1", ... by RS). The
// data moves through a grant the caller makes for the driver (kGrantWrite for reads,
// kGrantRead for writes): the driver safecopies into or out of it. Offsets and lengths are
// multiples of kBdevSectorSize; one request moves at most kBdevMaxTransfer bytes. Errors:
// kEIo (device error), kERoFs (write or flush on a read-only disk), kEInval (range,
// alignment, length), kENoDev (no such disk behind this driver).
enum BdevCall : int32_t {
    kBdevOpen = 0x500,   // -> 0; u64[0] size in bytes, u64[1] flags (kBdevReadOnly)
    kBdevRead = 0x501,   // u64[0] byte offset, u64[1] length, u64[2] grant id, u64[3] offset
                         // in the grant (0 for a grant per request) -> bytes read
    kBdevWrite = 0x502,  // u64[0] byte offset, u64[1] length, u64[2] grant id, u64[3] offset
                         // in the grant -> bytes written
    kBdevFlush = 0x503,  // -> 0 once every write answered before it is on stable storage
    kBdevGetId = 0x504,  // -> length; the serial (up to 20 bytes, no NUL) in bytes[8..28)
};
inline constexpr uint64_t kBdevReadOnly = 1;
inline constexpr uint64_t kBdevSectorSize = 512;
inline constexpr uint64_t kBdevMaxTransfer = 64 * 1024;
inline constexpr int32_t kEIo = -5;
inline constexpr int32_t kENoDev = -19;
inline constexpr int32_t kERoFs = -30;

// PCI, the bus server (published in DS as "pci"): enumerates bus 0 at start and hands a
// function to a driver its table allows (by the driver's program name and the function's
// vendor and device IDs). A claim makes the kernel grant the caller every memory BAR of
// the function (kSysMapPhys) and its interrupt (kSysIrqCtl). A handle is
// bus << 8 | device << 3 | function. A claimed function belongs to its driver until that
// process dies; a restarted driver claims it again.
enum PciCall : int32_t {
    kPciClaim = 0x600,        // u64[0] vendor, u64[1] device ID, u64[2] n: the n-th such function
                              // -> 0; u64[0] handle, u64[1] IOAPIC input (kPciNoIrq: none), u64[2]
                              // class code << 8 | revision. kENoDev: no n-th function; kEPerm:
                              // not this driver's; kEBusy: a live driver has it
    kPciBar = 0x601,          // u64[0] handle, u64[1] BAR index 0..5 -> 0; u64[0] address, u64[1]
                              // size (0: no BAR there; a 64-bit BAR's upper half reads as size 0),
                              // u64[2] kPciBar* flags
    kPciConfigRead = 0x602,   // u64[0] handle, u64[1] offset, u64[2] width 1/2/4 -> 0; u64[0]
    kPciConfigWrite = 0x603,  // u64[0] handle, u64[1] offset, u64[2] width, u64[3] value -> 0;
                              // only the claiming driver, only the command register (0x04)
                              // and offsets >= 0x40 (capabilities); BARs stay where they are
    kPciList = 0x604,  // u64[0] n -> 0; the n-th function: u64[0] handle, u64[1] vendor << 16 |
                       // device, u64[2] class code << 8 | revision, u64[3] IOAPIC input,
                       // i64[4] owner endpoint (kNone); kENoDev past the last
};
inline constexpr uint64_t kPciNoIrq = 0xff;
inline constexpr uint64_t kPciBarIo = 1;        // an I/O-port BAR (not granted: no port grants)
inline constexpr uint64_t kPciBar64 = 2;        // a 64-bit memory BAR (uses the next index too)
inline constexpr uint64_t kPciBarPrefetch = 4;  // prefetchable memory

// VFS, the file system switch (published in DS as "vfs"): per-process file descriptors
// over the root file system that MFS serves. Paths are absolute, at most kVfsPathMax
// bytes, and move like data through a grant the caller makes for VFS: path calls take
// u64[0] grant, u64[1] length and their own arguments from u64[2]; fd calls take i64[0]
// fd, then u64[1] grant and u64[2] length for data (kGrantWrite to read, kGrantRead to
// write). Errors: Linux errno values, negated (kENoEnt, kEBadF, kERoFs, ...); kENoDev when
// there is no root file system (no disk).
enum VfsCall : int32_t {
    kVfsOpen = 0x700,       // path, u64[2] kO* flags, u64[3] permissions -> fd
    kVfsClose = 0x701,      // fd -> 0
    kVfsRead = 0x702,       // fd, grant, length -> bytes (0 at the end); the grant is
                            // made for MFS ("mfs" in DS), which copies straight from or
    kVfsWrite = 0x703,      // into it: one copy of the data, not two. fd, grant, length -> bytes
    kVfsLseek = 0x704,      // fd, i64[1] offset, i64[2] whence (0 set, 1 cur, 2 end) -> 0;
                            // i64[0] the new offset
    kVfsStat = 0x705,       // path -> 0; FileStat in bytes
    kVfsFstat = 0x706,      // fd -> 0; FileStat in bytes
    kVfsMkdir = 0x707,      // path, u64[2] permissions -> 0
    kVfsRmdir = 0x708,      // path -> 0
    kVfsUnlink = 0x709,     // path -> 0
    kVfsRename = 0x70a,     // path "old\0new" (length covers both) -> 0
    kVfsGetdents = 0x70b,   // fd of a directory, grant, length -> bytes of Dirent records
    kVfsTruncate = 0x70c,   // path, u64[2] size -> 0
    kVfsFtruncate = 0x70d,  // fd, u64[1] size -> 0
    kVfsFsync = 0x70e,      // fd -> 0 once the file system is on stable storage
    kVfsSync = 0x70f,       // -> 0, the same for everything
    kVfsStatfs = 0x710,     // -> 0; FsStat in bytes
    kVfsFork = 0x720,       // from PM: i64[0] parent, i64[1] child endpoint: copy the fds
    kVfsExit = 0x721,       // from PM: i64[0] endpoint: close its fds
};
inline constexpr size_t kVfsPathMax = 255;
inline constexpr int kVfsOpenMax = 16;  // fds per process
// Open flags (Linux values).
inline constexpr uint64_t kORdOnly = 0, kOWrOnly = 1, kORdWr = 2, kOAccMode = 3;
inline constexpr uint64_t kOCreat = 0100, kOExcl = 0200, kOTrunc = 01000, kOAppend = 02000;
inline constexpr uint64_t kODirectory = 0200000;
struct FileStat {
    uint32_t ino;
    uint16_t mode;  // type and permissions, as in ukvm/minixfs.h
    uint16_t nlinks;
    uint32_t size;
    uint32_t mtime;
    uint16_t uid, gid;
};
struct FsStat {
    uint32_t block_size;
    uint32_t blocks, free_blocks;  // data zones
    uint32_t inodes, free_inodes;
    uint32_t read_only;
};
struct Dirent {  // kVfsGetdents' records
    uint32_t ino;
    uint16_t mode;  // 0: unknown
    uint16_t pad;
    char name[64];  // NUL-terminated
};
inline constexpr int32_t kENoEnt = -2;
inline constexpr int32_t kEBadF = -9;
inline constexpr int32_t kEExist = -17;
inline constexpr int32_t kENotDir = -20;
inline constexpr int32_t kEIsDir = -21;
inline constexpr int32_t kEMFile = -24;
inline constexpr int32_t kEFBig = -27;
inline constexpr int32_t kENoSpc = -28;
inline constexpr int32_t kENameTooLong = -36;
inline constexpr int32_t kENotEmpty = -39;

// MFS, the MINIX v3 file system server ("mfs"): serves the root file system from the
// block driver "vblk0", for VFS only. Path requests: u64[0] grant, u64[1] length (VFS's
// buffer). Data: u64[3] a grant of VFS's buffer. Inodes are MINIX inode numbers.
enum MfsCall : int32_t {
    kMfsLookup = 0x780,    // path, u64[4] 1: for an open (hold the inode) -> 0; FileStat
    kMfsCreate = 0x781,    // path, u64[2] permissions, u64[3] exclusive, u64[4] -> 0; FileStat
    kMfsMkdir = 0x782,     // path, u64[2] permissions -> 0
    kMfsUnlink = 0x783,    // path -> 0
    kMfsRmdir = 0x784,     // path -> 0
    kMfsRename = 0x785,    // path "old\0new" -> 0
    kMfsStat = 0x786,      // u64[0] inode -> 0; FileStat
    kMfsRead = 0x787,      // u64[0] inode, u64[1] offset, u64[2] length, u64[3] grant, i64[5]
                           // its granter (a user's grant for MFS; 0: VFS's own) -> bytes
    kMfsWrite = 0x788,     // the same, u64[4] 1: append (at the end) -> bytes; u64[0] the
                           // offset after the last byte written
    kMfsTruncate = 0x789,  // u64[0] inode, u64[1] size -> 0
    kMfsGetdents = 0x78a,  // u64[0] inode, u64[1] position, u64[2] length, u64[3] grant ->
                           // bytes of Dirent records; u64[0] the next position
    kMfsSync = 0x78b,      // -> 0 once every dirty block is written and the disk flushed
    kMfsStatfs = 0x78c,    // -> 0; FsStat
    kMfsPut = 0x78d,       // u64[0] inode: the last close of an open -> 0 (an unlinked
                           // inode is freed now)
};

// RS heartbeats are notifications: RS notifies a service, the service notifies RS back
// (both never block, so a hung service cannot stall RS).

}  // namespace proto

#include "proto_inet.hpp"  // INET's sockets and the network-driver protocol
