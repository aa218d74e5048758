// Stage partitioner: cuts a model's layer list into contiguous pipeline stages, one per used site,
// and predicts the time of one optimizer step, so that policies can turn "GPUs busy per site" into
// steps per hour.
//
// ---------------------------------------------------------------------------------------------
// Step-time model. One optimizer step is N = ceil(global_batch / micro_batch) micro-batches of b
// samples. Stage k (0-based, S stages) runs layers [a, b) on site i, which offers G_i GPUs.
//
//  Speed. Effective FLOP/s per GPU F_i = peak_tflops * 1e12 * mfu.
//  Memory. One copy of stage k needs
//      need_k = params(a,b) * (2p + o) + q_k * stash(a,b),   q_k = min(S - k, N)
//    bytes (weights p + gradients p + optimizer state o per parameter, plus the stored activations of
//    the micro-batches in flight; a 1F1B schedule keeps at most S - k of them at stage k. The step
//    time below is GPipe's, which equals 1F1B's; only 1F1B's memory bound is used). Usable memory
//    per GPU M_i = memory_gb * 1e9 * usable_memory_fraction.
//  Replica. A replica of a stage is one GPU holding all of the stage's layers if need_k <= M_i;
//    otherwise the stage is split further over g_k = ceil(need_k / M_i) GPUs of the site (an
//    intra-site pipeline of g_k sub-stages; finer than one layer this means tensor parallelism),
//    each holding need_k / g_k. g_k > G_i: the stage does not fit on the site (Infeasible).
//  Data parallelism. d_k = min(floor(G_i / g_k), N) replicas (each needs >= 1 micro-batch). If the
//    site has GPUs for more than N replicas, the spare GPUs widen each replica, g_k up to
//    max(g_k, max_gpus_per_replica); what is left stays unused (gpus_used <= offered).
//    Each replica processes m_k = ceil(N / d_k) micro-batches per step.
//  Compute. A micro-batch takes t_k = b * flops(a,b) / F_i seconds to pass through a replica
//    (forward 1/3, backward 2/3: backward = 2 x forward); a replica of g_k sub-stages accepts a new
//    micro-batch every t_k / g_k seconds. flops(a,b) uses measurements when the profile has them.
//  WAN. The boundary between stages on sites i and j carries A = b * s * h * p bytes per micro-batch
//    forward (activations) and A backward (gradients): c_ij = A / bandwidth seconds each way, plus
//    the one-way latency l_ij. Links are full duplex; all N micro-batches cross the same link.
//  Pipeline. GPipe runs a forward phase then a backward phase. Each phase is a flow shop whose
//    resources are the stages (service r = t_k/3 or 2t_k/3; a micro-batch occupies a replica for
//    r/g_k; n = m_k per replica) and the links (service c_ij, n = N):
//        phase = sum_stages r + sum_links (c + l)  +  max_resources (n - 1) * (service / g)
//    = the first micro-batch's trip through the whole pipeline (fill/drain, so every WAN latency is
//    paid twice per step) + the bottleneck resource's work on the remaining micro-batches (a link
//    that is slower than every stage is the "transfer time that is not overlapped"). For S = 1 and
//    g = 1 this is m * t; for equal stages it is GPipe's (m + S - 1) * t; with unequal data-parallel
//    degrees it is an approximation.
//  Allreduce. The replicas of each stage allreduce its gradients over the site's fabric with a ring:
//        AR_k = 2 (d_k - 1) / d_k * (params(a,b) * p / g_k) / B_i
//    B_i = intra-site bandwidth per GPU (SiteResources::intra_site_gbps_per_gpu, default 100 Gbps).
//    Sites reduce in parallel; not overlapped with compute.
//  step_seconds = forward phase + backward phase + max_k AR_k;  steps_per_hour = 3600 / step_seconds.
//  Not modelled: optimizer-update time, communication inside a replica (tensor parallel or between
//  sub-stages), stragglers, link contention with other jobs.
//
// Search. Every used site carries exactly one stage of >= 1 layer; consecutive stages need a link.
//  For a fixed site order, the layer cuts come from a bisection on the per-stage bound
//  m_k t_k / g_k + AR_k with a greedy fill (each stage takes as many layers as fit under the bound
//  and in memory); every cut set tried is costed with the exact model and the best is kept.
//  Site orders: with <= exhaustive_max_sites usable sites, every subset in every order. Otherwise
//  sites are ranked by usable compute, chained by cheapest insertion on per-step WAN cost
//  (N * c + l; missing links are never used), and the top-k chain (both directions) is tried for
//  k = 1..8 and then k growing by 25 % up to all usable sites (at most the number of layers).
//  Cost: O(orders * bisection steps * (layers + stages)); about 1.5 ms for 100 sites, 100,000 GPUs
//  and 98 layers (bench/bench_partition.cc), about 70 us for 10 sites and 26 layers.
//
// Thread-safety: a Partitioner is immutable after Create; its const methods may be called from any
// number of threads at once.
// ---------------------------------------------------------------------------------------------
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "sharding/model_profile.h"
#include "sharding/plan.h"

namespace gt {

struct SiteResources {
  std::string name;
  double peak_tflops = 312;                // per GPU, dense bf16
  double mfu = 0.4;                        // achieved fraction of peak, (0, 1]
  double memory_gb = 80;                   // per GPU, 1 GB = 1e9 bytes
  double intra_site_gbps_per_gpu = 100;    // allreduce bandwidth per GPU inside the site

