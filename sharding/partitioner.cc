#include "sharding/partitioner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <utility>

namespace gt {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string Gb(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  return buf;
}

std::string Num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

struct Partitioner::StageCost {
  bool fits = false;
  int g = 1;       // GPUs per replica
  int d = 0;       // replicas
  int m = 0;       // micro-batches per replica
  int q = 0;       // in-flight micro-batches (memory)
  double need = 0; // bytes of one copy of the stage
  double t = 0;    // seconds for one micro-batch through a replica (fwd + bwd)
  double ar = 0;   // allreduce seconds
  double bound = kInf;  // m t / g + ar: the bisection's per-stage cost
};

// Scratch and the best result of one Solve call.
struct Partitioner::Search {
  const std::vector<int>* gpus = nullptr;
  std::vector<StageCost> costs;
  std::vector<int> cuts;
  double best_step = kInf;
  std::vector<int> best_order, best_cuts;
  // First failures seen, for the error message.
  int mem_site = -1, mem_first = 0, mem_last = 0, mem_gpus = 0;
  double mem_need = 0;
  int link_a = -1, link_b = -1;
};

Result<Cluster> ClusterFromConfig(const Config& config, double intra_site_gbps_per_gpu) {
  std::vector<SiteResources> sites;
  sites.reserve(config.sites.size());
  for (const SiteConfig& sc : config.sites) {
    SiteResources r;
    r.name = sc.name;
    r.peak_tflops = sc.gpu.peak_tflops;
    r.mfu = sc.gpu.mfu;
    r.memory_gb = sc.gpu.memory_gb;
    r.intra_site_gbps_per_gpu = intra_site_gbps_per_gpu;
    sites.push_back(std::move(r));
  }
  Cluster cluster(std::move(sites));
  for (size_t i = 0; i < config.links.size(); ++i) {
    const LinkConfig& l = config.links[i];
    const int a = config.SiteIndex(l.from), b = config.SiteIndex(l.to);
    if (a < 0 || b < 0 || a == b) {
      return InvalidArgument("links[" + std::to_string(i) + "]: '" + l.from + "' - '" + l.to +
                             "' must join two different defined sites");
    }
    cluster.SetLink(a, b, LinkSpec{l.bandwidth_gbps, l.latency_ms});
  }
  return cluster;
}

Result<Partitioner> Partitioner::Create(ModelProfile profile, Cluster cluster,
                                        PartitionOptions options) {
  if (profile.num_layers() < 1) {
    return InvalidArgument("model profile has no layers (build it with BuildGptProfile)");
  }
  const int n = cluster.size();
  if (cluster.links.size() != static_cast<size_t>(n) * n) {
    return InvalidArgument("cluster link matrix has " + std::to_string(cluster.links.size()) +
                           " entries, expected " + std::to_string(n) + "^2");
  }
  for (int i = 0; i < n; ++i) {
    const SiteResources& s = cluster.sites[i];
    const std::string at = "site " + std::to_string(i) + " ('" + s.name + "'): ";
    if (!(s.peak_tflops > 0) || !std::isfinite(s.peak_tflops))
      return InvalidArgument(at + "peak_tflops " + Num(s.peak_tflops) + " must be > 0");
    if (!(s.mfu > 0 && s.mfu <= 1)) return InvalidArgument(at + "mfu " + Num(s.mfu) + " must be in (0, 1]");
    if (!(s.memory_gb > 0) || !std::isfinite(s.memory_gb))
      return InvalidArgument(at + "memory_gb " + Num(s.memory_gb) + " must be > 0");
    if (!(s.intra_site_gbps_per_gpu > 0) || !std::isfinite(s.intra_site_gbps_per_gpu))
      return InvalidArgument(at + "intra_site_gbps_per_gpu " + Num(s.intra_site_gbps_per_gpu) +
                             " must be > 0");
    for (int j = 0; j < n; ++j) {
      const LinkSpec& l = cluster.link(i, j);
      if (i == j || !l.exists()) continue;
      if (!(l.latency_ms >= 0) || !std::isfinite(l.latency_ms) || !std::isfinite(l.bandwidth_gbps))
        return InvalidArgument("link '" + s.name + "' - '" + cluster.sites[j].name +
                               "': latency_ms must be >= 0 and bandwidth finite");
    }
  }
  if (options.exhaustive_max_sites < 0)
    return InvalidArgument("PartitionOptions.exhaustive_max_sites must be >= 0");
  if (options.max_gpus_per_replica < 1)
    return InvalidArgument("PartitionOptions.max_gpus_per_replica must be >= 1");
  if (!(options.usable_memory_fraction > 0 && options.usable_memory_fraction <= 1))
    return InvalidArgument("PartitionOptions.usable_memory_fraction must be in (0, 1]");

  Partitioner p;
  const ModelConfig& mc = profile.config();
  p.num_layers_ = profile.num_layers();
  p.micro_batches_ = std::max(1, profile.MicroBatchesPerStep());
  p.samples_per_mb_ = std::max(1, mc.micro_batch);
  p.bytes_per_param_ = mc.bytes_per_param;
  p.state_bytes_per_param_ = 2.0 * mc.bytes_per_param + mc.optimizer_bytes_per_param;
  p.boundary_bytes_ = profile.BoundaryBytesPerMicroBatch();
  p.pf_flops_.assign(p.num_layers_ + 1, 0);
  p.pf_params_.assign(p.num_layers_ + 1, 0);
  p.pf_stash_.assign(p.num_layers_ + 1, 0);
  p.min_layer_need_ = kInf;
  for (int i = 0; i < p.num_layers_; ++i) {
    const LayerProfile& l = profile.layer(i);
    p.pf_flops_[i + 1] = p.pf_flops_[i] + profile.EffectiveTrainFlops(i);
    p.pf_params_[i + 1] = p.pf_params_[i] + l.params;
    p.pf_stash_[i + 1] = p.pf_stash_[i] + l.stash_bytes_per_micro_batch;
    p.min_layer_need_ =
        std::min(p.min_layer_need_, l.params * p.state_bytes_per_param_ + l.stash_bytes_per_micro_batch);
  }
  p.site_flops_.resize(n);
  p.site_mem_.resize(n);
  p.site_intra_bps_.resize(n);
  for (int i = 0; i < n; ++i) {
    const SiteResources& s = cluster.sites[i];
    p.site_flops_[i] = s.EffectiveFlopsPerGpu();
    p.site_mem_[i] = s.memory_gb * 1e9 * options.usable_memory_fraction;
    p.site_intra_bps_[i] = s.intra_site_gbps_per_gpu * 1e9 / 8.0;
  }
  p.link_c_.assign(static_cast<size_t>(n) * n, kInf);
  p.link_lat_.assign(static_cast<size_t>(n) * n, 0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const LinkSpec& l = cluster.link(i, j);
      if (i == j || !l.exists()) continue;
      p.link_c_[i * n + j] = p.boundary_bytes_ / (l.bandwidth_gbps * 1e9 / 8.0);
      p.link_lat_[i * n + j] = l.latency_ms / 1000.0;
    }
  }
  p.profile_ = std::move(profile);
  p.cluster_ = std::move(cluster);
  p.options_ = options;
  return p;
}

