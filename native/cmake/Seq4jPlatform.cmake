# What each seq4j platform links against and ships, from the bytedeco oneDNN and OpenBLAS JARs.
#
# In:  SEQ4J_PLATFORM (linux-x86_64, linux-aarch64, macosx-arm64, windows-x86_64), SEQ4J_DEPS_DIR.
# Out: SEQ4J_BYTEDECO_PLATFORM  bytedeco's folder name for the platform (linux-aarch64 -> linux-arm64)
#      DNNL_DIR, OPENBLAS_DIR   org/bytedeco/{dnnl,openblas}/<bytedeco platform> under SEQ4J_DEPS_DIR
#      SEQ4J_OS, SEQ4J_ARCH     linux|macos|windows, x86_64|aarch64
#      SEQ4J_LINK_FILES         what libseq4j links against (import libraries on Windows)
#      SEQ4J_RUNTIME_FILES      "<file name>|<source path>" of every dependency library, in load order
#                               (dependencies of a library before it); libseq4j comes after them
#      SEQ4J_LICENSE_FILES      licence texts (native/licenses) of what SEQ4J_RUNTIME_FILES ships
#      SEQ4J_LIBRARY_NAME       libseq4j.so, libseq4j.dylib or seq4j.dll
#
# The file lists below were read off the 3.13-1.5.14 / 0.3.31-1.5.13 JARs of all four platforms
# (unzip -l; readelf -d, llvm-objdump --macho --private-headers, llvm-objdump -p for the NEEDED /
# LC_LOAD_DYLIB / DLL imports). Each library ships only when the chain from libseq4j needs it:
#   linux-x86_64   libdnnl.so.3 -> libgomp.so.1; libopenblas.so.0 -> libgfortran.so.5 -> libquadmath.so.0
#                  (libgcc_s.so.1, libstdc++.so.6, libm, libc come from the system: the JAR's
#                  libgcc_s.so.1 is not shipped, every glibc system has one and libstdc++ needs it)
#   linux-aarch64  as x86-64 without libquadmath (aarch64 libgfortran does not use it)
#   macosx-arm64   libdnnl.3.dylib -> @rpath/libomp.dylib; libopenblas.0.dylib needs only libSystem
#                  (its Fortran runtime is linked in; libgfortran/libquadmath/libgcc_s of the JAR are
#                  not needed); libc++ comes from the system
#   windows-x86_64 dnnl.dll -> VCOMP140.DLL (MSVC's OpenMP), MSVCP140, VCRUNTIME140(_1), UCRT;
#                  libopenblas.dll -> KERNEL32, msvcrt only (MinGW build, GCC runtime linked in).
#                  The JARs hold no vcomp140.dll; it comes from the MSVC redistributable folder of the
#                  build machine when found (SEQ4J_BUNDLE_VCOMP), else from the user's system.
#                  MSVCP140/VCRUNTIME140 are not shipped: every JDK for Windows carries them in bin/.

set(_seq4j_platforms linux-x86_64 linux-aarch64 macosx-arm64 windows-x86_64)
if(NOT SEQ4J_PLATFORM IN_LIST _seq4j_platforms)
  message(FATAL_ERROR "SEQ4J_PLATFORM=${SEQ4J_PLATFORM} is not one of: ${_seq4j_platforms}")
endif()

string(REGEX MATCH "^[a-z]+" _os "${SEQ4J_PLATFORM}")
string(REGEX REPLACE "^[a-z]+-" "" SEQ4J_ARCH "${SEQ4J_PLATFORM}")
if(_os STREQUAL "macosx")
  set(SEQ4J_OS macos)
  if(SEQ4J_ARCH STREQUAL "arm64")
    set(SEQ4J_ARCH aarch64)
  endif()
else()
  set(SEQ4J_OS ${_os})
endif()
if(SEQ4J_PLATFORM STREQUAL "linux-aarch64")
  set(SEQ4J_BYTEDECO_PLATFORM linux-arm64)
else()
  set(SEQ4J_BYTEDECO_PLATFORM ${SEQ4J_PLATFORM})
endif()

# The compiler must build for that platform: catch a linux-aarch64 build without the toolchain file.
set(_want_system_linux Linux)
set(_want_system_macos Darwin)
set(_want_system_windows Windows)
if(NOT CMAKE_SYSTEM_NAME STREQUAL "${_want_system_${SEQ4J_OS}}")
  message(FATAL_ERROR "SEQ4J_PLATFORM=${SEQ4J_PLATFORM} needs a target system ${_want_system_${SEQ4J_OS}}, "
                      "but CMake targets ${CMAKE_SYSTEM_NAME}. Cross builds need "
                      "-DCMAKE_TOOLCHAIN_FILE=native/cmake/toolchains/${SEQ4J_PLATFORM}.cmake.")
