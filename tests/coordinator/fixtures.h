// Small synthetic jobs for coordinator tests: two or three sites, a small GPT, supply built in code.
#pragma once

#include <cmath>
#include <vector>

#include "common/config.h"
#include "energy/power.h"

namespace gt::testing {

inline Config SmallConfig(int sites = 2) {
  Config c;
  c.name = "test";
  c.interval_seconds = 3600;
  const char* names[] = {"a", "b", "c"};
  for (int s = 0; s < sites; ++s) {
    SiteConfig site;
    site.name = names[s];
    site.gpus = 64;
    site.gpu.busy_w = 500;
    site.gpu.idle_w = 100;
    site.gpu.host_w = 0;  // GPU power only: the tests' hand computations
    site.pue = 1.0;
    c.sites.push_back(site);
  }
  for (int s = 1; s < sites; ++s) c.links.push_back({names[s - 1], names[s], 10, 20});
  c.model.name = "gpt-test";
  c.model.layers = 8;
  c.model.hidden = 1024;
  c.model.heads = 16;
  c.model.seq_len = 1024;
  c.model.vocab = 32000;
  c.model.micro_batch = 4;
  c.model.global_batch = 256;
  c.job.start = 1654041600;  // 2022-06-01
  c.job.deadline_hours = 48;
  c.job.steps = 1000;
  c.job.checkpoint_every_hours = 6;
  c.sim_end = c.job.start + 96 * 3600;
  return c;
}

// Site s: solar-like renewable peaking at `peak_mw` (phase-shifted per site) and a daily carbon
// cycle; `history` steps before the job start.
inline std::vector<SiteSupplyTrace> SyntheticSupply(const Config& c, size_t history, double peak_mw) {
  std::vector<SiteSupplyTrace> out;
  const size_t n = history + 96;
  for (size_t s = 0; s < c.sites.size(); ++s) {
    SiteSupplyTrace t;
    t.site = c.sites[s].name;
    t.start = c.job.start - static_cast<int64_t>(history) * 3600;
    t.step_seconds = 3600;
    for (size_t i = 0; i < n; ++i) {
      double hour = static_cast<double>((i + 7 * s) % 24);
      t.renewable_mw.push_back(std::max(0.0, peak_mw * std::sin((hour - 6) / 12 * M_PI)));
      t.carbon_g_per_kwh.push_back(300 + 150 * std::cos((hour + 5 * s) / 24 * 2 * M_PI) + 40 * s);
      t.price_per_mwh.push_back(50);
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace gt::testing
