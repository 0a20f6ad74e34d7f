# Freestanding guest code built with the host compiler: no libc, no exceptions, no RTTI,
# no red zone (interrupts and syscalls reuse the stack), no SSE (the kernel does not save it).
set(UKVM_GUEST_COMPILE_OPTIONS
    -ffreestanding -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
    -mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-builtin -nostdinc++
    -Wall -Wextra)
set(UKVM_GUEST_LINK_OPTIONS
    -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000
    -Wl,-z,noexecstack)

# ukvm_guest_target(TARGET [LINKER_SCRIPT script]): make an existing executable or
# library target freestanding guest code.
function(ukvm_guest_target target)
  cmake_parse_arguments(G "" "LINKER_SCRIPT" "" ${ARGN})
  target_compile_options(${target} PRIVATE ${UKVM_GUEST_COMPILE_OPTIONS})
  target_link_libraries(${target} PRIVATE ukvm_abi)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    target_link_options(${target} PRIVATE ${UKVM_GUEST_LINK_OPTIONS})
    target_link_libraries(${target} PRIVATE gcc)
    if(G_LINKER_SCRIPT)
      target_link_options(${target} PRIVATE -Wl,-T,${G_LINKER_SCRIPT})
      set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${G_LINKER_SCRIPT})
    endif()
  endif()
endfunction()

# ukvm_multiboot_image(TARGET OUTPUT): a Multiboot v1 image from a 64-bit guest ELF.
# QEMU's -kernel refuses ELF64 multiboot images, so the loadable image is the same
# code re-wrapped as ELF32 (every address is below 4 GiB); ukvm boots either form.
function(ukvm_multiboot_image target output)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_OBJCOPY} -O elf32-i386 $<TARGET_FILE:${target}> ${output}
    DEPENDS ${target}
    COMMENT "Multiboot image ${output}")
  add_custom_target(${target}_image ALL DEPENDS ${output})
endfunction()
