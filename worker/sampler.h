// The byte-level text corpus and the deterministic batch sampler of the live worker. No torch.
//
// Contract: a Sampler is a pure function of (corpus bytes, options): the window of global sample
// `i` of optimizer step `s` depends on nothing else (no hidden state, no clock), so any process can
// compute any replica's micro-batch, and a run resumed at step s sees the same batches as the
// uninterrupted run. Tokens are the corpus bytes (vocab 256).
//
// Sampling: the global batch of step s is the global samples [s*G, (s+1)*G) with G = global_batch.
// Global sample g is the window of seq_len+1 bytes starting at a position drawn *without
// replacement* within an epoch: positions are permuted per epoch by an affine map
// p -> (a_e * p + b_e) mod P (a_e coprime to P, both from the seed and epoch), P = number of window
// starts. So windows within an epoch of P samples never repeat, and the data-parallel replicas of a
// step, which receive disjoint contiguous index ranges of its global batch, see disjoint windows.
// Replica r of R owns samples [r*G/R, (r+1)*G/R) of the step; its micro-batch k holds the
// micro_batch samples starting at r*G/R + k*micro_batch. The union over replicas is the global
// batch whatever R is (as long as R * micro_batch divides G), so resizing keeps the training data
// identical.
//
// Thread-safety: const methods may be called concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gt::worker {

struct SamplerOptions {
  int seq_len = 64;      // tokens predicted per sample; windows hold seq_len + 1 bytes
  int micro_batch = 8;   // samples per micro-batch
  int global_batch = 8;  // samples per optimizer step, summed over data-parallel replicas
  uint64_t seed = 1;
};

// `rows` windows of `cols` = seq_len + 1 tokens, row-major. Inputs are columns [0, seq_len),
// targets are columns [1, seq_len + 1).
struct TokenBatch {
  int rows = 0;
  int cols = 0;
  std::vector<int64_t> tokens;
  int64_t at(int row, int col) const { return tokens[static_cast<size_t>(row) * cols + col]; }
};

class Sampler {
 public:
  // Fails if the corpus is shorter than seq_len + 2 bytes or larger than 2^31 bytes, or the options
  // are out of range (seq_len, micro_batch, global_batch >= 1; micro_batch divides global_batch).
  static Result<Sampler> Create(std::vector<uint8_t> corpus, const SamplerOptions& options);
  // Reads the corpus from `path` (any bytes) and calls Create.
  static Result<Sampler> FromFile(const std::string& path, const SamplerOptions& options);

  const SamplerOptions& options() const { return options_; }
  int64_t corpus_bytes() const { return static_cast<int64_t>(corpus_.size()); }
  // Number of distinct window starts (the epoch length in samples).
  int64_t num_windows() const { return num_windows_; }

  // Micro-batches each of `replicas` replicas runs per step: G / (replicas * micro_batch); an error
  // if that does not divide evenly.
  Result<int> MicroBatchesPerReplica(int replicas) const;

  // Start offset in the corpus of global sample `sample` (0 <= sample < G) of step `step` (>= 0).
  int64_t WindowStart(int64_t step, int64_t sample) const;

  // `count` consecutive samples of step `step` starting at `first_sample` (may run past G).
  TokenBatch Samples(int64_t step, int64_t first_sample, int count) const;

  // Micro-batch `micro` of replica `replica` of `replicas` at step `step`: [micro_batch,
  // seq_len+1].
  Result<TokenBatch> MicroBatch(int64_t step, int replica, int replicas, int micro) const;

 private:
  Sampler(std::vector<uint8_t> corpus, const SamplerOptions& options);
  std::vector<uint8_t> corpus_;
  SamplerOptions options_;
  int64_t num_windows_ = 0;
};

// The corpus shipped with the source tree: <source>/data/corpus/corpus.txt.
std::string DefaultCorpusPath();

}  // namespace gt::worker