std::string Partitioner::SiteName(int i) const {
  return "site '" + cluster_.sites[i].name + "'";
}

Partitioner::StageCost Partitioner::Cost(int site, int gpus, int first, int last, int k,
                                         int num_stages) const {
  StageCost c;
  const int N = micro_batches_;
  const double params = pf_params_[last] - pf_params_[first];
  c.q = std::min(num_stages - k, N);
  c.need = params * state_bytes_per_param_ + c.q * (pf_stash_[last] - pf_stash_[first]);
  const double ratio = c.need / site_mem_[site];
  if (!(ratio <= gpus)) return c;  // also catches gpus == 0
  int g = std::max(1, static_cast<int>(std::ceil(ratio)));
  if (g > gpus) return c;
  int d = gpus / g;
  if (d > N) {
    const int widen = std::min(gpus / N, std::max(g, options_.max_gpus_per_replica));
    if (widen > g) g = widen;
    d = std::min(N, gpus / g);
  }
  c.fits = true;
  c.g = g;
  c.d = d;
  c.m = (N + d - 1) / d;
  c.t = samples_per_mb_ * (pf_flops_[last] - pf_flops_[first]) / site_flops_[site];
  c.ar = d > 1 ? 2.0 * (d - 1) / d * (params * bytes_per_param_ / g) / site_intra_bps_[site] : 0.0;
  c.bound = c.m * c.t / g + c.ar;
  return c;
}

