// The element type and memory layout of a plan value or a backend buffer. Every value of
// a plan carries both, so that a backend can refuse what it cannot run and a later JIT or
// device backend can pick fp16/bf16 storage or a blocked layout per value. Today lowering
// emits fp32 in the dense row-major order of the value's shape (NCHW for images) and
// every backend runs exactly that; the other enumerators name what comes next.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nas {

enum class DType : uint8_t {
  F32,   // every plan value and parameter today
  F16,   // IEEE half
  BF16,  // bfloat16
  F64,   // host-side sums read back per step (loss)
  I32,   // labels
  U8,    // masks
};

// Dense row-major in the value's shape order: [N, C, H, W] images are NCHW, [N, F]
// vectors plain rows. The blocked forms are oneDNN's nChw8c / nChw16c (channels split
// into blocks of 8 or 16, innermost).
enum class Layout : uint8_t { NCHW, NHWC, NChw8c, NChw16c };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::F64:
      return 8;
    case DType::U8:
      return 1;
    case DType::F32:
    case DType::I32:
      break;
  }
  return 4;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::F64:
      return "f64";
    case DType::I32:
      return "i32";
    case DType::U8:
      return "u8";
  }
  return "?";
}

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::NCHW:
      return "nchw";
    case Layout::NHWC:
      return "nhwc";
    case Layout::NChw8c:
      return "nChw8c";
    case Layout::NChw16c:
      return "nChw16c";
  }
  return "?";
}

}  // namespace nas
