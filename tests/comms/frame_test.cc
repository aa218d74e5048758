#include "comms/frame.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gt {
namespace {

FrameHeader Sample() {
  FrameHeader h;
  h.kind = FrameKind::kTensor;
  h.dtype = DType::kBFloat16;
  h.shape = {3, 5, 7};
  h.tag = {0x1122334455667788ull, 42, 3, -1};
  h.payload_bytes = 3 * 5 * 7 * 2;
  return h;
}

std::vector<uint8_t> Encode(const FrameHeader& h) {
  std::vector<uint8_t> b(kFrameHeaderBytes);
  EncodeHeader(h, b.data());
  return b;
}

TEST(Frame, RoundTrip) {
  FrameHeader h = Sample();
  ASSERT_TRUE(ValidateHeader(h, 1 << 20).ok());
  auto b = Encode(h);
  // Fixed layout, little-endian.
  EXPECT_EQ(b[0], 'G');
  EXPECT_EQ(b[1], 'T');
  EXPECT_EQ(b[2], 'T');
  EXPECT_EQ(b[3], '1');
  EXPECT_EQ(b[7], static_cast<uint8_t>(DType::kBFloat16));
  EXPECT_EQ(b[8], 3);
  EXPECT_EQ(b[16], 0x88);
  EXPECT_EQ(b[24], 42);
  auto d = DecodeHeader(b.data(), b.size(), 1 << 20);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->kind, h.kind);
  EXPECT_EQ(d->dtype, h.dtype);
  EXPECT_EQ(d->shape, h.shape);
  EXPECT_TRUE(d->tag == h.tag);
  EXPECT_EQ(d->tag.micro_batch, -1);
  EXPECT_EQ(d->payload_bytes, h.payload_bytes);
}

TEST(Frame, ScalarAndEmptyTensors) {
  FrameHeader h = Sample();
  h.shape = {};
  h.payload_bytes = 2;  // a scalar has one element
  auto b = Encode(h);
  ASSERT_TRUE(DecodeHeader(b.data(), b.size(), 100).ok());
  h.shape = {4, 0};
  h.payload_bytes = 0;
  b = Encode(h);
  ASSERT_TRUE(DecodeHeader(b.data(), b.size(), 100).ok());
}

void ExpectRejected(std::vector<uint8_t> b, const std::string& needle, uint64_t max = 1 << 20) {
  auto d = DecodeHeader(b.data(), b.size(), max);
  ASSERT_FALSE(d.ok()) << "accepted; expected rejection mentioning '" << needle << "'";
  EXPECT_EQ(d.status().code(), Code::kParseError);
  EXPECT_NE(d.status().message().find(needle), std::string::npos) << d.status().message();
}

TEST(Frame, RejectsMalformedHeaders) {
  const auto good = Encode(Sample());
  ExpectRejected(std::vector<uint8_t>(good.begin(), good.begin() + 100), "100 bytes");
  auto b = good;
  b[0] = 'X';
  ExpectRejected(b, "magic");
  b = good;
  b[4] = 9;
  ExpectRejected(b, "version 9");
  b = good;
  b[6] = 7;
  ExpectRejected(b, "kind 7");
  b = good;
  b[7] = 200;
  ExpectRejected(b, "dtype 200");
  b = good;
  b[8] = 9;
  ExpectRejected(b, "ndim 9");
  b = good;
  b[10] = 1;
  ExpectRejected(b, "reserved");
  b = good;
  b[120] = 1;
  ExpectRejected(b, "reserved");
  b = good;
  b[48 + 8 * 5] = 1;  // a dim beyond ndim
  ExpectRejected(b, "unused shape slot 5");
  b = good;
  b[40] ^= 1;  // payload byte count no longer matches shape * dtype
  ExpectRejected(b, "describe 105 elements");
  b = good;
  std::memset(&b[48], 0xff, 8);  // shape[0] = -1
  ExpectRejected(b, "negative");
}

TEST(Frame, RejectsOversizedAndOverflow) {
  FrameHeader h = Sample();
  h.shape = {1 << 20};
  h.dtype = DType::kUInt8;
  h.payload_bytes = 1 << 20;
  ExpectRejected(Encode(h), "exceeds the maximum", 1000);
  h.shape = {1ll << 40, 1ll << 40};
  h.payload_bytes = 8;
  ExpectRejected(Encode(h), "overflows", 1ull << 62);
  EXPECT_FALSE(ValidateHeader(h, 1ull << 62).ok());
  h.shape = std::vector<int64_t>(9, 1);
  EXPECT_FALSE(ValidateHeader(h, 100).ok());
}

TEST(Frame, RandomGarbageNeverAccepted) {
  uint32_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> b(kFrameHeaderBytes);
    for (auto& c : b) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<uint8_t>(x >> 24);
    }
    EXPECT_FALSE(DecodeHeader(b.data(), b.size(), 1 << 30).ok());
  }
}

}  // namespace
}  // namespace gt
