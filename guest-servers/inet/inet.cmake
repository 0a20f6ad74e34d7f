# Included by guest-servers/CMakeLists.txt. INET: lwIP (Debian's source package, unpacked by scripts/setup) compiled freestanding
# into the guest's TCP/IP server. lwIP's C files see only the compiler's own headers
# (stddef.h, stdint.h, stdarg.h) and the few libc declarations in libc/.
set(UKVM_LWIP_DIR /var/cache/ukvm/lwip CACHE PATH "lwIP sources (Debian's lwip source package)")
if(NOT EXISTS ${UKVM_LWIP_DIR}/src/core/tcp.c)
  message(FATAL_ERROR "lwIP sources not found in UKVM_LWIP_DIR=${UKVM_LWIP_DIR}: run scripts/setup "
                      "(it fetches them with apt-get source lwip) or set -DUKVM_LWIP_DIR")
endif()

set(_lw ${UKVM_LWIP_DIR}/src)
add_library(ukvm_lwip STATIC
  ${_lw}/core/def.c ${_lw}/core/inet_chksum.c ${_lw}/core/init.c ${_lw}/core/ip.c
  ${_lw}/core/mem.c ${_lw}/core/memp.c ${_lw}/core/netif.c ${_lw}/core/pbuf.c
  ${_lw}/core/raw.c ${_lw}/core/tcp.c ${_lw}/core/tcp_in.c ${_lw}/core/tcp_out.c
  ${_lw}/core/timeouts.c ${_lw}/core/udp.c
  ${_lw}/core/ipv4/etharp.c ${_lw}/core/ipv4/icmp.c ${_lw}/core/ipv4/ip4.c
  ${_lw}/core/ipv4/ip4_addr.c ${_lw}/core/ipv4/ip4_frag.c ${_lw}/core/ipv4/dhcp.c
  ${_lw}/netif/ethernet.c)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
                OUTPUT_VARIABLE _cc_include OUTPUT_STRIP_TRAILING_WHITESPACE)
target_include_directories(ukvm_lwip SYSTEM PUBLIC ${_lw}/include)
target_include_directories(ukvm_lwip PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/inet/port)
target_include_directories(ukvm_lwip PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/inet/libc)
target_link_libraries(ukvm_lwip INTERFACE ukvm_user)  # memcpy and friends
target_compile_options(ukvm_lwip PRIVATE
  -ffreestanding -nostdinc -isystem ${_cc_include} -fno-builtin -mno-red-zone
  -mgeneral-regs-only -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables
  -fno-unwind-tables -O2 -w)

ukvm_user_program(inet inet/inet.cpp)
target_link_libraries(inet PRIVATE ukvm_lwip)

ukvm_user_program(vnet drivers/vnet.cpp)  # the virtio-net driver
ukvm_user_program(nettest programs/nettest.cpp)
foreach(tool ifconfig ping echod echoc httpd)
  ukvm_user_program(${tool} programs/${tool}.cpp)
endforeach()
