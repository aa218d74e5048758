#include "worker/layout.h"

#include <sstream>

namespace gt::worker {

int NumLayers(const ModelConfig& m) { return m.layers + 2; }

Status ValidateModel(const ModelConfig& m) {
  auto bad = [](const std::string& field, int v, const std::string& need) {
    return InvalidArgument("model." + field + " = " + std::to_string(v) + ": " + need);
  };
  if (m.layers < 1) return bad("layers", m.layers, "need at least one transformer block");
  if (m.hidden < 1) return bad("hidden", m.hidden, "must be >= 1");
  if (m.heads < 1) return bad("heads", m.heads, "must be >= 1");
  if (m.hidden % m.heads != 0)
    return bad("heads", m.heads, "must divide hidden (" + std::to_string(m.hidden) + ")");
  if (m.seq_len < 1) return bad("seq_len", m.seq_len, "must be >= 1");
  if (m.vocab < 1) return bad("vocab", m.vocab, "must be >= 1");
  if (m.micro_batch < 1) return bad("micro_batch", m.micro_batch, "must be >= 1");
  return Status::Ok();
}

Status ValidateRange(const ModelConfig& m, int first, int last) {
  RETURN_IF_ERROR(ValidateModel(m));
  const int n = NumLayers(m);
  if (first < 0 || last > n || first >= last)
    return InvalidArgument("stage layer range [" + std::to_string(first) + ", " +
                           std::to_string(last) + ") is not a non-empty sub-range of [0, " +
                           std::to_string(n) + ") (layer 0 = embedding, 1.." +
                           std::to_string(m.layers) + " = blocks, " + std::to_string(n - 1) +
                           " = head)");
  return Status::Ok();
}

int64_t LayerParamCount(const ModelConfig& m, int layer) {
  const int64_t h = m.hidden, v = m.vocab, t = m.seq_len;
  if (layer < 0 || layer >= NumLayers(m)) return 0;
  if (layer == 0) return v * h + t * h;
  if (layer == m.layers + 1) return 2 * h + h * v;
  // ln1 (2h) + qkv (3h*h + 3h) + proj (h*h + h) + ln2 (2h) + fc (4h*h + 4h) + fc2 (4h*h + h)
  return 12 * h * h + 13 * h;
}

int64_t RangeParamCount(const ModelConfig& m, int first, int last) {
  int64_t n = 0;
  for (int l = first; l < last; ++l) n += LayerParamCount(m, l);
  return n;
}

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t LayerSeed(uint64_t model_seed, int layer) {
  return Mix64(Mix64(model_seed) + static_cast<uint64_t>(layer));
}

std::string DescribeModel(const ModelConfig& m) {
  std::ostringstream os;
  os << "layers=" << m.layers << " hidden=" << m.hidden << " heads=" << m.heads
     << " seq=" << m.seq_len << " vocab=" << m.vocab;
  return os.str();
}

}  // namespace gt::worker
