// Memory grants: a process lets one other process read and/or write a byte range of its
// memory; the grantee copies through the kernel (safecopy) within the grant's bounds and
// rights, until the granter revokes it or dies.
#pragma once

#include "proc.hpp"

namespace kernel::grant {

// Returns the grant id (>= 0) or an error.
int32_t create(Proc* granter, Endpoint grantee, UserAddr addr, uint64_t len, uint64_t rights);
int32_t revoke(Proc* granter, int32_t id);
void revoke_all(Proc* granter);
// Copies len bytes between grant (granter, id) at offset and the caller's memory at mine.
// to_grant: write into the granted range (needs kGrantWrite), else read it (kGrantRead).
int32_t safecopy(Proc* caller, Endpoint granter, int32_t id, uint64_t offset, UserAddr mine,
                 uint64_t len, bool to_grant);

// The physical ranges behind len bytes at offset of grant (granter, id), which the caller
// must hold with `rights`; adjacent pages merged. The number of ranges, or an error
// (kE2Big when more than max are needed).
int32_t umap(Proc* caller, Endpoint granter, int32_t id, uint64_t offset, uint64_t len,
             uint64_t rights, ukvm::kernel::PhysRange* out, int max);

}  // namespace kernel::grant
