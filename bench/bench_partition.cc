// bench_partition: time of one stage-partitioner call (Partitioner::Solve, and the cheaper
// Partitioner::StepsPerHour) as sites, GPUs and layers grow, against the baseline of 10 sites,
// 1,000 GPUs and a 24-layer model measured in the same run.
//
// Input: GPT-3-shaped layers (hidden 12288, 96 heads, seq 2048, vocab 50257, global batch 1536),
// sites with a mix of GPU speeds and a full mesh of WAN links with bandwidths 10-400 Gbps and
// latencies 5-80 ms drawn from a fixed-seed generator; GPUs spread unevenly over the sites.
// Output: one JSON line per measurement
//   {"bench","size","value","unit","baseline","baseline_value","ratio"}, value = median
// microseconds per call. A summary of each partition goes to stderr.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "sharding/partitioner.h"

namespace {

using gt::Cluster;
using gt::LinkSpec;
using gt::ModelConfig;
using gt::Partitioner;
using gt::SiteResources;

struct Size {
  int sites, gpus, layers;
  std::string Name() const {
    return "sites=" + std::to_string(sites) + ",gpus=" + std::to_string(gpus) +
           ",layers=" + std::to_string(layers);
  }
};

struct Rng {
  uint64_t s;
  double Next() {  // [0, 1)
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) / static_cast<double>(1ULL << 53);
  }
};

Partitioner Make(const Size& z, std::vector<int>* gpus) {
  Rng rng{42};
  std::vector<SiteResources> sites;
  const double speeds[] = {312, 624, 989};
  for (int i = 0; i < z.sites; ++i) {
    SiteResources s;
    s.name = "site" + std::to_string(i);
    s.peak_tflops = speeds[i % 3];
    s.mfu = 0.35 + 0.1 * rng.Next();
    s.memory_gb = 80;
    sites.push_back(s);
  }
  Cluster c(sites);
  for (int i = 0; i < z.sites; ++i) {
    for (int j = i + 1; j < z.sites; ++j) {
      c.SetLink(i, j, LinkSpec{10 + 390 * rng.Next(), 5 + 75 * rng.Next()});
    }
  }
  // Uneven spread: weights in [0.5, 1.5), scaled to the total.
  std::vector<double> w(z.sites);
  double sum = 0;
  for (double& x : w) sum += (x = 0.5 + rng.Next());
  gpus->assign(z.sites, 0);
  int given = 0;
  for (int i = 0; i < z.sites; ++i) given += ((*gpus)[i] = static_cast<int>(z.gpus * w[i] / sum));
  (*gpus)[0] += z.gpus - given;

  ModelConfig m;
  m.layers = z.layers;
  m.hidden = 12288;
  m.heads = 96;
  m.seq_len = 2048;
  m.vocab = 50257;
  m.micro_batch = 1;
  m.global_batch = 1536;
  auto prof = gt::BuildGptProfile(m);
  auto p = Partitioner::Create(std::move(prof).value(), std::move(c));
  if (!p.ok()) {
    std::fprintf(stderr, "bench_partition: %s\n", p.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(p).value();
}

// Median microseconds per call of f over repetitions lasting about budget_ms (at least 5).
template <typename F>
double MedianMicros(F&& f, double budget_ms) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> us;
  const auto start = Clock::now();
  while (us.size() < 5 ||
         (std::chrono::duration<double, std::milli>(Clock::now() - start).count() < budget_ms &&
          us.size() < 1000)) {
    const auto t0 = Clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}

void Print(const char* bench, const Size& z, double value, const Size& base, double base_value) {
  std::printf(
      "{\"bench\":\"%s\",\"size\":\"%s\",\"value\":%.1f,\"unit\":\"us\",\"baseline\":\"%s\","
      "\"baseline_value\":%.1f,\"ratio\":%.3f}\n",
      bench, z.Name().c_str(), value, base.Name().c_str(), base_value, value / base_value);
  std::fflush(stdout);
}

}  // namespace

int main() {
  const Size base{10, 1000, 24};
  std::vector<Size> sizes = {base};
  // Doubling all three (capped at 100 sites, 96 layers), up to the target.
  for (Size z = base; z.gpus < 100000;) {
    z.sites = std::min(100, z.sites * 2);
    z.gpus = std::min(100000, z.gpus * 2);
    z.layers = std::min(96, z.layers * 2);
    sizes.push_back(z);
  }
  // One dimension at a time.
  for (int s : {20, 40, 80, 100}) sizes.push_back({s, 1000, 24});
  for (int g : {10000, 100000}) sizes.push_back({10, g, 24});
  for (int l : {48, 96}) sizes.push_back({10, 1000, l});
  sizes.push_back({4, 1000, 96});  // exhaustive search over orders

  double base_solve = 0, base_sph = 0;
  for (const Size& z : sizes) {
    std::vector<int> gpus;
    Partitioner p = Make(z, &gpus);
    auto r = p.Solve(gpus);
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", z.Name().c_str(), r.status().ToString().c_str());
      continue;
    }
    std::fprintf(stderr, "%s: %d stages, %d GPUs used, %.1f steps/h, bottleneck %s\n",
                 z.Name().c_str(), r->num_stages(), r->total_gpus_used, r->steps_per_hour,
                 r->bottleneck.description.c_str());
    const double solve = MedianMicros([&] { auto x = p.Solve(gpus); (void)x; }, 300);
    volatile double sink = 0;
    const double sph = MedianMicros([&] { sink = sink + p.StepsPerHour(gpus); }, 300);
    if (&z == &sizes.front()) {
      base_solve = solve;
      base_sph = sph;
    }
    Print("partition_solve", z, solve, base, base_solve);
    Print("partition_steps_per_hour", z, sph, base, base_sph);
  }
  return 0;
}
