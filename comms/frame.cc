#include "comms/frame.h"

#include <cstdio>
#include <cstring>

namespace gt {
namespace {

template <typename T>
void Put(uint8_t* out, size_t off, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[off + i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

template <typename T>
T Take(const uint8_t* in, size_t off) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(in[off + i]) << (8 * i);
  return static_cast<T>(v);
}

}  // namespace

Result<uint64_t> ShapeNumel(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return ParseError("shape[" + std::to_string(i) + "] is negative (" + std::to_string(shape[i]) + ")");
    uint64_t d = static_cast<uint64_t>(shape[i]);
    if (d != 0 && n > UINT64_MAX / d) return ParseError("shape element count overflows 64 bits");
    n *= d;
  }
  return n;
}

Status ValidateHeader(const FrameHeader& h, uint64_t max_payload_bytes) {
  if (h.kind != FrameKind::kTensor && h.kind != FrameKind::kControl) {
    return ParseError("unknown frame kind " + std::to_string(static_cast<int>(h.kind)));
  }
  if (!IsKnownDType(static_cast<uint8_t>(h.dtype))) {
    return ParseError("unknown dtype " + std::to_string(static_cast<int>(h.dtype)));
  }
  if (h.shape.size() > static_cast<size_t>(kMaxDims)) {
    return ParseError("tensor has " + std::to_string(h.shape.size()) + " dims; at most " + std::to_string(kMaxDims));
  }
  if (h.payload_bytes > max_payload_bytes) {
    return ParseError("payload of " + std::to_string(h.payload_bytes) + " bytes exceeds the maximum message size of " +
                      std::to_string(max_payload_bytes) + " bytes");
  }
  ASSIGN_OR_RETURN(uint64_t numel, ShapeNumel(h.shape));
  uint64_t es = DTypeSize(h.dtype);
  if (numel > UINT64_MAX / es || numel * es != h.payload_bytes) {
    return ParseError("shape and dtype " + DTypeName(h.dtype) + " describe " + std::to_string(numel) +
                      " elements but the payload has " + std::to_string(h.payload_bytes) + " bytes");
  }
  return Status::Ok();
}

void EncodeHeader(const FrameHeader& h, uint8_t* out) {
  std::memset(out, 0, kFrameHeaderBytes);
  Put<uint32_t>(out, 0, kFrameMagic);
  Put<uint16_t>(out, 4, kFrameVersion);
  out[6] = static_cast<uint8_t>(h.kind);
  out[7] = static_cast<uint8_t>(h.dtype);
  out[8] = static_cast<uint8_t>(h.shape.size());
  Put<uint64_t>(out, 16, h.tag.job);
  Put<uint64_t>(out, 24, h.tag.generation);
  Put<uint32_t>(out, 32, static_cast<uint32_t>(h.tag.stage));
  Put<uint32_t>(out, 36, static_cast<uint32_t>(h.tag.micro_batch));
  Put<uint64_t>(out, 40, h.payload_bytes);
  for (size_t i = 0; i < h.shape.size() && i < static_cast<size_t>(kMaxDims); ++i) {
    Put<uint64_t>(out, 48 + 8 * i, static_cast<uint64_t>(h.shape[i]));
  }
}

Result<FrameHeader> DecodeHeader(const void* data, size_t size, uint64_t max_payload_bytes) {
  if (size != kFrameHeaderBytes) {
    return ParseError("header frame has " + std::to_string(size) + " bytes, expected " + std::to_string(kFrameHeaderBytes));
  }
  const uint8_t* in = static_cast<const uint8_t*>(data);
  uint32_t magic = Take<uint32_t>(in, 0);
  if (magic != kFrameMagic) return ParseError("bad magic 0x" + [&] {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%08x", magic);
    return std::string(buf);
  }() + " (not a greentrain frame)");
  uint16_t version = Take<uint16_t>(in, 4);
  if (version != kFrameVersion) {
    return ParseError("frame version " + std::to_string(version) + " is not supported (this build speaks " +
                      std::to_string(kFrameVersion) + ")");
  }
  FrameHeader h;
  uint8_t kind = in[6];
  if (kind != static_cast<uint8_t>(FrameKind::kTensor) && kind != static_cast<uint8_t>(FrameKind::kControl)) {
    return ParseError("unknown frame kind " + std::to_string(kind));
  }
  h.kind = static_cast<FrameKind>(kind);
  if (!IsKnownDType(in[7])) return ParseError("unknown dtype " + std::to_string(in[7]));
  h.dtype = static_cast<DType>(in[7]);
  uint8_t ndim = in[8];
  if (ndim > kMaxDims) return ParseError("ndim " + std::to_string(ndim) + " exceeds " + std::to_string(kMaxDims));
  for (size_t i = 9; i < 16; ++i) {
    if (in[i] != 0) return ParseError("reserved header byte " + std::to_string(i) + " is not zero");
  }
  for (size_t i = 112; i < kFrameHeaderBytes; ++i) {
    if (in[i] != 0) return ParseError("reserved header byte " + std::to_string(i) + " is not zero");
  }
  h.tag.job = Take<uint64_t>(in, 16);
  h.tag.generation = Take<uint64_t>(in, 24);
  h.tag.stage = static_cast<int32_t>(Take<uint32_t>(in, 32));
  h.tag.micro_batch = static_cast<int32_t>(Take<uint32_t>(in, 36));
  h.payload_bytes = Take<uint64_t>(in, 40);
  for (int i = 0; i < kMaxDims; ++i) {
    int64_t d = static_cast<int64_t>(Take<uint64_t>(in, 48 + 8 * i));
    if (i < ndim) {
      h.shape.push_back(d);
    } else if (d != 0) {
      return ParseError("unused shape slot " + std::to_string(i) + " is not zero");
    }
  }
  RETURN_IF_ERROR(ValidateHeader(h, max_payload_bytes));
  return h;
}

Result<nlohmann::json> ParseControlBody(const void* data, size_t size) {
  const char* text = static_cast<const char*>(data);
  if (text == nullptr) size = 0;
  nlohmann::json j = nlohmann::json::parse(text, text + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return ParseError("control payload is not a JSON object");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) return ParseError("control message has no integer \"v\" (schema version)");
  if (v->get<int64_t>() < 1 || v->get<int64_t>() > kControlVersion) {
    return ParseError("control schema version " + v->dump() + " is not supported (this build reads up to " +
                      std::to_string(kControlVersion) + ")");
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return ParseError("control message has no string \"type\"");
  return j;
}

}  // namespace gt
