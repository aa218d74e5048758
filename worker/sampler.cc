#include "worker/sampler.h"

#include <fstream>
#include <iterator>
#include <numeric>

#include "worker/layout.h"

namespace gt::worker {

Sampler::Sampler(std::vector<uint8_t> corpus, const SamplerOptions& options)
    : corpus_(std::move(corpus)), options_(options) {
  num_windows_ = static_cast<int64_t>(corpus_.size()) - options_.seq_len;
}

Result<Sampler> Sampler::Create(std::vector<uint8_t> corpus, const SamplerOptions& o) {
  if (o.seq_len < 1)
    return InvalidArgument("sampler: seq_len must be >= 1, got " + std::to_string(o.seq_len));
  if (o.micro_batch < 1)
    return InvalidArgument("sampler: micro_batch must be >= 1, got " +
                           std::to_string(o.micro_batch));
  if (o.global_batch < 1 || o.global_batch % o.micro_batch != 0)
    return InvalidArgument("sampler: global_batch (" + std::to_string(o.global_batch) +
                           ") must be a positive multiple of micro_batch (" +
                           std::to_string(o.micro_batch) + ")");
  if (corpus.size() < static_cast<size_t>(o.seq_len) + 2)
    return InvalidArgument("sampler: corpus has " + std::to_string(corpus.size()) +
                           " bytes, fewer than seq_len + 2 = " + std::to_string(o.seq_len + 2));
  if (corpus.size() > (size_t{1} << 31))
    return InvalidArgument("sampler: corpus of " + std::to_string(corpus.size()) +
                           " bytes exceeds the 2 GiB limit");
  return Sampler(std::move(corpus), o);
}

Result<Sampler> Sampler::FromFile(const std::string& path, const SamplerOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("sampler: cannot open corpus file " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return IoError("sampler: error reading corpus file " + path);
  auto s = Create(std::move(bytes), options);
  if (!s.ok()) return s.status().WithContext(path);
  return s;
}

Result<int> Sampler::MicroBatchesPerReplica(int replicas) const {
  const int per = replicas * options_.micro_batch;
  if (replicas < 1 || options_.global_batch % per != 0)
    return InvalidArgument("sampler: global_batch " + std::to_string(options_.global_batch) +
                           " is not divisible by replicas (" + std::to_string(replicas) +
                           ") x micro_batch (" + std::to_string(options_.micro_batch) + ")");
  return options_.global_batch / per;
}

int64_t Sampler::WindowStart(int64_t step, int64_t sample) const {
  const uint64_t p = static_cast<uint64_t>(num_windows_);
  const uint64_t g =
      static_cast<uint64_t>(step) * options_.global_batch + static_cast<uint64_t>(sample);
  const uint64_t epoch = g / p, j = g % p;
  const uint64_t h = Mix64(Mix64(options_.seed) ^ Mix64(epoch + 0x5EEDull));
  uint64_t a = 1 + (h % p);
  if (a >= p) a = 1;
  while (std::gcd(a, p) != 1) a = (a + 1 < p) ? a + 1 : 1;
  const uint64_t b = Mix64(h) % p;
  return static_cast<int64_t>((a * j + b) % p);  // a, j < 2^31: no overflow
}

TokenBatch Sampler::Samples(int64_t step, int64_t first_sample, int count) const {
  TokenBatch b;
  b.rows = count;
  b.cols = options_.seq_len + 1;
  b.tokens.resize(static_cast<size_t>(count) * b.cols);
  for (int r = 0; r < count; ++r) {
    const int64_t start = WindowStart(step, first_sample + r);
    for (int c = 0; c < b.cols; ++c)
      b.tokens[static_cast<size_t>(r) * b.cols + c] = corpus_[start + c];
  }
  return b;
}

Result<TokenBatch> Sampler::MicroBatch(int64_t step, int replica, int replicas, int micro) const {
  ASSIGN_OR_RETURN(int micros, MicroBatchesPerReplica(replicas));
  if (step < 0) return InvalidArgument("sampler: step must be >= 0, got " + std::to_string(step));
  if (replica < 0 || replica >= replicas)
    return InvalidArgument("sampler: replica " + std::to_string(replica) + " not in [0, " +
                           std::to_string(replicas) + ")");
  if (micro < 0 || micro >= micros)
    return InvalidArgument("sampler: micro-batch " + std::to_string(micro) + " not in [0, " +
                           std::to_string(micros) + ")");
  const int64_t first = static_cast<int64_t>(replica) * (options_.global_batch / replicas) +
                        static_cast<int64_t>(micro) * options_.micro_batch;
  return Samples(step, first, options_.micro_batch);
}

std::string DefaultCorpusPath() {
  return std::string(GREENTRAIN_SOURCE_DIR) + "/data/corpus/corpus.txt";
}

}  // namespace gt::worker
