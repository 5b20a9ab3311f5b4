# Gives the bundled Linux libraries names of their own (cmake -P, a build step before libseq4j links):
#   cmake -DCONFIG=<file> -P native/cmake/isolate_sonames.cmake
# where CONFIG sets PATCHELF, DIR (the staging folder) and ENTRIES ("<unique>|<original>|<source>"
# list; CMakeLists.txt writes it, since a list does not survive a command line).
# For each entry (SEQ4J_ISOLATED_FILES of Seq4jPlatform.cmake) it copies <source> to DIR/<unique>
# and changes it with patchelf (one call per change):
#   --set-soname <unique>                           the name glibc matches DT_NEEDED entries against
#   --replace-needed <original> <unique>            for every NEEDED entry (patchelf --print-needed)
#                                                   that names another bundled library; patchelf
#                                                   rewrites the matching .gnu.version_r file names
#                                                   too (libgfortran's QUADMATH_1.0, ...)
#   --set-rpath $ORIGIN                             DT_RUNPATH: each finds the others beside it
# then reads the result back and fails unless it is exactly that. libseq4j is linked against the
# files in DIR, so its own NEEDED entries (and symbol-version references) name the unique names.
# Only the dynamic section changes; code and data are those of the bytedeco JARs.
cmake_minimum_required(VERSION 3.22)
if(CONFIG)
  include("${CONFIG}")
endif()
if(NOT PATCHELF OR NOT DIR OR NOT ENTRIES)
  message(FATAL_ERROR "usage: cmake -DCONFIG=<file setting PATCHELF, DIR, ENTRIES> -P isolate_sonames.cmake")
endif()
file(MAKE_DIRECTORY "${DIR}")

set(originals "")
set(uniques "")
foreach(entry IN LISTS ENTRIES)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 unique)
  list(GET parts 1 original)
  list(APPEND originals "${original}")
  list(APPEND uniques "${unique}")
endforeach()

function(patchelf_query file option out)
  execute_process(COMMAND "${PATCHELF}" ${option} "${file}" OUTPUT_VARIABLE text
                  ERROR_VARIABLE error RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "patchelf ${option} ${file} failed (${rc}): ${error}")
  endif()
  string(REPLACE "\n" ";" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

foreach(entry IN LISTS ENTRIES)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 unique)
  list(GET parts 1 original)
  list(GET parts 2 source)
  set(target "${DIR}/${unique}")
  set(partial "${DIR}/.${unique}.part")
  file(REMOVE "${partial}")
  file(COPY_FILE "${source}" "${partial}")
  file(CHMOD "${partial}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
       GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

  # One patchelf call per change: patchelf 0.14.3 (Debian 12) corrupts DT_SONAME when
  # --set-soname and --set-rpath come in the same call (the soname then reads "$ORIGIN").
  patchelf_query("${partial}" --print-needed needed)
  set(changes "--set-soname|${unique}")
  set(expected_needed "")
  foreach(n IN LISTS needed)
    list(FIND originals "${n}" index)
    if(index GREATER_EQUAL 0)
      list(GET uniques ${index} renamed)
      list(APPEND changes "--replace-needed|${n}|${renamed}")
      list(APPEND expected_needed "${renamed}")
    else()
      list(APPEND expected_needed "${n}")  # the system's (libc, libm, libstdc++, libgcc_s, ld-linux)
    endif()
  endforeach()
  list(APPEND changes "--set-rpath|$ORIGIN")
  foreach(change IN LISTS changes)
    string(REPLACE "|" ";" arguments "${change}")
    execute_process(COMMAND "${PATCHELF}" ${arguments} "${partial}"
                    ERROR_VARIABLE error RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "patchelf ${arguments} ${partial} failed (${rc}): ${error}")
    endif()
  endforeach()

  patchelf_query("${partial}" --print-soname soname)
  patchelf_query("${partial}" --print-needed now_needed)
  patchelf_query("${partial}" --print-rpath rpath)
  if(NOT soname STREQUAL unique OR NOT now_needed STREQUAL expected_needed
     OR NOT rpath STREQUAL "$ORIGIN")
    message(FATAL_ERROR "${original} -> ${unique}: patchelf left SONAME '${soname}', NEEDED "
                        "'${now_needed}' (expected '${expected_needed}'), RUNPATH '${rpath}'")
  endif()
  file(RENAME "${partial}" "${target}")
  message(STATUS "${original} -> ${unique}: NEEDED ${now_needed}; RUNPATH $ORIGIN")
endforeach()
