// Scratch storage for kernels: 64-byte aligned, grown on demand, never shrunk.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace seq4j {

// Contents are not preserved across growth.
class AlignedBuffer {
 public:
  float *floats(int64_t count) { return static_cast<float *>(bytes(count * int64_t{sizeof(float)})); }
  void *bytes(int64_t size) {
    if (size > capacity_) {
      std::free(data_);
      capacity_ = (std::max<int64_t>(size, 64) + 63) / 64 * 64;
      data_ = std::aligned_alloc(64, static_cast<size_t>(capacity_));
      if (data_ == nullptr) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
    }
    return data_;
  }
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer &) = delete;
  AlignedBuffer &operator=(const AlignedBuffer &) = delete;
  ~AlignedBuffer() { std::free(data_); }

 private:
  void *data_ = nullptr;
  int64_t capacity_ = 0;
};

}  // namespace seq4j
