// bench_pipeline: the GPipe bubble of the live pipeline (worker/pipeline.h) against its theoretical
// value (S-1)/(m+S-1), for S = 2 and 3 stages and m = 4 and 8 micro-batches.
//
// Stages run as threads of this process (1 compute thread each, torch and OpenBLAS), connected by
// the real ZeroMQ Transport over inproc://. After warm-up steps, each stage records its busy time
// (forward, backward, optimizer) and the wall time of the same steps. The measured bubble is
// 1 - busy(busiest stage) / wall: the fraction of the step in which the bottleneck stage waits. The
// theoretical value assumes equal stages and free communication; the ratio measured/theoretical is
// reported. With 3 stages on a 2-core machine, stages also compete for cores, which inflates both
// busy and wall times (see "cores" in each line).
//
//   bench_pipeline [--steps N] [--warmup W]
// One JSON object per line: {"bench","size_bytes","value","unit","baseline","baseline_value","ratio",...}.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "comms/transport.h"
#include "worker/layout.h"
#include "worker/model.h"
#include "worker/pipeline.h"
#include "worker/sampler.h"

using namespace gt;
using namespace gt::worker;

namespace {

struct StageTiming {
  Status status;
  double busy = 0, wall = 0;
};

ModelConfig BenchModel(int micro_batches) {
  ModelConfig m;
  m.name = "bench-gpt";
  m.layers = 4;  // 6 stage-assignable layers: 3+3 or 2+2+2
  m.hidden = 128;
  m.heads = 4;
  m.seq_len = 64;
  m.vocab = 256;
  m.micro_batch = 4;
  m.global_batch = 4 * micro_batches;
  return m;
}

std::vector<StageTiming> RunPipeline(int S, int M, int warmup, int steps, const std::vector<uint8_t>& corpus) {
  const ModelConfig model = BenchModel(M);
  SamplerOptions so;
  so.seq_len = model.seq_len;
  so.micro_batch = model.micro_batch;
  so.global_batch = model.global_batch;
  auto sampler = Sampler::Create(corpus, so);
  std::vector<StageTiming> out(S);
  if (!sampler.ok()) {
    out[0].status = sampler.status();
    return out;
  }
  const std::string prefix = "inproc://bench-pipe-" + std::to_string(S) + "-" + std::to_string(M) + "-";
  std::vector<std::unique_ptr<Transport>> tr;
  for (int k = 0; k < S; ++k) {
    TransportOptions o;
    o.name = "stage" + std::to_string(k);
    o.bind_endpoint = prefix + std::to_string(k);
    o.plaintext = true;
    auto t = Transport::Create(o);
    if (!t.ok()) {
      out[0].status = t.status();
      return out;
    }
    tr.push_back(std::move(*t));
  }
  std::vector<std::thread> threads;
  for (int k = 0; k < S; ++k)
    threads.emplace_back([&, k] {
      StageTiming& res = out[k];
      PipelineRole role;
      role.stage = k;
      role.num_stages = S;
      auto split = EvenLayerSplit(model, k, S);
      if (!split.ok()) { res.status = split.status(); return; }
      role.first_layer = split->first;
      role.last_layer = split->second;
      if (k > 0) { role.prev_peer = "prev"; res.status = tr[k]->Connect("prev", prefix + std::to_string(k - 1), ""); }
      if (k + 1 < S) { role.next_peer = "next"; res.status = tr[k]->Connect("next", prefix + std::to_string(k + 1), ""); }
      if (!res.status.ok()) return;
      auto rank = PipelineRank::Create(model, role, &*sampler, tr[k].get(), nullptr);
      if (!rank.ok()) { res.status = rank.status(); return; }
      for (int s = 0; s < warmup + steps; ++s) {
        StepStats st;
        res.status = (*rank)->Step(s, &st);
        if (!res.status.ok()) return;
        if (s >= warmup) {
          res.busy += st.compute_seconds;
          res.wall += st.wall_seconds;
        }
      }
    });
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 20, warmup = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps")) steps = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--warmup")) warmup = std::max(0, std::atoi(argv[i + 1]));
  }
  Status s = SetComputeThreads(1);
  if (!s.ok()) {
    std::fprintf(stderr, "bench_pipeline: %s\n", s.ToString().c_str());
    return 1;
  }
  // A synthetic corpus: the bench measures time, not learning.
  std::vector<uint8_t> corpus(1 << 16);
  uint64_t x = 1;
  for (auto& c : corpus) c = static_cast<uint8_t>((x = Mix64(x)) % 96 + 32);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (int S : {2, 3}) {
    for (int M : {4, 8}) {
      auto t = RunPipeline(S, M, warmup, steps, corpus);
      double busy_max = 0, wall = 0;
      for (const auto& st : t) {
        if (!st.status.ok()) {
          std::fprintf(stderr, "bench_pipeline: S=%d m=%d: %s\n", S, M, st.status.ToString().c_str());
          return 1;
        }
        busy_max = std::max(busy_max, st.busy);
        wall = std::max(wall, st.wall);
      }
      const double measured = wall > 0 ? 1.0 - busy_max / wall : 0;
      const double theory = double(S - 1) / double(M + S - 1);
      const ModelConfig m = BenchModel(M);
      const long long act_bytes = 4LL * m.micro_batch * m.seq_len * m.hidden;
      std::printf(
          "{\"bench\":\"pipeline_bubble_s%d_m%d\",\"size_bytes\":%lld,\"value\":%.4f,\"unit\":\"fraction\","
          "\"baseline\":\"gpipe_theory_(S-1)/(m+S-1)\",\"baseline_value\":%.4f,\"ratio\":%.3f,"
          "\"stages\":%d,\"micro_batches\":%d,\"step_wall_s\":%.4f,\"busiest_stage_busy_s\":%.4f,\"cores\":%u,"
          "\"transport\":\"inproc\",\"model\":\"%s\"}\n",
          S, M, act_bytes, measured, theory, theory > 0 ? measured / theory : 0.0, S, M, wall / steps,
          busy_max / steps, cores, DescribeModel(m).c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
