#include "coordinator/menu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

namespace gt {

Result<OptionMenu> OptionMenu::Build(const Config& config, MenuOptions settings) {
  OptionMenu m;
  m.config_ = config;
  m.settings_ = settings;
  ASSIGN_OR_RETURN(ModelProfile profile, BuildGptProfile(config.model));
  ASSIGN_OR_RETURN(Cluster cluster, ClusterFromConfig(config));
  ASSIGN_OR_RETURN(Partitioner part, Partitioner::Create(std::move(profile), std::move(cluster)));
  m.partitioner_ = std::make_shared<const Partitioner>(std::move(part));
  m.state_bytes_ = m.partitioner_->profile().StateBytes(0, m.partitioner_->profile().num_layers());

  const int n = static_cast<int>(config.sites.size());
  std::set<std::vector<int>> seen;
  std::vector<std::string> reasons;
  auto add = [&](std::vector<int> gpus) {
    if (!seen.insert(gpus).second) return;
    auto p = m.partitioner_->Solve(gpus);
    if (!p.ok()) {
      reasons.push_back(p.status().message());
      return;
    }
    MenuOption o;
    o.partition = std::move(p).value();
    o.gpus = o.partition.gpus_used_per_site;  // the partitioner may leave some offered GPUs unused
    if (!seen.insert(o.gpus).second && o.gpus != gpus) return;
    o.steps_per_hour = o.partition.steps_per_hour;
    o.it_mw.assign(n, 0);
    o.facility_mw.assign(n, 0);
    for (int s = 0; s < n; ++s) {
      if (o.gpus[s] <= 0) continue;
      o.sites.push_back(s);
      o.it_mw[s] = o.gpus[s] * config.sites[s].gpu.busy_node_w() / 1e6;
      o.facility_mw[s] = o.it_mw[s] * config.sites[s].pue;
      if (!o.label.empty()) o.label += "+";
      o.label += config.sites[s].name + ":" + std::to_string(o.gpus[s]);
    }
    if (o.sites.empty() || o.steps_per_hour <= 0) return;
    m.options_.push_back(std::move(o));
  };
  for (int s = 0; s < n; ++s) {
    for (double level : settings.levels) {
      int g = static_cast<int>(std::floor(config.sites[s].gpus * level));
      if (g <= 0) continue;
      std::vector<int> gpus(n, 0);
      gpus[s] = g;
      add(gpus);
    }
  }
  if (settings.include_all_sites && n > 1) {
    std::vector<int> all(n);
    for (int s = 0; s < n; ++s) all[s] = config.sites[s].gpus;
    add(all);
  }
  if (m.options_.empty()) {
    std::string why = reasons.empty() ? "no site has GPUs" : reasons.front();
    return Infeasible("the model '" + config.model.name + "' cannot run on any configuration of the sites: " + why);
  }
  m.fastest_ = 0;
  for (int i = 1; i < m.size(); ++i)
    if (m.options_[i].steps_per_hour > m.options_[m.fastest_].steps_per_hour) m.fastest_ = i;
  for (const auto& o : m.options_) {
    auto it = std::find(m.placements_.begin(), m.placements_.end(), o.sites);
    m.placement_of_.push_back(static_cast<int>(it - m.placements_.begin()));
    if (it == m.placements_.end()) m.placements_.push_back(o.sites);
  }
  m.BuildMoveTables();
  return m;
}

void OptionMenu::BuildMoveTables() {
  const int n = num_sites();
  std::unordered_map<std::string, int> index;
  for (int s = 0; s < n; ++s) index.emplace(config_.sites[s].name, s);
  link_.assign(static_cast<size_t>(n) * n, -1);
  double slowest = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < config_.links.size(); ++i) {
    const LinkConfig& l = config_.links[i];
    slowest = std::min(slowest, l.bandwidth_gbps);
    auto a = index.find(l.from), b = index.find(l.to);
    if (a == index.end() || b == index.end()) continue;
    for (auto [x, y] : {std::pair{a->second, b->second}, std::pair{b->second, a->second}})
      if (link_[static_cast<size_t>(x) * n + y] < 0) link_[static_cast<size_t>(x) * n + y] = static_cast<int>(i);
  }
  slowest_gbps_ = std::isfinite(slowest) ? slowest : 1;  // no links at all: assume 1 Gbit/s over the internet
  const ModelProfile& profile = partitioner_->profile();
  const int L = profile.num_layers();
  range_bytes_.assign(static_cast<size_t>(L + 1) * (L + 1), 0);
  for (int lo = 0; lo < L; ++lo)
    for (int hi = lo + 1; hi <= L; ++hi)
      range_bytes_[static_cast<size_t>(lo) * (L + 1) + hi] =
          range_bytes_[static_cast<size_t>(lo) * (L + 1) + hi - 1] + profile.StateBytes(hi - 1, hi);
}

