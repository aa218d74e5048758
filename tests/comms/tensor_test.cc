#include "comms/tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace gt {
namespace {

float Bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DType, SizesNamesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8u);
  EXPECT_EQ(DTypeSize(static_cast<DType>(99)), 0u);
  for (uint8_t raw = 1; raw <= 8; ++raw) {
    DType t = static_cast<DType>(raw);
    auto parsed = ParseDType(DTypeName(t));
    ASSERT_TRUE(parsed.ok()) << DTypeName(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(*ParseDType("bf16"), DType::kBFloat16);
  EXPECT_EQ(*ParseDType("fp16"), DType::kFloat16);
  auto bad = ParseDType("float8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("float8"), std::string::npos);
  EXPECT_FALSE(IsKnownDType(0));
  EXPECT_FALSE(IsKnownDType(9));
}

TEST(Half, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);              // largest finite
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);              // rounds down
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);              // ties to even -> infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24 -> even (0)
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 ulps -> even (2)
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(FloatToHalf(INFINITY), 0x7c00);
  uint16_t nan = FloatToHalf(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_FLOAT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
}

TEST(Half, EveryFiniteValueRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

// Independent oracle: the nearest of all finite halves (ties to the even bit pattern).
uint16_t NearestHalf(float f, const std::vector<std::pair<double, uint16_t>>& table) {
  double x = std::fabs(static_cast<double>(f));
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(x, uint16_t{0}));
  uint16_t best;
  if (it == table.end()) {
    // Beyond 65504: infinity from 65520 on (half of the next ulp).
    best = x >= 65520.0 ? 0x7c00 : 0x7bff;
  } else if (it == table.begin()) {
    best = it->second;
  } else {
    auto lo = it - 1;
    double dl = x - lo->first, dh = it->first - x;
    if (dl < dh) best = lo->second;
    else if (dh < dl) best = it->second;
    else best = (lo->second & 1) ? it->second : lo->second;
  }
  return static_cast<uint16_t>(best | (std::signbit(f) ? 0x8000 : 0));
}

TEST(Half, RandomFloatsMatchNearestValueOracle) {
  std::vector<std::pair<double, uint16_t>> table;
  for (uint16_t h = 0; h <= 0x7bff; ++h) table.push_back({HalfToFloat(h), h});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exp(-27, 17);
  std::uniform_real_distribution<float> mant(1, 2);
  for (int i = 0; i < 20000; ++i) {
    float f = std::ldexp(mant(rng), static_cast<int>(exp(rng))) * (i % 2 ? -1 : 1);
    ASSERT_EQ(FloatToHalf(f), NearestHalf(f, table)) << f;
  }
}

TEST(BFloat16, KnownValuesAndRounding) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(-3.0f), 0xc040);
  EXPECT_EQ(FloatToBFloat16(Bits(0x3f808000)), 0x3f80);  // tie -> even (down)
  EXPECT_EQ(FloatToBFloat16(Bits(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(FloatToBFloat16(Bits(0x3f808001)), 0x3f81);  // above the tie
  EXPECT_EQ(FloatToBFloat16(Bits(0x7f7fffff)), 0x7f80);  // FLT_MAX rounds to infinity
  uint16_t nan = FloatToBFloat16(NAN);
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x007f, 0);
  for (uint32_t b = 0; b < 65536; ++b) {
    if ((b & 0x7f80) == 0x7f80) continue;
    ASSERT_EQ(FloatToBFloat16(BFloat16ToFloat(static_cast<uint16_t>(b))), b);
  }
}

TEST(SumInto, Float32AndIntegers) {
  std::vector<float> a = {1, 2, 3}, b = {0.5f, -2, 10}, out(3);
  ASSERT_TRUE(SumInto(DType::kFloat32, out.data(), a.data(), b.data(), 3));
  EXPECT_EQ(out, (std::vector<float>{1.5f, 0, 13}));
  std::vector<int64_t> x = {1ll << 40, -5}, y = {1, 5};
  ASSERT_TRUE(SumInto(DType::kInt64, x.data(), x.data(), y.data(), 2));  // aliasing out == a
  EXPECT_EQ(x, (std::vector<int64_t>{(1ll << 40) + 1, 0}));
}

TEST(SumInto, SixteenBitRoundsOncePerAddition) {
  // bf16 has 8 significand bits: 256 + 1 is a tie between 256 and 258 -> 256 (even).
  std::vector<uint16_t> a = {FloatToBFloat16(256), FloatToBFloat16(1.5f), FloatToBFloat16(-1)};
  std::vector<uint16_t> b = {FloatToBFloat16(1), FloatToBFloat16(2.25f), FloatToBFloat16(1)};
  std::vector<uint16_t> out(3);
  ASSERT_TRUE(SumInto(DType::kBFloat16, out.data(), a.data(), b.data(), 3));
  EXPECT_EQ(BFloat16ToFloat(out[0]), 256.0f);
  EXPECT_EQ(BFloat16ToFloat(out[1]), 3.75f);
  EXPECT_EQ(BFloat16ToFloat(out[2]), 0.0f);
  // fp16: 2048 + 1 is a tie between 2048 and 2050 -> 2048; 0.1 + 0.2 rounded once.
  std::vector<uint16_t> c = {FloatToHalf(2048), FloatToHalf(0.1f)}, d = {FloatToHalf(1), FloatToHalf(0.2f)}, o(2);
  ASSERT_TRUE(SumInto(DType::kFloat16, o.data(), c.data(), d.data(), 2));
  EXPECT_EQ(HalfToFloat(o[0]), 2048.0f);
  EXPECT_EQ(o[1], FloatToHalf(HalfToFloat(FloatToHalf(0.1f)) + HalfToFloat(FloatToHalf(0.2f))));
}

TEST(DivideBy, AllKinds) {
  std::vector<float> f = {3, -6};
  ASSERT_TRUE(DivideBy(DType::kFloat32, f.data(), 2, 3));
  EXPECT_EQ(f, (std::vector<float>{1, -2}));
  std::vector<int32_t> i = {7, -7};
  ASSERT_TRUE(DivideBy(DType::kInt32, i.data(), 2, 2));
  EXPECT_EQ(i, (std::vector<int32_t>{3, -3}));
  std::vector<uint16_t> b = {FloatToBFloat16(3), FloatToBFloat16(1)};
  ASSERT_TRUE(DivideBy(DType::kBFloat16, b.data(), 2, 4));
  EXPECT_EQ(BFloat16ToFloat(b[0]), 0.75f);
  EXPECT_EQ(BFloat16ToFloat(b[1]), 0.25f);
  EXPECT_FALSE(DivideBy(DType::kFloat32, f.data(), 2, 0));
}

}  // namespace
}  // namespace gt
