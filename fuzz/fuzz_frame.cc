// libFuzzer target: the tensor/control frame header (comms/frame.h): DecodeHeader on arbitrary bytes
// (exactly 128 of them, and the input's own size), ValidateHeader and ShapeNumel on headers built from
// arbitrary values, and the round trip DecodeHeader(EncodeHeader(h)) == h for every valid header.
//
// Input: the first 128 bytes are a header frame; up to 8 more give the maximum payload size; the
// same bytes, read as fields, also make a FrameHeader directly (kind, dtype, up to 16 dims).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "comms/frame.h"
#include "fuzz_util.h"

namespace {

uint64_t Le64(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void CheckRoundTrip(const gt::FrameHeader& h, uint64_t max_payload) {
  uint8_t buf[gt::kFrameHeaderBytes];
  gt::EncodeHeader(h, buf);
  auto back = gt::DecodeHeader(buf, sizeof buf, max_payload);
  GT_FUZZ_CHECK(back.ok(), "DecodeHeader accepts what EncodeHeader writes for a valid header");
  GT_FUZZ_CHECK(back->kind == h.kind && back->dtype == h.dtype && back->shape == h.shape && back->tag == h.tag &&
                    back->payload_bytes == h.payload_bytes,
                "the round trip keeps every field");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GtFuzzNoThrow("frame parsing", [&] {
    uint64_t max_payload = uint64_t{1} << 30;
    if (size > gt::kFrameHeaderBytes) max_payload = Le64(data + gt::kFrameHeaderBytes, size - gt::kFrameHeaderBytes);

    // The header as received: any size is refused unless it is exactly 128 bytes.
    auto any = gt::DecodeHeader(data, size, max_payload);
    if (size != gt::kFrameHeaderBytes) GT_FUZZ_CHECK(!any.ok(), "only 128-byte headers decode");
    if (size >= gt::kFrameHeaderBytes) {
      auto h = gt::DecodeHeader(data, gt::kFrameHeaderBytes, max_payload);
      if (h.ok()) {
        GT_FUZZ_CHECK(gt::ValidateHeader(*h, max_payload).ok(), "a decoded header is valid");
        GT_FUZZ_CHECK(h->payload_bytes <= max_payload, "within the payload limit");
        uint8_t again[gt::kFrameHeaderBytes];
        gt::EncodeHeader(*h, again);
        GT_FUZZ_CHECK(std::memcmp(again, data, gt::kFrameHeaderBytes) == 0,
                      "DecodeHeader accepts exactly what EncodeHeader produces");
      } else {
        GT_FUZZ_CHECK(h.status().code() == gt::Code::kParseError, "a bad header is a ParseError");
      }
    }

    // A header built from arbitrary field values: ValidateHeader decides, the round trip must hold.
    if (size >= 18) {
      gt::FrameHeader f;
      f.kind = static_cast<gt::FrameKind>(data[0]);
      f.dtype = static_cast<gt::DType>(data[1]);
      const size_t ndim = data[2] % 17;
      f.tag.job = Le64(data + 3, 8);
      f.tag.stage = static_cast<int32_t>(Le64(data + 11, 4));
      f.tag.micro_batch = static_cast<int32_t>(data[15]);
      f.payload_bytes = data[16] & 1 ? Le64(data + 3, 8) : 0;
      size_t off = 17;
      auto byte = [&](size_t k) { return data[k % size]; };  // the input, read cyclically
      for (size_t i = 0; i < ndim; ++i) {
        // Small dims are the interesting ones for a consistent payload; large ones test overflow.
        const bool wide = byte(off) & 0x80;
        uint64_t d = byte(off + 1) & 0x3f;
        if (wide) {
          d = 0;
          for (size_t b = 0; b < 8; ++b) d |= static_cast<uint64_t>(byte(off + 1 + b)) << (8 * b);
        }
        f.shape.push_back(static_cast<int64_t>(d));
        off += wide ? 9 : 2;
      }
      auto numel = gt::ShapeNumel(f.shape);
      if ((data[16] & 1) == 0 && numel.ok() && gt::IsKnownDType(data[1]) &&
          *numel <= UINT64_MAX / gt::DTypeSize(f.dtype)) {
        f.payload_bytes = *numel * gt::DTypeSize(f.dtype);  // consistent, so that some are valid
      }
      if (gt::ValidateHeader(f, max_payload).ok()) {
        GT_FUZZ_CHECK(f.shape.size() <= static_cast<size_t>(gt::kMaxDims), "at most kMaxDims");
        CheckRoundTrip(f, max_payload);
      }
    }
  });
  return 0;
}