  double EffectiveFlopsPerGpu() const { return peak_tflops * 1e12 * mfu; }
};

// A WAN link; bandwidth_gbps <= 0 means no link (the two sites cannot hold adjacent stages).
struct LinkSpec {
  double bandwidth_gbps = 0;
  double latency_ms = 0;
  bool exists() const { return bandwidth_gbps > 0; }
};

// Sites and the symmetric link matrix between them.
struct Cluster {
  std::vector<SiteResources> sites;
  std::vector<LinkSpec> links;  // sites.size()^2, row-major, symmetric; the diagonal is unused

  explicit Cluster(std::vector<SiteResources> s = {})
      : sites(std::move(s)), links(sites.size() * sites.size()) {}
  int size() const { return static_cast<int>(sites.size()); }
  const LinkSpec& link(int a, int b) const { return links[a * sites.size() + b]; }
  // Sets both directions. a, b must be valid, distinct indices.
  void SetLink(int a, int b, LinkSpec spec) {
    links[a * sites.size() + b] = spec;
    links[b * sites.size() + a] = spec;
  }
};

// The cluster described by a config: one SiteResources per SiteConfig (GPU fields copied; the
// intra-site bandwidth, which SiteConfig does not carry, is `intra_site_gbps_per_gpu`), links from
// config.links. Errors name the link that references an unknown site.
Result<Cluster> ClusterFromConfig(const Config& config, double intra_site_gbps_per_gpu = 100);

struct PartitionOptions {
  // Sites at or below this count (with GPUs) are tried in every subset and order.
  int exhaustive_max_sites = 4;
  // Spare GPUs (beyond N replicas) may widen a replica up to this many GPUs (one NVLink node).
  int max_gpus_per_replica = 8;
  // Fraction of memory_gb usable for weights, grads, optimizer state and activations.
  double usable_memory_fraction = 1.0;
};

class Partitioner {
 public:
  // Validates the inputs (InvalidArgument naming the site or field): every site needs
  // peak_tflops > 0, 0 < mfu <= 1, memory_gb > 0, intra_site_gbps_per_gpu > 0; links need
  // latency_ms >= 0 and a square matrix; options need positive values.
  static Result<Partitioner> Create(ModelProfile profile, Cluster cluster,
                                    PartitionOptions options = {});

  // The fastest partition found for these GPU counts (one per cluster site; 0 = site unused).
  // Infeasible (with the reason) when no site has GPUs, the model does not fit the GPUs' memory
  // (need vs available in GB), or the sites that would be needed are not linked.
  // InvalidArgument when gpus_per_site has the wrong size or a negative entry.
  Result<Partition> Solve(const std::vector<int>& gpus_per_site) const;

  // Solve(gpus_per_site)->steps_per_hour without building the plan; 0 when Solve would fail.
  double StepsPerHour(const std::vector<int>& gpus_per_site) const;

  // Costs a given placement (e.g. the running plan after a site lost GPUs). Stages must be in
  // pipeline order, on distinct sites, with contiguous ranges covering all layers, else
  // InvalidArgument; Infeasible if a stage does not fit or consecutive sites are not linked.
  Result<Partition> Evaluate(const std::vector<int>& gpus_per_site,
                             const std::vector<StageSpec>& stages) const;

  const ModelProfile& profile() const { return profile_; }
  const Cluster& cluster() const { return cluster_; }
  const PartitionOptions& options() const { return options_; }

 private:
  struct StageCost;
  struct Search;
  Partitioner() = default;

  StageCost Cost(int site, int gpus, int first, int last, int k, int num_stages) const;
  double StepTime(const int* order, const StageCost* costs, int num_stages, double* fill,
                  double* steady, double* allreduce) const;
  bool Greedy(Search& s, const int* order, int num_stages, double tau, double* max_cost) const;
  // Best cuts for one site order, folded into s; false if the order cannot hold the model.
  bool SolveOrder(Search& s, const int* order, int num_stages) const;
  Status SearchBest(Search& s) const;
  Partition Build(const std::vector<int>& gpus, const std::vector<int>& order,
                  const std::vector<int>& cuts) const;
  std::string SiteName(int i) const;

  ModelProfile profile_;
  Cluster cluster_;
  PartitionOptions options_;
  int num_layers_ = 0;
  int micro_batches_ = 0;     // N
  double samples_per_mb_ = 1;  // b
  double bytes_per_param_ = 2;
  double state_bytes_per_param_ = 16;  // 2p + o
  double boundary_bytes_ = 0;  // A
  std::vector<double> pf_flops_, pf_params_, pf_stash_;  // prefix sums, size num_layers_ + 1
  double min_layer_need_ = 0;  // smallest one-layer memory need (q = 1)
  std::vector<double> site_flops_, site_mem_, site_intra_bps_;
  std::vector<double> link_c_, link_lat_;  // per micro-batch transfer seconds (inf: no link), latency
};

// One-shot conveniences (build a Partitioner per call; prefer keeping a Partitioner when calling
// often).
Result<Partition> PartitionModel(const ModelProfile& profile, const Cluster& cluster,
                                 const std::vector<int>& gpus_per_site,
                                 const PartitionOptions& options = {});
double StepsPerHour(const ModelProfile& profile, const Cluster& cluster,
                    const std::vector<int>& gpus_per_site, const PartitionOptions& options = {});

}  // namespace gt
