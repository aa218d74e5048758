// Element types and non-owning tensor views shared by the collectives and the transport.
//
// Contract: comms never includes torch. A caller (the worker) describes a tensor as a TensorView: a
// raw pointer, an element count, a dtype and where the memory lives. comms never frees or resizes a
// view's memory; the caller keeps it alive and unaliased until the operation using it has finished
// (for collectives: until Work::Wait returned OK or the Collective was destroyed).
//
// The numeric helpers (float <-> float16/bfloat16, element-wise sums) are pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace gt {

// Wire values are part of the frame format (comms/frame.h): never renumber, only append.
enum class DType : uint8_t {
  kFloat32 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kFloat64 = 4,
  kInt32 = 5,
  kInt64 = 6,
  kUInt8 = 7,
  kInt8 = 8,
};

// Bytes per element; 0 for a value that is not a known DType.
size_t DTypeSize(DType t);
// "float32", "bfloat16", ...; "unknown(<n>)" for a value that is not a known DType.
std::string DTypeName(DType t);
// Parses DTypeName's output (also accepts "fp32", "fp16", "bf16", "half", "float"). Error names the input.
Result<DType> ParseDType(const std::string& name);
// True if `raw` is the wire value of a known DType.
bool IsKnownDType(uint8_t raw);

enum class MemoryKind : uint8_t { kCpu = 0, kCuda = 1 };

// A non-owning view of `numel` contiguous elements of `dtype` at `data`.
struct TensorView {
  void* data = nullptr;
  size_t numel = 0;
  DType dtype = DType::kFloat32;
  MemoryKind memory = MemoryKind::kCpu;
  int device = -1;  // CUDA device ordinal for kCuda, -1 for kCpu

  size_t bytes() const { return numel * DTypeSize(dtype); }
};

inline TensorView CpuView(float* p, size_t n) { return {p, n, DType::kFloat32, MemoryKind::kCpu, -1}; }

// IEEE binary16 and bfloat16 stored as raw bits. Conversions round to nearest, ties to even; NaN stays
// NaN, overflow becomes infinity.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBFloat16(float f);
float BFloat16ToFloat(uint16_t b);

// out[i] = a[i] + b[i] for n elements of `dtype` (out may alias a or b). 16-bit types are added in
// float32 and rounded once per addition. Returns false for a dtype that has no sum (none today).
bool SumInto(DType dtype, void* out, const void* a, const void* b, size_t n);
// data[i] /= divisor, computed in float (double for float64; integer division for integer types).
bool DivideBy(DType dtype, void* data, size_t n, int divisor);

}  // namespace gt
