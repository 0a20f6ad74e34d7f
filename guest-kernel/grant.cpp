#include "grant.hpp"

#include "frames.hpp"

namespace kernel::grant {

using namespace ukvm::kernel;

int32_t create(Proc* granter, Endpoint grantee, UserAddr addr, uint64_t len, uint64_t rights) {
    if (rights == 0 || (rights & ~(kGrantRead | kGrantWrite))) return kEInval;
    if (!proc::is_valid_endpoint(grantee) && grantee != kAny) return kEInval;
    // The range must be the granter's own memory (with the rights it grants) now.
    auto access = rights & kGrantWrite ? AddressSpace::kWrite : AddressSpace::kRead;
    if (len && !granter->as.check(addr, len, access)) return kEFault;
    for (int id = 0; id < kMaxGrants; ++id) {
        Grant& g = granter->grants[id];
        if (g.grantee != kNone) continue;
        g = {grantee, addr.value, len, rights};
        return id;
    }
    return kENoMem;
}

int32_t revoke(Proc* granter, int32_t id) {
    if (id < 0 || id >= kMaxGrants || granter->grants[id].grantee == kNone) return kEInval;
    granter->grants[id] = Grant{};
    return kOk;
}

void revoke_all(Proc* granter) {
    for (Grant& g : granter->grants) g = Grant{};
}

namespace {

// The caller's grant (granter_e, id), checked for rights and [offset, offset + len).
const Grant* lookup(Proc* caller, Endpoint granter_e, int32_t id, uint64_t offset, uint64_t len,
                    uint64_t rights, Proc** granter, int32_t* error) {
    *granter = proc::lookup(granter_e);
    if (!*granter || (*granter)->is_task()) return *error = kEDeadSrcDst, nullptr;
    if (id < 0 || id >= kMaxGrants) return *error = kEInval, nullptr;
    const Grant& g = (*granter)->grants[id];
    if (g.grantee == kNone) return *error = kEInval, nullptr;
    if (g.grantee != kAny && g.grantee != caller->endpoint) return *error = kEPerm, nullptr;
    if ((g.rights & rights) != rights) return *error = kEPerm, nullptr;
    if (offset > g.len || len > g.len - offset) return *error = kEInval, nullptr;
    return &g;
}

}  // namespace

int32_t umap(Proc* caller, Endpoint granter_e, int32_t id, uint64_t offset, uint64_t len,
             uint64_t rights, PhysRange* out, int max) {
    Proc* granter = nullptr;
    int32_t error = kOk;
    if (rights == 0 || (rights & ~(kGrantRead | kGrantWrite))) return kEInval;
    const Grant* g = lookup(caller, granter_e, id, offset, len, rights, &granter, &error);
    if (!g) return error;
    auto access = rights & kGrantWrite ? AddressSpace::kWrite : AddressSpace::kRead;
    UserAddr at{g->addr + offset};
    int n = 0;
    while (len) {
        uint64_t pa = granter->as.translate(at, access);
        if (!pa) return kEFault;
        uint64_t chunk = frames::kPageSize - (at.value & 0xfff);
        if (chunk > len) chunk = len;
        if (n && out[n - 1].addr + out[n - 1].len == pa) {
            out[n - 1].len += chunk;
        } else {
            if (n == max) return kE2Big;
            out[n++] = {pa, chunk};
        }
        at = at + chunk, len -= chunk;
    }
    return n;
}

int32_t safecopy(Proc* caller, Endpoint granter_e, int32_t id, uint64_t offset, UserAddr mine,
                 uint64_t len, bool to_grant) {
    Proc* granter = nullptr;
    int32_t error = kOk;
    const Grant* g = lookup(caller, granter_e, id, offset, len, to_grant ? kGrantWrite : kGrantRead,
                            &granter, &error);
    if (!g) return error;
    UserAddr theirs{g->addr + offset};
    bool ok = to_grant ? copy_between(caller->as, mine, granter->as, theirs, len)
                       : copy_between(granter->as, theirs, caller->as, mine, len);
    return ok ? kOk : kEFault;
}

}  // namespace kernel::grant
