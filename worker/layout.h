// The layer layout of greentrain's GPT model, without torch: what a pipeline stage [first, last)
// holds and how many parameters (floats) it has. Safe to include from any module (coordinator,
// sharding, launch) to size flat gradient buffers or check a partition before any worker starts.
//
// Layer indexing (the same convention as sharding's model profile: embedding first, head last):
//   layer 0        token embedding [vocab, hidden] + learned position embedding [seq_len, hidden]
//   layers 1..L    pre-LN transformer blocks (L = ModelConfig::layers): LN, causal self-attention
//                  (fused qkv projection with bias, output projection with bias), LN, GELU MLP 4x
//   layer L+1      final LayerNorm + LM head [hidden -> vocab], no bias, not tied to the embedding
// A stage owns the half-open range [first, last) with 0 <= first < last <= L+2.
//
// Parameters of a stage are laid out in one flat float32 buffer, layer by layer in index order, and
// inside a layer in the registration order of the layer classes in worker/model.cc.
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace gt::worker {

// L + 2: the number of stage-assignable layers of `m`.
int NumLayers(const ModelConfig& m);

// OK if `m` can be built: layers, hidden, heads, seq_len, vocab >= 1, hidden % heads == 0,
// micro_batch >= 1. The message names the offending field.
Status ValidateModel(const ModelConfig& m);

// OK if [first, last) is a non-empty range of layers of `m` (and `m` is valid).
Status ValidateRange(const ModelConfig& m, int first, int last);

// Floats held by `layer` (0 <= layer < NumLayers(m)); 0 for an out-of-range index.
int64_t LayerParamCount(const ModelConfig& m, int layer);

// Floats held by a stage owning [first, last); the length of its flat parameter/gradient buffers.
int64_t RangeParamCount(const ModelConfig& m, int first, int last);

// The seed used to initialise `layer` of a model initialised from `model_seed`. A stage initialises
// each of its layers from LayerSeed(model_seed, layer) alone, so any slicing of the model into
// stages produces exactly the parameters of the whole model.
uint64_t LayerSeed(uint64_t model_seed, int layer);

// "layers=6 hidden=128 heads=4 seq=64 vocab=256": for logs and bench lines.
std::string DescribeModel(const ModelConfig& m);

// A stateless 64-bit mixer (SplitMix64 finaliser); used for seeds and the sampler.
uint64_t Mix64(uint64_t x);

}  // namespace gt::worker
