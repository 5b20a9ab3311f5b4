# Cross build for linux-aarch64 on an x86-64 Debian/Ubuntu host:
#   apt-get install g++-aarch64-linux-gnu qemu-user      (native/cross/ensure-toolchain.sh does it)
#   cmake -S . -B target/cmake-linux-aarch64 -DSEQ4J_PLATFORM=linux-aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=native/cmake/toolchains/linux-aarch64.cmake -DSEQ4J_DEPS_DIR=...
# ctest runs the test executables under qemu-aarch64 with Debian's aarch64 sysroot (-L), which
# holds the loader, libc and libstdc++ the tests need; oneDNN/OpenBLAS come from the bytedeco
# linux-arm64 JARs beside libseq4j.so.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SEQ4J_CROSS_TRIPLE aarch64-linux-gnu CACHE STRING "cross compiler prefix")
set(SEQ4J_CROSS_SYSROOT /usr/${SEQ4J_CROSS_TRIPLE} CACHE PATH "target libraries for qemu -L")
find_program(CMAKE_CXX_COMPILER NAMES ${SEQ4J_CROSS_TRIPLE}-g++ REQUIRED)
find_program(CMAKE_C_COMPILER NAMES ${SEQ4J_CROSS_TRIPLE}-gcc)
find_program(CMAKE_READELF NAMES ${SEQ4J_CROSS_TRIPLE}-readelf readelf)
find_program(SEQ4J_QEMU NAMES qemu-aarch64 qemu-aarch64-static)
if(SEQ4J_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SEQ4J_QEMU};-L;${SEQ4J_CROSS_SYSROOT}")
else()
  message(WARNING "qemu-aarch64 not found (apt-get install qemu-user): the build works, ctest cannot "
                  "run the aarch64 tests")
endif()

# Search the sysroot for libraries and headers, the host for programs.
set(CMAKE_FIND_ROOT_PATH ${SEQ4J_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
