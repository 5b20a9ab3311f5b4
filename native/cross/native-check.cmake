# Builds and tests libseq4j for one platform straight from CMake, without the Maven reactor: fetches
# the platform's bytedeco oneDNN/OpenBLAS JARs with Maven, unpacks them, configures, builds, runs
# ctest and lists the output folder (what the platform's native JAR carries). The same command runs
# here and in .github/workflows/build.yml on every runner:
#   cmake -DPLATFORM=linux-aarch64 -P native/cross/native-check.cmake      [-DOFFLINE=ON]
# Work goes to target/native-check/{jars,deps,cmake-<platform>,out}. linux-aarch64 on another host
# is cross-built with native/cmake/toolchains/linux-aarch64.cmake and tested under qemu-aarch64.
cmake_minimum_required(VERSION 3.22)
get_filename_component(root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT PLATFORM)
  message(FATAL_ERROR "usage: cmake -DPLATFORM=<linux-x86_64|linux-aarch64|macosx-arm64|windows-x86_64> "
                      "-P native/cross/native-check.cmake")
endif()
set(work "${root}/target/native-check")
set(build "${work}/cmake-${PLATFORM}")
set(output "${work}/out/org/seq4j/native/${PLATFORM}")

# The versions the build uses: the parent POM's properties.
file(READ "${root}/pom.xml" pom)
foreach(property dnnl.version openblas.version)
  string(REGEX MATCH "<${property}>([^<]+)</${property}>" found "${pom}")
  if(NOT found)
    message(FATAL_ERROR "pom.xml has no <${property}>")
  endif()
  set(${property} "${CMAKE_MATCH_1}")
endforeach()
if(PLATFORM STREQUAL "linux-aarch64")
  set(bytedeco linux-arm64)
else()
  set(bytedeco ${PLATFORM})
endif()

find_program(MVN NAMES mvn.cmd mvn REQUIRED)
set(offline "")
if(OFFLINE)
  set(offline -o)
endif()
foreach(artifact "dnnl:${dnnl.version}" "openblas:${openblas.version}")
  string(REPLACE ":" "-" jar "${artifact}")
  set(jar "${work}/jars/${jar}-${bytedeco}.jar")
  if(NOT EXISTS "${jar}")
    execute_process(COMMAND "${MVN}" -B -q -N ${offline} dependency:copy
                            -Dartifact=org.bytedeco:${artifact}:jar:${bytedeco}
                            -DoutputDirectory=${work}/jars
                    WORKING_DIRECTORY "${root}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR NOT EXISTS "${jar}")
      message(FATAL_ERROR "could not fetch org.bytedeco:${artifact}:jar:${bytedeco} (${rc})")
    endif()
  endif()
  string(REGEX REPLACE ":.*" "" library "${artifact}")
  if(NOT EXISTS "${work}/deps/org/bytedeco/${library}/${bytedeco}")
    file(ARCHIVE_EXTRACT INPUT "${jar}" DESTINATION "${work}/deps"
         PATTERNS "org/bytedeco/${library}/${bytedeco}/*")
  endif()
endforeach()

set(configure -S "${root}" -B "${build}" -DSEQ4J_PLATFORM=${PLATFORM} -DSEQ4J_DEPS_DIR=${work}/deps
              -DSEQ4J_OUTPUT_DIR=${output} -DSEQ4J_MANIFEST=2 -DSEQ4J_VERSION=native-check)
cmake_host_system_information(RESULT host_processor QUERY OS_PLATFORM)
if(PLATFORM MATCHES "^linux-")  # patchelf everywhere; the cross compiler and qemu for aarch64
  execute_process(COMMAND sh "${root}/native/cross/ensure-toolchain.sh" ${PLATFORM} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the tools for ${PLATFORM} are missing (native/cross/ensure-toolchain.sh)")
  endif()
endif()
if(PLATFORM STREQUAL "linux-aarch64" AND NOT host_processor MATCHES "^(aarch64|arm64)$")
  list(APPEND configure -DCMAKE_TOOLCHAIN_FILE=${root}/native/cmake/toolchains/${PLATFORM}.cmake)
endif()

macro(run what)
  string(TIMESTAMP started "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  string(TIMESTAMP finished "%s")
  math(EXPR seconds "${finished} - ${started}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${PLATFORM}: ${what} failed (${rc}) after ${seconds} s")
  endif()
  message(STATUS "${PLATFORM}: ${what} took ${seconds} s")
endmacro()
run(configure "${CMAKE_COMMAND}" ${configure})
run(build "${CMAKE_COMMAND}" --build "${build}" --parallel)
run(ctest "${CMAKE_CTEST_COMMAND}" --test-dir "${build}" --output-on-failure)

file(GLOB_RECURSE files RELATIVE "${output}" "${output}/*")
list(SORT files)
set(listing "")
foreach(f IN LISTS files)
  file(SIZE "${output}/${f}" size)
  string(APPEND listing "  ${size}  ${f}\n")
endforeach()
message(STATUS "${output}:\n${listing}")
