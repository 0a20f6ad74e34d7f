// DS, the data store: a registry of service name -> endpoint. RS publishes every service
// it starts or restarts (and, when DS itself is restarted, all of them again), so a
// lookup always names the current incarnation. Anyone may look up; only RS may publish.
#include "sys.hpp"

using namespace ukvm::kernel;

namespace {

struct Entry {
    char name[kNameMax];
    Endpoint endpoint;
};
constexpr int kMaxEntries = 32;
Entry g_entries[kMaxEntries];

Entry* find_entry(const char* name, bool create) {
    Entry* free_entry = nullptr;
    for (Entry& e : g_entries) {
        if (e.name[0] && strncmp(e.name, name, kNameMax) == 0) return &e;
        if (!e.name[0] && !free_entry) free_entry = &e;
    }
    return create ? free_entry : nullptr;
}

int32_t handle(Message& m) {
    char name[kNameMax];
    memcpy(name, m.bytes, kNameMax);
    name[kNameMax - 1] = '\0';
    if (!name[0]) return kEInval;
    switch (m.m_type) {
        case proto::kDsPublish: {
            if (m.m_source != user::parent()) return kEPerm;  // RS started us
            Entry* e = find_entry(name, true);
            if (!e) return kENoMem;
            memcpy(e->name, name, kNameMax);
            e->endpoint = static_cast<Endpoint>(m.i64[2]);
            return kOk;
        }
        case proto::kDsLookup: {
            Entry* e = find_entry(name, false);
            if (!e) return kESrch;
            m.i64[2] = e->endpoint;
            return kOk;
        }
        default:
            return kENoSys;
    }
}

}  // namespace

int main(const char*) {
    user::serve(handle);
}
