# Writes natives.list: one line per native file, in the order the Java loader loads them:
#   <file name> <sha256>
# and copies each dependency and its licence beside libseq4j, so SEQ4J_OUTPUT_DIR is the complete platform folder
# of the native JAR (the resource of an entry is the file of that name beside natives.list).
# Dependencies come first (OpenMP, oneDNN, the Fortran runtime, OpenBLAS), libseq4j.so last.
# TEMPORARY (distribution branch): linux file names only; the cross-platform CMake replaces it.
get_filename_component(out_dir "${OUTPUT}" DIRECTORY)
set(entries
  "libgomp.so.1|${DNNL_DIR}/libgomp.so.1"
  "libdnnl.so.3|${DNNL_DIR}/libdnnl.so.3"
  "libquadmath.so.0|${OPENBLAS_DIR}/libquadmath.so.0"
  "libgfortran.so.5|${OPENBLAS_DIR}/libgfortran.so.5"
  "libopenblas.so.0|${OPENBLAS_DIR}/libopenblas.so.0"
  "libseq4j.so|${SEQ4J_LIBRARY}")
set(text "# seq4j natives for ${PLATFORM}, in load order: file sha256\n")
foreach(entry IN LISTS entries)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 file)
  if(NOT "${file}" STREQUAL "${out_dir}/${name}")
    file(COPY_FILE "${file}" "${out_dir}/${name}" ONLY_IF_DIFFERENT)
  endif()
  file(SHA256 "${file}" hash)
  string(APPEND text "${name} ${hash}\n")
endforeach()
file(WRITE "${OUTPUT}" "${text}")
foreach(licence oneDNN OpenBLAS gcc-runtime libquadmath)
  file(COPY_FILE "${CMAKE_CURRENT_LIST_DIR}/../licenses/LICENSE-${licence}.txt"
       "${out_dir}/LICENSE-${licence}.txt" ONLY_IF_DIFFERENT)
endforeach()