endif()
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _processor)
if(CMAKE_OSX_ARCHITECTURES)  # macOS: what is asked for, not the host
  string(TOLOWER "${CMAKE_OSX_ARCHITECTURES}" _processor)
endif()
if(_processor MATCHES "^(x86_64|amd64|x64)$")
  set(_processor x86_64)
elseif(_processor MATCHES "^(aarch64|arm64)$")
  set(_processor aarch64)
endif()
if(NOT _processor STREQUAL SEQ4J_ARCH)
  message(FATAL_ERROR "SEQ4J_PLATFORM=${SEQ4J_PLATFORM} needs a compiler for ${SEQ4J_ARCH}, but CMake "
                      "targets ${CMAKE_SYSTEM_PROCESSOR}. Cross builds need "
                      "-DCMAKE_TOOLCHAIN_FILE=native/cmake/toolchains/${SEQ4J_PLATFORM}.cmake.")
endif()

set(DNNL_DIR "${SEQ4J_DEPS_DIR}/org/bytedeco/dnnl/${SEQ4J_BYTEDECO_PLATFORM}")
set(OPENBLAS_DIR "${SEQ4J_DEPS_DIR}/org/bytedeco/openblas/${SEQ4J_BYTEDECO_PLATFORM}")
set(_licenses "${CMAKE_CURRENT_LIST_DIR}/../licenses")

if(SEQ4J_PLATFORM STREQUAL "linux-x86_64")
  set(SEQ4J_LIBRARY_NAME libseq4j.so)
  set(SEQ4J_LINK_FILES "${DNNL_DIR}/libdnnl.so.3" "${OPENBLAS_DIR}/libopenblas.so.0"
                       "${DNNL_DIR}/libgomp.so.1")
  set(SEQ4J_RUNTIME_FILES
    "libgomp.so.1|${DNNL_DIR}/libgomp.so.1"
    "libdnnl.so.3|${DNNL_DIR}/libdnnl.so.3"
    "libquadmath.so.0|${OPENBLAS_DIR}/libquadmath.so.0"
    "libgfortran.so.5|${OPENBLAS_DIR}/libgfortran.so.5"
    "libopenblas.so.0|${OPENBLAS_DIR}/libopenblas.so.0")
  set(SEQ4J_LICENSE_FILES "${_licenses}/LICENSE-oneDNN.txt" "${_licenses}/LICENSE-OpenBLAS.txt"
                          "${_licenses}/LICENSE-gcc-runtime.txt" "${_licenses}/LICENSE-libquadmath.txt")
elseif(SEQ4J_PLATFORM STREQUAL "linux-aarch64")
  set(SEQ4J_LIBRARY_NAME libseq4j.so)
  set(SEQ4J_LINK_FILES "${DNNL_DIR}/libdnnl.so.3" "${OPENBLAS_DIR}/libopenblas.so.0"
                       "${DNNL_DIR}/libgomp.so.1")
  set(SEQ4J_RUNTIME_FILES
    "libgomp.so.1|${DNNL_DIR}/libgomp.so.1"
    "libdnnl.so.3|${DNNL_DIR}/libdnnl.so.3"
    "libgfortran.so.5|${OPENBLAS_DIR}/libgfortran.so.5"
    "libopenblas.so.0|${OPENBLAS_DIR}/libopenblas.so.0")
  set(SEQ4J_LICENSE_FILES "${_licenses}/LICENSE-oneDNN.txt" "${_licenses}/LICENSE-OpenBLAS.txt"
                          "${_licenses}/LICENSE-gcc-runtime.txt")
elseif(SEQ4J_PLATFORM STREQUAL "macosx-arm64")
  set(SEQ4J_LIBRARY_NAME libseq4j.dylib)
  set(SEQ4J_LINK_FILES "${DNNL_DIR}/libdnnl.3.dylib" "${OPENBLAS_DIR}/libopenblas.0.dylib"
                       "${DNNL_DIR}/libomp.dylib")
  # libdnnl.3.dylib names @rpath/libomp.dylib but carries no @loader_path rpath: the Java loader
  # loads libomp.dylib first, and dyld then matches the install name of the loaded image.
  set(SEQ4J_RUNTIME_FILES
    "libomp.dylib|${DNNL_DIR}/libomp.dylib"
    "libdnnl.3.dylib|${DNNL_DIR}/libdnnl.3.dylib"
    "libopenblas.0.dylib|${OPENBLAS_DIR}/libopenblas.0.dylib")
  set(SEQ4J_LICENSE_FILES "${_licenses}/LICENSE-oneDNN.txt" "${_licenses}/LICENSE-OpenBLAS.txt"
                          "${_licenses}/LICENSE-llvm-openmp.txt")
