// The inter-site wire format: every message is two ZeroMQ frames, a fixed 128-byte header and a payload.
//
//   offset size field (little-endian)
//        0    4 magic 0x31545447 ("GTT1")
//        4    2 version (kFrameVersion)
//        6    1 kind: 1 tensor, 2 control (payload = UTF-8 JSON object with "v" and "type")
//        7    1 dtype (DType wire value)
//        8    1 ndim (0..kMaxDims)
//        9    7 reserved, zero
//       16    8 job id
//       24    8 generation
//       32    4 stage (int32)
//       36    4 micro-batch (int32)
//       40    8 payload byte count
//       48   64 shape: kMaxDims int64, unused dims zero
//      112   16 reserved, zero
//
// Contract: DecodeHeader accepts exactly what EncodeHeader produces for a valid header and rejects
// anything else with ParseError naming the first problem (wrong size, bad magic, unknown version, kind
// or dtype, too many dims, negative dims, element count * dtype size != payload bytes, overflow, more
// than the allowed payload size). Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "comms/tensor.h"

namespace gt {

constexpr uint32_t kFrameMagic = 0x31545447u;
constexpr uint16_t kFrameVersion = 1;
constexpr size_t kFrameHeaderBytes = 128;
constexpr int kMaxDims = 8;
// The version of the JSON control schema written by this build ("v" field).
constexpr int kControlVersion = 1;

enum class FrameKind : uint8_t { kTensor = 1, kControl = 2 };

// Where a tensor belongs in the training job.
struct TensorTag {
  uint64_t job = 0;
  uint64_t generation = 0;
  int32_t stage = 0;
  int32_t micro_batch = 0;
  bool operator==(const TensorTag& o) const {
    return job == o.job && generation == o.generation && stage == o.stage && micro_batch == o.micro_batch;
  }
};

struct FrameHeader {
  FrameKind kind = FrameKind::kTensor;
  DType dtype = DType::kUInt8;
  std::vector<int64_t> shape;
  TensorTag tag;
  uint64_t payload_bytes = 0;
};

// Element count of `shape`, or an error on a negative dimension or overflow.
Result<uint64_t> ShapeNumel(const std::vector<int64_t>& shape);

// Checks a header before it is sent: dims count, shape and dtype consistent with payload_bytes.
Status ValidateHeader(const FrameHeader& h, uint64_t max_payload_bytes);

// Writes exactly kFrameHeaderBytes to `out`. The header must be valid (ValidateHeader).
void EncodeHeader(const FrameHeader& h, uint8_t* out);

Result<FrameHeader> DecodeHeader(const void* data, size_t size, uint64_t max_payload_bytes);

// The payload of a control frame as the receiver accepts it: UTF-8 JSON text that is an object with
// an integer "v" in [1, kControlVersion] and a string "type". Otherwise a ParseError saying which
// rule the payload breaks (the reason Transport::Receive logs when it drops the message). Never throws.
Result<nlohmann::json> ParseControlBody(const void* data, size_t size);

}  // namespace gt
