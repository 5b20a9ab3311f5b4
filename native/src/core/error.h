// Status codes and error text at the C boundary: every exported function runs its body through
// seq4j::guarded(), which turns any C++ exception into a status and a thread-local message.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "seq4j.h"

namespace seq4j {

// An error with a seq4j status code, thrown inside the library and caught at the boundary.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string &message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

void set_last_error(const char *function, const std::string &message);
void clear_last_error();

// Runs body() (which returns a status) and converts every exception into a status with a message
// naming the C function. Never throws.
template <class Body>
int guarded(const char *function, Body &&body) noexcept {
  try {
    clear_last_error();
    return body();
  } catch (const Error &e) {
    set_last_error(function, e.what());
    return e.status();
  } catch (const std::bad_alloc &) {
    set_last_error(function, "out of native memory");
    return SEQ4J_ERR_OUT_OF_MEMORY;
  } catch (const std::exception &e) {
    set_last_error(function, std::string("internal error: ") + e.what());
    return SEQ4J_ERR_INTERNAL;
  } catch (...) {
    set_last_error(function, "internal error: unknown exception");
    return SEQ4J_ERR_INTERNAL;
  }
}

// Builds a message from any streamable parts: fail(SEQ4J_ERR_..., "m must be >= 0, got ", m).
template <class... Parts>
[[noreturn]] void fail(int status, const Parts &...parts) {
  std::ostringstream text;
  (text << ... << parts);
  throw Error(status, text.str());
}

inline void require_non_negative(const char *name, int64_t value) {
  if (value < 0) fail(SEQ4J_ERR_INVALID_ARGUMENT, name, " must be >= 0, got ", value);
}

inline void require_pointer(const char *name, const void *pointer, int64_t elements) {
  if (pointer == nullptr && elements > 0)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, name, " is NULL but must hold ", elements, " floats");
}

// Whether [a, a + a_len) and [b, b + b_len) share any float.
inline bool overlaps(const float *a, int64_t a_len, const float *b, int64_t b_len) {
  if (a_len <= 0 || b_len <= 0) return false;
  auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a0 < b0 + static_cast<std::uintptr_t>(b_len) * sizeof(float) &&
         b0 < a0 + static_cast<std::uintptr_t>(a_len) * sizeof(float);
}

}  // namespace seq4j