double Partitioner::StepTime(const int* order, const StageCost* costs, int S, double* fill,
                             double* steady, double* allreduce) const {
  const int n = cluster_.size();
  const double N = micro_batches_;
  double fill_f = 0, steady_f = 0, steady_b = 0, ar = 0;
  for (int k = 0; k < S; ++k) {
    const StageCost& c = costs[k];
    const double f = c.t / 3.0;
    fill_f += f;  // backward fill is 2x this, added below
    steady_f = std::max(steady_f, (c.m - 1) * f / c.g);
    steady_b = std::max(steady_b, (c.m - 1) * 2.0 * f / c.g);
    ar = std::max(ar, c.ar);
  }
  double fill_b = 2.0 * fill_f;
  for (int k = 0; k + 1 < S; ++k) {
    const size_t e = static_cast<size_t>(order[k]) * n + order[k + 1];
    const double cc = link_c_[e], lat = link_lat_[e];
    fill_f += cc + lat;
    fill_b += cc + lat;
    steady_f = std::max(steady_f, (N - 1) * cc);
    steady_b = std::max(steady_b, (N - 1) * cc);
  }
  if (fill) *fill = fill_f + fill_b;
  if (steady) *steady = steady_f + steady_b;
  if (allreduce) *allreduce = ar;
  return fill_f + steady_f + fill_b + steady_b + ar;
}

// Greedy fill under the per-stage bound tau: stage k takes layers while its bound stays <= tau and
// it fits, leaving one layer for each later stage. Fills s.cuts/s.costs; on success *max_cost is
// the largest stage bound used. With tau = inf it is the most memory-permissive cut, so its failure
// means the order cannot hold the model; that failure is recorded for the error message.
bool Partitioner::Greedy(Search& s, const int* order, int S, double tau, double* max_cost) const {
  const int L = num_layers_;
  const std::vector<int>& gpus = *s.gpus;
  int a = 0;
  double worst = 0;
  s.cuts[0] = 0;
  for (int k = 0; k < S; ++k) {
    const int site = order[k];
    const int G = gpus[site];
    const int max_b = L - (S - 1 - k);
    int b = k == S - 1 ? L : a + 1;
    StageCost c = Cost(site, G, a, b, k, S);
    if (!c.fits || c.bound > tau) {
      if (tau == kInf && s.mem_site < 0) {
        s.mem_site = site;
        s.mem_first = a;
        s.mem_last = b;
        s.mem_need = c.need;
        s.mem_gpus = G;
      }
      return false;
    }
    while (b < max_b) {
      StageCost next = Cost(site, G, a, b + 1, k, S);
      if (!next.fits || next.bound > tau) break;
      c = next;
      ++b;
    }
    s.costs[k] = c;
    s.cuts[k + 1] = b;
    worst = std::max(worst, c.bound);
    a = b;
  }
  *max_cost = worst;
  return true;
}

bool Partitioner::SolveOrder(Search& s, const int* order, int S) const {
  if (S > num_layers_) return false;
  if (static_cast<int>(s.costs.size()) < S) {
    s.costs.resize(S);
    s.cuts.resize(S + 1);
  }
  auto consider = [&]() {
    const double step = StepTime(order, s.costs.data(), S, nullptr, nullptr, nullptr);
    if (step < s.best_step) {
      s.best_step = step;
      s.best_order.assign(order, order + S);
      s.best_cuts.assign(s.cuts.begin(), s.cuts.begin() + S + 1);
    }
  };
  double hi = 0;
  if (!Greedy(s, order, S, kInf, &hi)) return false;
  consider();
  // Lower bound on the largest stage bound: the whole model's work spread over all the GPUs.
  double power = 0;
  for (int k = 0; k < S; ++k) power += (*s.gpus)[order[k]] * site_flops_[order[k]];
  double lo = micro_batches_ * samples_per_mb_ * pf_flops_[num_layers_] / power;
  lo = std::min(lo, hi);
  for (int iter = 0; iter < 40 && hi - lo > 1e-3 * hi; ++iter) {
    const double mid = 0.5 * (lo + hi);
    double got = 0;
    if (Greedy(s, order, S, mid, &got)) {
      hi = got;
      consider();
    } else {
      lo = mid;
    }
  }
  return true;
}

