#include "comms/tensor.h"

#include <cmath>
#include <cstring>

namespace gt {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
    case DType::kFloat64: return 8;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kInt8: return 1;
  }
  return 0;
}

std::string DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat64: return "float64";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
  }
  return "unknown(" + std::to_string(static_cast<int>(t)) + ")";
}

bool IsKnownDType(uint8_t raw) { return raw >= 1 && raw <= 8; }

Result<DType> ParseDType(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return DType::kFloat32;
  if (name == "float16" || name == "fp16" || name == "half") return DType::kFloat16;
  if (name == "bfloat16" || name == "bf16") return DType::kBFloat16;
  if (name == "float64" || name == "fp64" || name == "double") return DType::kFloat64;
  if (name == "int32") return DType::kInt32;
  if (name == "int64") return DType::kInt64;
  if (name == "uint8") return DType::kUInt8;
  if (name == "int8") return DType::kInt8;
  return InvalidArgument("unknown dtype '" + name +
                         "'; expected one of float32, float16, bfloat16, float64, int32, int64, uint8, int8");
}

namespace {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint16_t FloatToBFloat16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // nearest, ties to even
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float BFloat16ToFloat(uint16_t b) { return BitsFloat(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToHalf(float f) {
  uint32_t u = FloatBits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): value = m * 2^-24 with m an integer < 1024.
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: +-0
    uint32_t exp = abs >> 23;             // biased float exponent
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;           // 24-bit mantissa -> units of 2^-24; 14..24 here
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  uint32_t v = abs - 0x38000000u;  // exponent - 112
  uint32_t q = v >> 13;
  uint32_t rem = v & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;  // may carry into the exponent: fine
  return static_cast<uint16_t>(sign | q);
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return BitsFloat(sign);
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return BitsFloat(sign | 0x7f800000u | (mant << 13));
  return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

namespace {

template <typename T>
void SumT(void* out, const void* a, const void* b, size_t n) {
  T* o = static_cast<T*>(out);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; ++i) o[i] = static_cast<T>(x[i] + y[i]);
}

template <uint16_t (*ToBits)(float), float (*FromBits)(uint16_t)>
void Sum16(void* out, const void* a, const void* b, size_t n) {
  uint16_t* o = static_cast<uint16_t*>(out);
  const uint16_t* x = static_cast<const uint16_t*>(a);
  const uint16_t* y = static_cast<const uint16_t*>(b);
  for (size_t i = 0; i < n; ++i) o[i] = ToBits(FromBits(x[i]) + FromBits(y[i]));
}

template <typename T>
void DivT(void* data, size_t n, int divisor) {
  T* d = static_cast<T*>(data);
  const T div = static_cast<T>(divisor);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] / div);
}

template <uint16_t (*ToBits)(float), float (*FromBits)(uint16_t)>
void Div16(void* data, size_t n, int divisor) {
  uint16_t* d = static_cast<uint16_t*>(data);
  const float div = static_cast<float>(divisor);
  for (size_t i = 0; i < n; ++i) d[i] = ToBits(FromBits(d[i]) / div);
}

}  // namespace

bool SumInto(DType dtype, void* out, const void* a, const void* b, size_t n) {
  switch (dtype) {
    case DType::kFloat32: SumT<float>(out, a, b, n); return true;
    case DType::kFloat64: SumT<double>(out, a, b, n); return true;
    case DType::kInt32: SumT<int32_t>(out, a, b, n); return true;
    case DType::kInt64: SumT<int64_t>(out, a, b, n); return true;
    case DType::kUInt8: SumT<uint8_t>(out, a, b, n); return true;
    case DType::kInt8: SumT<int8_t>(out, a, b, n); return true;
    case DType::kFloat16: Sum16<FloatToHalf, HalfToFloat>(out, a, b, n); return true;
    case DType::kBFloat16: Sum16<FloatToBFloat16, BFloat16ToFloat>(out, a, b, n); return true;
  }
  return false;
}

bool DivideBy(DType dtype, void* data, size_t n, int divisor) {
  if (divisor == 0) return false;
  switch (dtype) {
    case DType::kFloat32: DivT<float>(data, n, divisor); return true;
    case DType::kFloat64: DivT<double>(data, n, divisor); return true;
    case DType::kInt32: DivT<int32_t>(data, n, divisor); return true;
    case DType::kInt64: DivT<int64_t>(data, n, divisor); return true;
    case DType::kUInt8: DivT<uint8_t>(data, n, divisor); return true;
    case DType::kInt8: DivT<int8_t>(data, n, divisor); return true;
    case DType::kFloat16: Div16<FloatToHalf, HalfToFloat>(data, n, divisor); return true;
    case DType::kBFloat16: Div16<FloatToBFloat16, BFloat16ToFloat>(data, n, divisor); return true;
  }
  return false;
}

}  // namespace gt
