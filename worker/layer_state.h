// Placement-independent training state: what a checkpoint holds of the model, addressed by layer
// index (worker/layout.h) so that any stage split, data-parallel degree or site can load it. No torch.
//
// A LayerState is the state of layers [first, last) of one model, copied to memory at a step
// boundary (Stage::Snapshot in worker/model.h): parameters and both AdamW moments in the stage's
// flat order (layer by layer), plus the AdamW step count and settings. In a checkpoint directory
// (checkpoint/store.h) each layer is one file "layer-NNNN.gtck" in the section format of
// worker/checkpoint.h (sections "params", "exp_avg", "exp_avg_sq", each LayerParamCount floats, with
// CRC-32C) whose meta records the model, layer, seed and AdamW state; ReadLayerState assembles any
// range from them, whatever split wrote them.
//
// Threads: plain functions over caller-owned data; a LayerState is not shared while being written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/store.h"
#include "common/config.h"
#include "common/status.h"
#include "worker/adamw.h"

namespace gt::worker {

struct LayerState {
  ModelConfig model;
  uint64_t seed = 0;            // the model's initialisation seed (recorded, not used to load)
  int first = 0, last = 0;      // layers [first, last)
  int64_t adamw_steps = 0;
  AdamWOptions adamw;
  std::vector<float> params, exp_avg, exp_avg_sq;  // RangeParamCount(model, first, last) floats each

  int64_t size_bytes() const { return static_cast<int64_t>(3 * params.size() * sizeof(float)); }
  // Offset (in floats) of `layer` inside the flat buffers.
  int64_t LayerOffset(int layer) const;
};

// "layer-0003.gtck".
std::string LayerFileName(int layer);

// Writes the files of `layers` (each inside [state.first, state.last)) into `dir` (which must exist),
// each crash-safely, and returns their manifest entries (size, SHA-256) in `layers` order. `threads`
// files are written at a time (their fsyncs overlap).
Result<std::vector<ckpt::FileEntry>> WriteLayerFiles(const std::string& dir, const LayerState& state,
                                                     const std::vector<int>& layers, int threads = 2);

// Reads layers [first, last) of `model` from `dir` into `out` (buffers resized). Fails, naming the
// file, when a layer file is missing, damaged, written for another model, or the layers disagree on
// the AdamW step count.
Status ReadLayerState(const std::string& dir, const ModelConfig& model, int first, int last, LayerState* out);

// The layers of [first, last) that replica `replica` of `replicas` writes: every replicas-th layer
// starting at first + replica, so that the replicas of a stage share the writing.
std::vector<int> LayersWrittenBy(int first, int last, int replica, int replicas);

}  // namespace gt::worker