Status Partitioner::SearchBest(Search& s) const {
  const std::vector<int>& gpus = *s.gpus;
  const int n = cluster_.size();
  const int N = micro_batches_;
  std::vector<int> usable;
  for (int i = 0; i < n; ++i) {
    if (gpus[i] > 0 && gpus[i] * site_mem_[i] >= min_layer_need_) usable.push_back(i);
  }
  if (usable.empty()) return Status::Ok();

  std::vector<int> order;
  order.reserve(usable.size());
  if (static_cast<int>(usable.size()) <= options_.exhaustive_max_sites) {
    // Every subset in every order, by depth-first extension of linked chains.
    std::vector<char> used(n, 0);
    auto dfs = [&](auto&& self) -> void {
      SolveOrder(s, order.data(), static_cast<int>(order.size()));
      if (static_cast<int>(order.size()) >= num_layers_) return;
      for (int i : usable) {
        if (used[i]) continue;
        if (!order.empty() && link_c_[static_cast<size_t>(order.back()) * n + i] == kInf) {
          if (s.link_a < 0) { s.link_a = order.back(); s.link_b = i; }
          continue;
        }
        used[i] = 1;
        order.push_back(i);
        self(self);
        order.pop_back();
        used[i] = 0;
      }
    };
    for (int i : usable) {
      used[i] = 1;
      order.push_back(i);
      dfs(dfs);
      order.pop_back();
      used[i] = 0;
    }
    return Status::Ok();
  }

  // Heuristic. Rank sites by usable compute. For a ladder of link thresholds (the fastest link's
  // per-micro-batch transfer time, doubling, then no limit), chain the ranked sites by cheapest
  // insertion using only links under the threshold (a site that cannot be attached yet is retried
  // after each insertion) and cost growing chains. A chain whose lower bound (ideal compute, or its
  // WAN transfers and latencies) is no better than the best step found is skipped.
  std::vector<double> power(n, 0);
  for (int i : usable) {
    const double g = std::min<double>(gpus[i], static_cast<double>(N) * options_.max_gpus_per_replica);
    power[i] = g * site_flops_[i];
  }
  std::stable_sort(usable.begin(), usable.end(), [&](int x, int y) { return power[x] > power[y]; });
  double cmin = kInf, cmax = 0;
  for (size_t x = 0; x < usable.size(); ++x) {
    for (size_t y = x + 1; y < usable.size(); ++y) {
      const double c = link_c_[static_cast<size_t>(usable[x]) * n + usable[y]];
      if (c == kInf) continue;
      cmin = std::min(cmin, c);
      cmax = std::max(cmax, c);
    }
  }
  std::vector<double> thresholds;
  for (double t = cmin; t < cmax && thresholds.size() < 16; t *= 2) thresholds.push_back(t);
  thresholds.push_back(kInf);

  const double work = micro_batches_ * samples_per_mb_ * pf_flops_[num_layers_];
  const int max_sites = std::min<int>(static_cast<int>(usable.size()), num_layers_);
  std::vector<int> chain, pending, reversed;
  chain.reserve(usable.size());
  auto evaluate = [&]() {
    const int S = static_cast<int>(chain.size());
    double power_sum = 0, link_fill = 0, link_steady = 0;
    for (int k = 0; k < S; ++k) power_sum += gpus[chain[k]] * site_flops_[chain[k]];
    for (int k = 0; k + 1 < S; ++k) {
      const size_t e = static_cast<size_t>(chain[k]) * n + chain[k + 1];
      link_fill += 2.0 * (link_c_[e] + link_lat_[e]);
      link_steady = std::max(link_steady, 2.0 * (N - 1) * link_c_[e]);
    }
    if (std::max(work / power_sum, link_fill + link_steady) >= s.best_step) return;
    if (!SolveOrder(s, chain.data(), S) && S > 1) {
      reversed.assign(chain.rbegin(), chain.rend());  // the other end has less activation memory
      SolveOrder(s, reversed.data(), S);
    }
  };
  auto next_size = [](int S) { return S < 8 ? S + 1 : std::max(S + 1, static_cast<int>(std::ceil(S * 1.25))); };
  auto try_insert = [&](int x, double limit) {
    double best = kInf;
    size_t best_pos = 0;
    const size_t len = chain.size();
    auto w = [&](int a, int b) {
      const size_t e = static_cast<size_t>(a) * n + b;
      return link_c_[e] <= limit ? N * link_c_[e] + link_lat_[e] : kInf;
    };
    for (size_t pos = 0; pos <= len; ++pos) {
      double delta;
      if (pos == 0) delta = w(x, chain[0]);
      else if (pos == len) delta = w(chain[len - 1], x);
      else delta = w(chain[pos - 1], x) + w(x, chain[pos]) - w(chain[pos - 1], chain[pos]);
      if (delta < best) { best = delta; best_pos = pos; }
    }
    if (best == kInf) return false;
    chain.insert(chain.begin() + best_pos, x);
    return true;
  };

  chain.assign(1, usable[0]);
  evaluate();
  for (double limit : thresholds) {
    chain.assign(1, usable[0]);
    pending.clear();
    int next_eval = 2, last_eval = 1;
    for (size_t r = 1; r < usable.size() && static_cast<int>(chain.size()) < max_sites; ++r) {
      if (!try_insert(usable[r], limit)) {
        pending.push_back(usable[r]);
        continue;
      }
      for (bool grew = true; grew && static_cast<int>(chain.size()) < max_sites;) {
        grew = false;
        for (size_t i = 0; i < pending.size(); ++i) {
          if (try_insert(pending[i], limit)) {
            pending.erase(pending.begin() + i);
            grew = true;
            break;
          }
        }
      }
      if (static_cast<int>(chain.size()) >= next_eval) {
        evaluate();
        last_eval = static_cast<int>(chain.size());
        next_eval = std::min(next_size(last_eval), max_sites);
      }
    }
    if (static_cast<int>(chain.size()) != last_eval) evaluate();
    if (limit == kInf && !pending.empty() && s.link_a < 0) {
      s.link_a = chain.back();
      s.link_b = pending.front();
    }
  }
  return Status::Ok();
}

