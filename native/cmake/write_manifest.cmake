# Run after libseq4j is linked (cmake -P, from a POST_BUILD step). Fills SEQ4J_OUTPUT_DIR with what the
# platform's native JAR carries and the Java loader extracts:
#   - a copy of every dependency library libseq4j was linked against (SEQ4J_RUNTIME_FILES; on
#     Linux the renamed copies of isolate_sonames.cmake),
#   - their licence texts, LICENSE-<component>.txt beside them,
#   - natives.list: one line per library, in load order, dependencies first and libseq4j last:
#       <file name> <sha256>
#     the resource being the file of that name beside natives.list.
#
# -DCONFIG=<file> sets OUTPUT_DIR, LIBRARY (the built libseq4j), ENTRIES ("name|source" list),
# LICENSES, PLATFORM, DEPS_DIR and FORMAT. FORMAT "legacy" writes the 3-column manifest of the
# loader before issue 16 instead (<file name> <sha256> <class-path resource>, the dependencies read
# from the org.bytedeco JARs themselves) and copies nothing: the old loader's build, on request.
cmake_minimum_required(VERSION 3.22)
include("${CONFIG}")
get_filename_component(library_name "${LIBRARY}" NAME)

if(FORMAT STREQUAL "legacy")
  set(text "# seq4j natives for ${PLATFORM}, in load order: file sha256 resource\n")
  foreach(entry IN LISTS ENTRIES)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 name)
    list(GET parts 1 source)
    file(RELATIVE_PATH resource "${DEPS_DIR}" "${source}")
    file(SHA256 "${source}" hash)
    string(APPEND text "${name} ${hash} ${resource}\n")
  endforeach()
  file(SHA256 "${LIBRARY}" hash)
  string(APPEND text "${library_name} ${hash} org/seq4j/native/${PLATFORM}/${library_name}\n")
  file(WRITE "${OUTPUT_DIR}/natives.list" "${text}")
  return()
endif()

set(text "")
foreach(entry IN LISTS ENTRIES)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 source)
  set(target "${OUTPUT_DIR}/${name}")
  if(NOT EXISTS "${target}" OR "${source}" IS_NEWER_THAN "${target}")
    file(COPY_FILE "${source}" "${target}" ONLY_IF_DIFFERENT)
  endif()
  file(SHA256 "${target}" hash)
  string(APPEND text "${name} ${hash}\n")
endforeach()
file(SHA256 "${LIBRARY}" hash)
string(APPEND text "${library_name} ${hash}\n")

foreach(licence IN LISTS LICENSES)
  get_filename_component(name "${licence}" NAME)
  file(COPY_FILE "${licence}" "${OUTPUT_DIR}/${name}" ONLY_IF_DIFFERENT)
endforeach()

# Libraries of an earlier build under names no longer shipped (e.g. the original sonames, before the
# Linux copies were renamed) would be packed into the JAR: remove them.
set(shipped "${library_name}")
foreach(entry IN LISTS ENTRIES)
  string(REGEX REPLACE "\\|.*" "" name "${entry}")
  list(APPEND shipped "${name}")
endforeach()
file(GLOB present RELATIVE "${OUTPUT_DIR}" "${OUTPUT_DIR}/*.so*" "${OUTPUT_DIR}/*.dylib"
     "${OUTPUT_DIR}/*.dll")
foreach(name IN LISTS present)
  if(NOT name IN_LIST shipped)
    file(REMOVE "${OUTPUT_DIR}/${name}")
  endif()
endforeach()

# natives.list last, so that its presence means the folder is complete.
file(WRITE "${OUTPUT_DIR}/natives.list.tmp" "${text}")
file(RENAME "${OUTPUT_DIR}/natives.list.tmp" "${OUTPUT_DIR}/natives.list")
