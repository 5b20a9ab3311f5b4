# Checks Seq4jPlatform.cmake's tables for all four platforms against the unpacked bytedeco JARs,
# without a compiler for any of them (script mode):
#   cmake -DDEPS_DIR=<folder holding org/bytedeco/{dnnl,openblas}/<every bytedeco platform>/>
#         -P native/cmake/test_platforms.cmake
# Every file each platform links against or ships must be in its JARs (Seq4jPlatform.cmake stops
# otherwise), and the library names and load order must be the ones the Java loader expects (on
# Linux: before renaming; the unique names are checked against the files' hashes).
cmake_minimum_required(VERSION 3.22)
set(SEQ4J_DEPS_DIR "${DEPS_DIR}")
set(expected_linux-x86_64 "libgomp.so.1;libdnnl.so.3;libquadmath.so.0;libgfortran.so.5;libopenblas.so.0")
set(expected_linux-aarch64 "libgomp.so.1;libdnnl.so.3;libgfortran.so.5;libopenblas.so.0")
set(expected_macosx-arm64 "libomp.dylib;libdnnl.3.dylib;libopenblas.0.dylib")
set(expected_windows-x86_64 "dnnl.dll;libopenblas.dll")  # + libomp.dll, vcomp140.dll from the toolchain
set(system_linux-x86_64 Linux x86_64)
set(system_linux-aarch64 Linux aarch64)
set(system_macosx-arm64 Darwin arm64)
set(system_windows-x86_64 Windows AMD64)
foreach(SEQ4J_PLATFORM linux-x86_64 linux-aarch64 macosx-arm64 windows-x86_64)
  list(GET system_${SEQ4J_PLATFORM} 0 CMAKE_SYSTEM_NAME)
  list(GET system_${SEQ4J_PLATFORM} 1 CMAKE_SYSTEM_PROCESSOR)
  include("${CMAKE_CURRENT_LIST_DIR}/Seq4jPlatform.cmake")
  set(names "")
  foreach(entry IN LISTS SEQ4J_RUNTIME_FILES)
    string(REGEX REPLACE "\\|.*" "" name "${entry}")
    list(APPEND names "${name}")
  endforeach()
  if(NOT names STREQUAL "${expected_${SEQ4J_PLATFORM}}")
    message(FATAL_ERROR "${SEQ4J_PLATFORM}: ships ${names}, expected ${expected_${SEQ4J_PLATFORM}}")
  endif()
  # Linux ships them renamed: lib<name>-seq4j-<first 8 hex of the file's SHA-256>.so.<major>.
  set(isolated "")
  foreach(entry IN LISTS SEQ4J_ISOLATED_FILES)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 unique)
    list(GET parts 1 original)
    list(GET parts 2 source)
    file(SHA256 "${source}" hash)
    string(SUBSTRING "${hash}" 0 8 hash)
    string(REGEX REPLACE "^(lib[^.]+)(\\..*)$" "\\1-seq4j-${hash}\\2" want "${original}")
    if(NOT unique STREQUAL want)
      message(FATAL_ERROR "${SEQ4J_PLATFORM}: ${original} is renamed ${unique}, expected ${want}")
    endif()
    list(APPEND isolated "${original}")
  endforeach()
  if(SEQ4J_OS STREQUAL "linux" AND NOT isolated STREQUAL names)
    message(FATAL_ERROR "${SEQ4J_PLATFORM}: renames ${isolated}, ships ${names}")
  elseif(NOT SEQ4J_OS STREQUAL "linux" AND isolated)
    message(FATAL_ERROR "${SEQ4J_PLATFORM}: renames ${isolated}, but only Linux builds do")
  endif()
  message(STATUS "${SEQ4J_PLATFORM} (${SEQ4J_BYTEDECO_PLATFORM}): ${names}; ${SEQ4J_LIBRARY_NAME}; "
                 "links ${SEQ4J_LINK_FILES}")
endforeach()