Result<Partition> Partitioner::Solve(const std::vector<int>& gpus) const {
  const int n = cluster_.size();
  if (static_cast<int>(gpus.size()) != n) {
    return InvalidArgument("gpus_per_site has " + std::to_string(gpus.size()) +
                           " entries but the cluster has " + std::to_string(n) + " sites");
  }
  int active = 0;
  double available = 0, active_gpus = 0;
  for (int i = 0; i < n; ++i) {
    if (gpus[i] < 0) {
      return InvalidArgument("gpus_per_site[" + std::to_string(i) + "] (" + SiteName(i) + ") = " +
                             std::to_string(gpus[i]) + " must be >= 0");
    }
    if (gpus[i] > 0) {
      ++active;
      active_gpus += gpus[i];
      available += gpus[i] * site_mem_[i];
    }
  }
  if (active == 0) {
    return Infeasible("no GPUs: all " + std::to_string(n) +
                      " sites offer 0 GPUs; give at least one site GPUs to train");
  }
  Search s;
  s.gpus = &gpus;
  RETURN_IF_ERROR(SearchBest(s));
  if (s.best_order.empty()) {
    const double state = pf_params_[num_layers_] * state_bytes_per_param_;
    const double acts = pf_stash_[num_layers_];
    if (state + acts > available) {
      return Infeasible("model does not fit in GPU memory: needs at least " + Gb(state + acts) +
                        " (weights, gradients and optimizer state " + Gb(state) +
                        " + activations of one micro-batch " + Gb(acts) + ") but the " +
                        Num(active_gpus) + " GPUs on " + std::to_string(active) +
                        " sites offer " + Gb(available) + " in total");
    }
    std::string msg = "no feasible pipeline";
    if (s.mem_site >= 0) {
      msg += ": " + SiteName(s.mem_site) + " (" + std::to_string(s.mem_gpus) + " GPUs x " +
             Gb(site_mem_[s.mem_site]) + ") cannot hold layers [" + std::to_string(s.mem_first) +
             ", " + std::to_string(s.mem_last) + ") which need " + Gb(s.mem_need) +
             " including in-flight activations";
    }
    if (s.link_a >= 0) {
      msg += std::string(s.mem_site >= 0 ? ", and" : ":") + " no link between " +
             SiteName(s.link_a) + " and " + SiteName(s.link_b) +
             " lets them hold adjacent stages; add a link or GPUs";
    } else {
      msg += "; add GPUs or memory, or use a smaller model or micro-batch";
    }
    return Infeasible(msg);
  }
  return Build(gpus, s.best_order, s.best_cuts);
}

