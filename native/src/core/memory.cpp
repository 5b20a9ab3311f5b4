// The allocator of every block Java allocates for seq4j (org.seq4j.internal.NativeMemory): the
// tensors' and workspaces' memory comes from here, i.e. from the malloc that libseq4j itself links.
// In a sanitized build (SEQ4J_SANITIZE=address) that malloc is AddressSanitizer's, which then
// knows each block's exact size and reports an access past its end or after its release; a
// lookup of aligned_alloc from Java's default lookup bypassed that bookkeeping's size (see
// README, "Sanitizers").
#include <cstdlib>
#if defined(_WIN32)
#include <malloc.h>
#endif

#include "core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SEQ4J_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define SEQ4J_ASAN 1
#endif
#endif

using seq4j::fail;
using seq4j::guarded;

extern "C" {

int seq4j_alloc(void **block, int64_t bytes) {
  return guarded(__func__, [&] {
    if (block == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "block is NULL");
    *block = nullptr;
    if (bytes < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "bytes must be >= 1, got ", bytes);
    // posix_memalign takes any size (aligned_alloc wants a multiple of the alignment), so the
    // sanitizer's record is the exact size the caller asked for.
    void *memory = nullptr;
#if defined(_WIN32)
    memory = _aligned_malloc(static_cast<size_t>(bytes), 64);
#else
    if (posix_memalign(&memory, 64, static_cast<size_t>(bytes)) != 0) memory = nullptr;
#endif
    if (memory == nullptr)
      fail(SEQ4J_ERR_OUT_OF_MEMORY, "cannot allocate ", bytes, " bytes of native memory");
    *block = memory;
    return SEQ4J_OK;
  });
}

int seq4j_free(void *block) {
#if defined(_WIN32)
  _aligned_free(block);
#else
  std::free(block);
#endif
  return SEQ4J_OK;
}

int seq4j_mark_usable(void *block, int64_t usable, int64_t capacity) {
  return guarded(__func__, [&] {
    if (block == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "block is NULL");
    if (capacity < 0 || usable < 0 || usable > capacity)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "expected 0 <= usable <= capacity, got usable=", usable,
           " capacity=", capacity);
#ifdef SEQ4J_ASAN
    ASAN_POISON_MEMORY_REGION(block, static_cast<size_t>(capacity));
    ASAN_UNPOISON_MEMORY_REGION(block, static_cast<size_t>(usable));
#endif
    return SEQ4J_OK;
  });
}

}  // extern "C"
