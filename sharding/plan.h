// Plan-side placement types: where the pipeline stages of one model run, and what one optimizer step
// costs there. Produced by the partitioner (sharding/partitioner.h); consumed by the policies, the
// simulator (steps per hour, migration and checkpoint sizes) and the live coordinator (which layers
// each site's workers hold).
//
// Plain values; safe to copy and to read from any thread.
#pragma once

#include <string>
#include <vector>

namespace gt {

// What limits the step time of a partition (the largest term of the step-time model, see
// partitioner.h).
enum class BottleneckKind {
  kNone,          // empty partition
  kCompute,       // the steady-state pipeline rate is set by stage `stage`'s compute
  kMemory,        // as kCompute, but the stage cannot shed layers: its neighbours are out of memory
  kWanLink,       // the steady-state rate is set by the WAN link site_a - site_b
  kAllreduce,     // the intra-site gradient allreduce of stage `stage` dominates the step
  kPipelineFill,  // fill/drain (bubble and WAN latencies) dominates: too few micro-batches per replica
};

const char* BottleneckKindName(BottleneckKind kind);

struct Bottleneck {
  BottleneckKind kind = BottleneckKind::kNone;
  int stage = -1;   // kCompute, kMemory, kAllreduce
  int site_a = -1;  // the stage's site, or the first site of the link (kWanLink)
  int site_b = -1;  // kWanLink: the second site
  std::string description;  // e.g. "compute on stage 1 (site 'texas')"
};

// A stage as the caller specifies it (to cost an existing placement).
struct StageSpec {
  int site = -1;          // index into the cluster's sites
  int first_layer = 0;    // [first_layer, last_layer) of the model profile's layers
  int last_layer = 0;
};

struct StagePlacement {
  int site = -1;                    // index into the cluster's sites
  int first_layer = 0;              // [first_layer, last_layer): 0 = embedding, L+1 = LM head
  int last_layer = 0;
  int gpus_per_replica = 1;         // GPUs holding one copy of the stage (>1 only if memory needs it)
  int data_parallel = 0;            // replicas of the stage on its site
  int gpus_used = 0;                // gpus_per_replica * data_parallel
  int micro_batches_per_replica = 0;
  double params = 0;
  double state_bytes = 0;           // weights + optimizer state of one copy: checkpoint/migration size
  double memory_bytes_per_gpu = 0;  // weights + grads + optimizer + in-flight activations, per GPU
  int in_flight_micro_batches = 0;  // activations held per replica (memory model)
  double compute_seconds_per_micro_batch = 0;  // forward+backward, one replica
  double allreduce_seconds = 0;     // gradient ring allreduce among the replicas
};

struct Partition {
  std::vector<StagePlacement> stages;      // in pipeline order
  double step_seconds = 0;                 // one optimizer step (global_batch samples)
  double steps_per_hour = 0;               // 3600 / step_seconds
  std::vector<int> gpus_used_per_site;     // one entry per cluster site (0 = unused)
  int total_gpus_used = 0;
  Bottleneck bottleneck;
  // Terms of the step time (partitioner.h): step = fill + steady + allreduce.
  double fill_seconds = 0;                 // pipeline fill/drain incl. WAN latency and transfer
  double steady_seconds = 0;               // the bottleneck resource's remaining micro-batches
  double allreduce_seconds = 0;            // max over stages
  double wan_bytes_per_step = 0;           // activations + gradients crossing site boundaries

  int num_stages() const { return static_cast<int>(stages.size()); }
  double TotalStateBytes() const;
  // One line per stage plus a summary, for logs and `greentrain plan` style output.
  std::string Describe(const std::vector<std::string>& site_names = {}) const;
};

}  // namespace gt
