#include "sharding/plan.h"

#include <cstdio>

namespace gt {

const char* BottleneckKindName(BottleneckKind kind) {
  switch (kind) {
    case BottleneckKind::kNone: return "none";
    case BottleneckKind::kCompute: return "compute";
    case BottleneckKind::kMemory: return "memory";
    case BottleneckKind::kWanLink: return "wan_link";
    case BottleneckKind::kAllreduce: return "allreduce";
    case BottleneckKind::kPipelineFill: return "pipeline_fill";
  }
  return "?";
}

double Partition::TotalStateBytes() const {
  double sum = 0;
  for (const auto& s : stages) sum += s.state_bytes;
  return sum;
}

std::string Partition::Describe(const std::vector<std::string>& site_names) const {
  std::string out;
  char buf[512];
  for (size_t k = 0; k < stages.size(); ++k) {
    const StagePlacement& s = stages[k];
    std::string site = s.site >= 0 && s.site < static_cast<int>(site_names.size())
                           ? site_names[s.site]
                           : "#" + std::to_string(s.site);
    std::snprintf(buf, sizeof buf,
                  "stage %zu site %s layers [%d,%d) gpus %d (dp %d x %d) mb/replica %d "
                  "compute %.4gs/mb allreduce %.4gs mem/gpu %.3g GB state %.3g GB\n",
                  k, site.c_str(), s.first_layer, s.last_layer, s.gpus_used, s.data_parallel,
                  s.gpus_per_replica, s.micro_batches_per_replica,
                  s.compute_seconds_per_micro_batch, s.allreduce_seconds,
                  s.memory_bytes_per_gpu / 1e9, s.state_bytes / 1e9);
    out += buf;
  }
  std::snprintf(buf, sizeof buf,
                "step %.4gs (fill %.4g + steady %.4g + allreduce %.4g) = %.4g steps/h, %d GPUs, "
                "bottleneck: %s\n",
                step_seconds, fill_seconds, steady_seconds, allreduce_seconds, steps_per_hour,
                total_gpus_used, bottleneck.description.c_str());
  out += buf;
  return out;
}

}  // namespace gt
