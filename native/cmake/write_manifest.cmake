# Writes natives.list: one line per native file, in the order the Java loader loads them:
#   <file name> <sha256> <class-path resource>
# Dependencies come first (OpenMP, oneDNN, the Fortran runtime, OpenBLAS), libseq4j.so last.
set(entries
  "libgomp.so.1|${DNNL_DIR}/libgomp.so.1|org/bytedeco/dnnl/${PLATFORM}/libgomp.so.1"
  "libdnnl.so.3|${DNNL_DIR}/libdnnl.so.3|org/bytedeco/dnnl/${PLATFORM}/libdnnl.so.3"
  "libquadmath.so.0|${OPENBLAS_DIR}/libquadmath.so.0|org/bytedeco/openblas/${PLATFORM}/libquadmath.so.0"
  "libgfortran.so.5|${OPENBLAS_DIR}/libgfortran.so.5|org/bytedeco/openblas/${PLATFORM}/libgfortran.so.5"
  "libopenblas.so.0|${OPENBLAS_DIR}/libopenblas.so.0|org/bytedeco/openblas/${PLATFORM}/libopenblas.so.0"
  "libseq4j.so|${SEQ4J_LIBRARY}|org/seq4j/native/${PLATFORM}/libseq4j.so")
set(text "# seq4j natives for ${PLATFORM}, in load order: file sha256 resource\n")
foreach(entry IN LISTS entries)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 file)
  list(GET parts 2 resource)
  file(SHA256 "${file}" hash)
  string(APPEND text "${name} ${hash} ${resource}\n")
endforeach()
file(WRITE "${OUTPUT}" "${text}")