double OptionMenu::RangeBytes(int lo, int hi) const {
  const int L = partitioner_->profile().num_layers();
  if (lo < 0 || hi > L || lo >= hi) return partitioner_->profile().StateBytes(lo, hi);
  return range_bytes_[static_cast<size_t>(lo) * (L + 1) + hi];
}

double OptionMenu::IdleFacilityMw(int site, int idle_gpus) const {
  const auto& s = config_.sites[site];
  return idle_gpus * s.gpu.idle_node_w() / 1e6 * s.pue;
}

namespace {

// Bytes of stage state that must move from `from` to `to`: every layer whose site changes.
template <typename F>
void ForEachMovedRange(const std::vector<StagePlacement>& from, const std::vector<StagePlacement>& to, F f) {
  for (const auto& a : from)
    for (const auto& b : to) {
      int lo = std::max(a.first_layer, b.first_layer), hi = std::min(a.last_layer, b.last_layer);
      if (lo < hi && a.site != b.site) f(a.site, b.site, lo, hi);
    }
}

}  // namespace

bool SameStages(const std::vector<StagePlacement>& a, const std::vector<StagePlacement>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].site != b[k].site || a[k].first_layer != b[k].first_layer || a[k].last_layer != b[k].last_layer ||
        a[k].gpus_used != b[k].gpus_used)
      return false;
  return true;
}

double OptionMenu::MigrationBytes(const std::vector<StagePlacement>& from,
                                  const std::vector<StagePlacement>& to) const {
  double bytes = 0;
  ForEachMovedRange(from, to, [&](int, int, int lo, int hi) { bytes += RangeBytes(lo, hi); });
  return bytes;
}

double OptionMenu::MigrationSeconds(const std::vector<StagePlacement>& from,
                                    const std::vector<StagePlacement>& to) const {
  const int n = num_sites();
  double worst = 0;
  bool moved = false;
  ForEachMovedRange(from, to, [&](int a, int b, int lo, int hi) {
    const int li = a >= 0 && b >= 0 && a < n && b < n ? link_[static_cast<size_t>(a) * n + b] : -1;
    const LinkConfig* l = li >= 0 ? &config_.links[li] : nullptr;
    double gbps = l ? l->bandwidth_gbps : slowest_gbps_;
    double lat = l ? l->latency_ms / 1e3 : 0.1;
    worst = std::max(worst, RangeBytes(lo, hi) * 8 / (gbps * 1e9) + lat);
    moved = true;
  });
  return moved ? worst + settings_.restart_seconds : 0;
}

double OptionMenu::StartSeconds(const std::vector<StagePlacement>& from, bool was_running,
                                const std::vector<StagePlacement>& to) const {
  const double move_s = MigrationSeconds(from, to);
  if (move_s > 0) return move_s;
  return !was_running || !SameStages(from, to) ? settings_.restart_seconds : 0.0;
}

double OptionMenu::CheckpointSeconds(const std::vector<StagePlacement>& stages) const {
  double worst = 0;
  for (const auto& st : stages)
    worst = std::max(worst, st.state_bytes * 8 / (settings_.checkpoint_write_gbps * 1e9));
  return worst;
}

}  // namespace gt