double Partitioner::StepsPerHour(const std::vector<int>& gpus) const {
  const int n = cluster_.size();
  if (static_cast<int>(gpus.size()) != n) return 0;
  for (int g : gpus) {
    if (g < 0) return 0;
  }
  Search s;
  s.gpus = &gpus;
  if (!SearchBest(s).ok() || s.best_order.empty() || !(s.best_step > 0)) return 0;
  return 3600.0 / s.best_step;
}

Partition Partitioner::Build(const std::vector<int>& gpus, const std::vector<int>& order,
                             const std::vector<int>& cuts) const {
  const int S = static_cast<int>(order.size());
  const int n = cluster_.size();
  std::vector<StageCost> costs(S);
  for (int k = 0; k < S; ++k) costs[k] = Cost(order[k], gpus[order[k]], cuts[k], cuts[k + 1], k, S);
  Partition p;
  p.gpus_used_per_site.assign(n, 0);
  p.step_seconds = StepTime(order.data(), costs.data(), S, &p.fill_seconds, &p.steady_seconds,
                            &p.allreduce_seconds);
  p.steps_per_hour = p.step_seconds > 0 ? 3600.0 / p.step_seconds : 0;
  // Busiest resource per step: a stage's replica work or a link's transfers.
  double busiest = -1;
  for (int k = 0; k < S; ++k) {
    const StageCost& c = costs[k];
    StagePlacement st;
    st.site = order[k];
    st.first_layer = cuts[k];
    st.last_layer = cuts[k + 1];
    st.gpus_per_replica = c.g;
    st.data_parallel = c.d;
    st.gpus_used = c.g * c.d;
    st.micro_batches_per_replica = c.m;
    st.params = pf_params_[st.last_layer] - pf_params_[st.first_layer];
    st.state_bytes = profile_.StateBytes(st.first_layer, st.last_layer);
    st.memory_bytes_per_gpu = c.need / c.g;
    st.in_flight_micro_batches = c.q;
    st.compute_seconds_per_micro_batch = c.t;
    st.allreduce_seconds = c.ar;
    p.stages.push_back(st);
    p.gpus_used_per_site[st.site] += st.gpus_used;
    p.total_gpus_used += st.gpus_used;
    const double work = c.m * c.t / c.g;
    if (work > busiest) {
      busiest = work;
      p.bottleneck.kind = BottleneckKind::kCompute;
      p.bottleneck.stage = k;
      p.bottleneck.site_a = st.site;
      p.bottleneck.site_b = -1;
    }
  }
  double latency = 0;
  for (int k = 0; k + 1 < S; ++k) {
    const size_t e = static_cast<size_t>(order[k]) * n + order[k + 1];
    p.wan_bytes_per_step += 2.0 * micro_batches_ * boundary_bytes_;
    latency += 2.0 * link_lat_[e];
    const double work = 2.0 * micro_batches_ * link_c_[e];
    if (work > busiest) {
      busiest = work;
      p.bottleneck.kind = BottleneckKind::kWanLink;
      p.bottleneck.stage = -1;
      p.bottleneck.site_a = order[k];
      p.bottleneck.site_b = order[k + 1];
    }
  }
  Bottleneck& b = p.bottleneck;
  if (b.kind == BottleneckKind::kCompute && S > 1) {
    // Memory-bound: the busiest stage cannot give a boundary layer to either neighbour.
    const int k = b.stage;
    const StagePlacement& st = p.stages[k];
    bool can_shed = false;
    if (st.last_layer - st.first_layer > 1) {
      if (k > 0) {
        const StagePlacement& prev = p.stages[k - 1];
        can_shed |= Cost(prev.site, gpus[prev.site], prev.first_layer, st.first_layer + 1, k - 1, S).fits;
      }
      if (k + 1 < S) {
        const StagePlacement& next = p.stages[k + 1];
        can_shed |= Cost(next.site, gpus[next.site], st.last_layer - 1, next.last_layer, k + 1, S).fits;
      }
      if (!can_shed) b.kind = BottleneckKind::kMemory;
    }
  }
  if (p.allreduce_seconds > busiest && p.allreduce_seconds >= latency) {
    b.kind = BottleneckKind::kAllreduce;
    b.site_b = -1;
    for (int k = 0; k < S; ++k) {
      if (costs[k].ar == p.allreduce_seconds) { b.stage = k; b.site_a = order[k]; break; }
    }
  } else if (S > 1 && latency > busiest) {
    b.kind = BottleneckKind::kPipelineFill;
    b.stage = -1;
    b.site_a = b.site_b = -1;
  }
  switch (b.kind) {
    case BottleneckKind::kCompute:
      b.description = "compute on stage " + std::to_string(b.stage) + " (" + SiteName(b.site_a) + ")";
      break;
    case BottleneckKind::kMemory:
      b.description = "memory: stage " + std::to_string(b.stage) + " (" + SiteName(b.site_a) +
                      ") is the slowest and its neighbours have no memory for its layers";
      break;
    case BottleneckKind::kWanLink:
      b.description = "WAN link " + SiteName(b.site_a) + " - " + SiteName(b.site_b);
      break;
    case BottleneckKind::kAllreduce:
      b.description = "gradient allreduce of stage " + std::to_string(b.stage) + " (" +
                      SiteName(b.site_a) + ")";
      break;
    case BottleneckKind::kPipelineFill:
      b.description = "pipeline fill/drain: WAN latency exceeds the busiest resource's work";
      break;
    case BottleneckKind::kNone:
      b.description = "none";
      break;
  }
  return p;
}

