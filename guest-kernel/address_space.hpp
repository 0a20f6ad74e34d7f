// A process's 4-level page tables. Every address space shares the kernel's identity map
// of the first GiB (supervisor-only, PDPT entry 0) and the device window (entry 3); the
// user half [kUserBase, kUserTop) is the process's own (its first 2 MiB stay unmapped).
// User memory is only ever reached through translate(), which checks the user and write
// bits the way the MMU would, so a process can only hand the kernel its own memory.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <ukvm/kernel.h>

namespace kernel {

// An address in some process's user half. Deliberately not a pointer: the kernel must
// translate it through the owner's AddressSpace before touching the bytes.
struct UserAddr {
    uint64_t value = 0;
    UserAddr operator+(uint64_t n) const { return {value + n}; }
};

class AddressSpace {
public:
    enum Access : unsigned { kRead = 0, kWrite = 1 };

    bool create();   // false when out of memory
    void destroy();  // frees every page it owns
    uint64_t root() const { return pml4_; }
    bool valid() const { return pml4_ != 0; }
    // True until the first switch to this address space: its PCID may still hold a dead
    // predecessor's TLB entries, so that switch must flush them.
    bool fresh = true;

    enum MapFlags : unsigned {
        kWritable = 1,
        kExecutable = 2,  // without it the page is no-execute (when the CPU has NX)
        kOwned = 4,       // the frame belongs to this address space: destroy() frees it
        kUncached = 8,    // device memory
        kDma = 16,        // owned, and given to a device: freed only after a quarantine
    };
    // Maps one 4 KiB user page; false when out of memory or outside the user half.
    bool map(uint64_t va, uint64_t pa, unsigned flags);
    // Maps fresh zeroed pages over [va, va + len) (kOwned implied).
    bool map_zeroed(uint64_t va, uint64_t len, unsigned flags);
    // True if no page of [va, va + len) is mapped (and the range is in the user half).
    bool unmapped(uint64_t va, uint64_t len);
    // Fills this (new, empty) address space with copies of src's own user pages, same
    // addresses and rights; device mappings are not copied. false when out of memory.
    bool copy_from(const AddressSpace& src);
    // Removes the pages of [va, va + len), freeing owned frames; flushes the TLB entries
    // when this address space is the one loaded.
    void unmap(uint64_t va, uint64_t len);

    // The physical address behind a user address, or 0 when the page is absent or the
    // access is not allowed to ring 3.
    uint64_t translate(UserAddr va, Access access) const;

    // Copies between user memory and the kernel; false if any byte is inaccessible.
    bool copy_in(void* dst, UserAddr src, size_t n) const;
    bool copy_out(UserAddr dst, const void* src, size_t n) const;
    // Checks that [va, va + n) is accessible without copying.
    bool check(UserAddr va, size_t n, Access access) const;

private:
    uint64_t* walk(uint64_t va, bool create);  // the leaf PTE slot
    uint64_t pml4_ = 0;
};

// Copies n bytes from one process's memory to another's, page by page.
bool copy_between(const AddressSpace& src_as, UserAddr src, const AddressSpace& dst_as,
                  UserAddr dst, size_t n);

}  // namespace kernel
