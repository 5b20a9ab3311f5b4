#include "error.h"

namespace seq4j {
namespace {
thread_local std::string last_error;
}

void set_last_error(const char *function, const std::string &message) {
  last_error = std::string(function) + ": " + message;
}

void clear_last_error() { last_error.clear(); }

}  // namespace seq4j

extern "C" const char *seq4j_last_error(void) { return seq4j::last_error.c_str(); }