Result<Partition> Partitioner::Evaluate(const std::vector<int>& gpus,
                                        const std::vector<StageSpec>& stages) const {
  const int n = cluster_.size();
  if (static_cast<int>(gpus.size()) != n) {
    return InvalidArgument("gpus_per_site has " + std::to_string(gpus.size()) +
                           " entries but the cluster has " + std::to_string(n) + " sites");
  }
  if (stages.empty()) return InvalidArgument("placement has no stages");
  const int S = static_cast<int>(stages.size());
  std::vector<int> order(S), cuts(S + 1);
  std::vector<char> seen(n, 0);
  for (int k = 0; k < S; ++k) {
    const StageSpec& st = stages[k];
    const std::string at = "stages[" + std::to_string(k) + "]: ";
    if (st.site < 0 || st.site >= n) return InvalidArgument(at + "site index " + std::to_string(st.site) + " out of range");
    if (seen[st.site]) return InvalidArgument(at + SiteName(st.site) + " already holds a stage");
    seen[st.site] = 1;
    const int expect_first = k == 0 ? 0 : stages[k - 1].last_layer;
    if (st.first_layer != expect_first || st.last_layer <= st.first_layer ||
        st.last_layer > num_layers_ || (k == S - 1 && st.last_layer != num_layers_)) {
      return InvalidArgument(at + "layers [" + std::to_string(st.first_layer) + ", " +
                             std::to_string(st.last_layer) +
                             ") break the contiguous cover of [0, " + std::to_string(num_layers_) + ")");
    }
    if (gpus[st.site] < 0) return InvalidArgument(at + "negative GPU count for " + SiteName(st.site));
    order[k] = st.site;
    cuts[k] = st.first_layer;
    if (k > 0 && link_c_[static_cast<size_t>(order[k - 1]) * n + order[k]] == kInf) {
      return Infeasible("no link between " + SiteName(order[k - 1]) + " and " + SiteName(order[k]) +
                        " for the boundary before stage " + std::to_string(k));
    }
  }
  cuts[S] = num_layers_;
  for (int k = 0; k < S; ++k) {
    const StageCost c = Cost(order[k], gpus[order[k]], cuts[k], cuts[k + 1], k, S);
    if (!c.fits) {
      return Infeasible("stage " + std::to_string(k) + " on " + SiteName(order[k]) + " (" +
                        std::to_string(gpus[order[k]]) + " GPUs x " + Gb(site_mem_[order[k]]) +
                        ") cannot hold layers [" + std::to_string(cuts[k]) + ", " +
                        std::to_string(cuts[k + 1]) + "): they need " + Gb(c.need) +
                        " with " + std::to_string(c.q) + " micro-batches in flight");
    }
  }
  return Build(gpus, order, cuts);
}

Result<Partition> PartitionModel(const ModelProfile& profile, const Cluster& cluster,
                                 const std::vector<int>& gpus_per_site,
                                 const PartitionOptions& options) {
  ASSIGN_OR_RETURN(Partitioner p, Partitioner::Create(profile, cluster, options));
  return p.Solve(gpus_per_site);
}

double StepsPerHour(const ModelProfile& profile, const Cluster& cluster,
                    const std::vector<int>& gpus_per_site, const PartitionOptions& options) {
  auto p = Partitioner::Create(profile, cluster, options);
  if (!p.ok()) return 0;
  return p->StepsPerHour(gpus_per_site);
}

}  // namespace gt