elseif(SEQ4J_PLATFORM STREQUAL "windows-x86_64")
  set(SEQ4J_LIBRARY_NAME seq4j.dll)
  set(SEQ4J_LINK_FILES "${DNNL_DIR}/lib/dnnl.lib" "${OPENBLAS_DIR}/lib/openblas.lib")
  # SEQ4J_OPENMP_RUNTIME (libomp.dll of the LLVM that compiles seq4j.dll) and vcomp140.dll are
  # added in CMakeLists.txt once the compiler is known.
  set(SEQ4J_RUNTIME_FILES
    "dnnl.dll|${DNNL_DIR}/dnnl.dll"
    "libopenblas.dll|${OPENBLAS_DIR}/libopenblas.dll")
  set(SEQ4J_LICENSE_FILES "${_licenses}/LICENSE-oneDNN.txt" "${_licenses}/LICENSE-OpenBLAS.txt"
                          "${_licenses}/LICENSE-gcc-runtime.txt" "${_licenses}/LICENSE-llvm-openmp.txt")
endif()

foreach(_entry IN LISTS SEQ4J_RUNTIME_FILES)
  string(REPLACE "|" ";" _parts "${_entry}")
  list(GET _parts 1 _file)
  list(APPEND _required "${_file}")
endforeach()
foreach(_file "${DNNL_DIR}/include/dnnl.h" "${OPENBLAS_DIR}/include/cblas.h" ${SEQ4J_LINK_FILES}
              ${_required} ${SEQ4J_LICENSE_FILES})
  if(NOT EXISTS "${_file}")
    message(FATAL_ERROR "missing ${_file}: the oneDNN/OpenBLAS JARs for ${SEQ4J_BYTEDECO_PLATFORM} "
                        "were not unpacked into SEQ4J_DEPS_DIR as expected")
  endif()
endforeach()

# --- Unique names for the bundled libraries (Linux), as auditwheel does for Python wheels ----------
# The dynamic linker matches a DT_NEEDED entry against the sonames of the objects already loaded,
# so under their original names the bundled copies would be shared with (or replaced by) any other
# libopenblas.so.0 / libdnnl.so.3 / libgomp.so.1 already in the process (JavaCPP, DL4J, PyTorch
# for Java). Each bundled library is therefore shipped as
#     lib<name>-seq4j-<h>.so.<major>        e.g. libopenblas-seq4j-1f8e0c2a.so.0
# with that name as its SONAME, where <h> is the first 8 hex digits of the SHA-256 of the original
# file. "-seq4j" keeps the names apart from every other project's; the content hash keeps two
# builds of seq4j with different bundled versions apart too (two seq4j versions in one JVM, e.g.
# in two class loaders), while identical copies keep one name and may be shared harmlessly; the
# major version stays last, like any soname. native/cmake/isolate_sonames.cmake does the renaming.
#
# Out: SEQ4J_ISOLATED_FILES  "<unique name>|<original name>|<source path>" per SEQ4J_RUNTIME_FILES
#                            entry, in the same order (Linux; empty elsewhere: macOS and Windows
#                            ship the original names, see native/cross/README.md)
set(SEQ4J_ISOLATED_FILES "")
if(SEQ4J_OS STREQUAL "linux")
  foreach(_entry IN LISTS SEQ4J_RUNTIME_FILES)
    string(REPLACE "|" ";" _parts "${_entry}")
    list(GET _parts 0 _name)
    list(GET _parts 1 _source)
    if(NOT _name MATCHES "^(lib[A-Za-z0-9_+]+)(\\.so\\.[0-9.]+)$")
      message(FATAL_ERROR "cannot give ${_name} a unique name: not lib<name>.so.<major>")
    endif()
    set(_stem "${CMAKE_MATCH_1}")
    set(_suffix "${CMAKE_MATCH_2}")
    file(SHA256 "${_source}" _hash)
    string(SUBSTRING "${_hash}" 0 8 _hash)
    list(APPEND SEQ4J_ISOLATED_FILES "${_stem}-seq4j-${_hash}${_suffix}|${_name}|${_source}")
  endforeach()
endif()
