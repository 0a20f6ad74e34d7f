// hello: the smoke-test guest. Prints what it was booted with and exits with the status
// from its command line ("exit=N", default 0).
#include "rt/rt.hpp"

extern "C" int guest_main(uint32_t magic, uint32_t) {
    rt::printf("Hello from ukvm guest\n");
    rt::printf("loader: %s (%s)\n", rt::loader_name(),
               rt::on_ukvm() ? "ukvm hypercalls" : "no hypercalls");
    if (magic != rt::kMultibootBootloaderMagic) rt::printf("bad multiboot magic 0x%x\n", magic);
    const uint64_t mem = rt::memory_bytes();
    rt::printf("memory: %lu MiB (%lu bytes)\n", mem >> 20, mem);
    rt::printf("cmdline: \"%s\"\n", rt::cmdline());

    const uint64_t now_ns = rt::realtime_ns();
    const rt::DateTime t = rt::to_datetime(now_ns / 1000000000);
    const bool time_ok = t.year >= 2024;
    rt::printf("time: %04u-%02u-%02u %02u:%02u:%02u UTC (%s)\n", t.year, t.month, t.day, t.hour,
               t.minute, t.second, time_ok ? "ok" : "BAD: before 2024");

    const rt::MultibootInfo* info = rt::multiboot_info();
    if (info != nullptr && (info->flags & rt::kInfoModules)) {
        auto* mods = reinterpret_cast<const rt::MultibootModule*>(uintptr_t(info->mods_addr));
        rt::printf("modules: %u\n", info->mods_count);
        for (uint32_t i = 0; i < info->mods_count; ++i) {
            const char* cmd =
                mods[i].cmdline ? reinterpret_cast<const char*>(uintptr_t(mods[i].cmdline)) : "";
            rt::printf("module %u: \"%s\" at 0x%x, %u bytes\n", i, cmd, mods[i].mod_start,
                       mods[i].mod_end - mods[i].mod_start);
        }
    }

    const int status = int(rt::cmdline_number("exit", 0));
    if (!time_ok) {
        rt::printf("exit: 1 (the wall clock is wrong)\n");
        return 1;
    }
    rt::printf("exit: %d\n", status);
    return status;
}
