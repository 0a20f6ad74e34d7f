#include "grant.hpp"

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

int32_t safecopy(Proc* caller, Endpoint granter_e, int32_t id, uint64_t offset, UserAddr mine,
                 uint64_t len, bool to_grant) {
    Proc* granter = proc::lookup(granter_e);
    if (!granter || granter->is_task()) return kEDeadSrcDst;
    if (id < 0 || id >= kMaxGrants) return kEInval;
    const Grant& g = granter->grants[id];
    if (g.grantee == kNone) return kEInval;
    if (g.grantee != kAny && g.grantee != caller->endpoint) return kEPerm;
    if (!(g.rights & (to_grant ? kGrantWrite : kGrantRead))) return kEPerm;
    if (offset > g.len || len > g.len - offset) return kEInval;
    UserAddr theirs{g.addr + offset};
    bool ok = to_grant ? copy_between(caller->as, mine, granter->as, theirs, len)
                       : copy_between(granter->as, theirs, caller->as, mine, len);
    return ok ? kOk : kEFault;
}

}  // namespace kernel::grant
