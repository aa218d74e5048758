// The option menu: the configurations a job may run in (GPUs busy per site), each with its speed
// from the stage partitioner and its IT power per site. Built once per job from the config; read by
// every policy. Immutable after Build; const access is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "sharding/model_profile.h"
#include "sharding/partitioner.h"
#include "sharding/plan.h"

namespace gt {

struct MenuOption {
  std::vector<int> gpus;             // busy GPUs per site (all sites)
  std::vector<int> sites;            // sites with gpus > 0
  Partition partition;               // stage placement and step time
  double steps_per_hour = 0;
  std::vector<double> it_mw;         // busy IT power per site, MW (GPUs + their hosts, before PUE)
  std::vector<double> facility_mw;   // it_mw x PUE
  std::string label;                 // "texas:128" or "california:256+texas:256"
};

struct MenuOptions {
  // Fractions of a site's GPUs offered as single-site options.
  std::vector<double> levels = {0.25, 0.5, 0.75, 1.0};
  // Also offer the fastest configuration using every site (the partitioner picks the subset).
  bool include_all_sites = true;
  // Assumed checkpoint write bandwidth per site (to durable storage), Gbit/s.
  double checkpoint_write_gbps = 16;
  // Fixed time to restart a stage after a migration or resume (process start, rendezvous), s.
  double restart_seconds = 60;
};

// Whether two stage lists are the same pipeline: the same sites hold the same layers on as many GPUs.
bool SameStages(const std::vector<StagePlacement>& a, const std::vector<StagePlacement>& b);

class OptionMenu {
 public:
  static Result<OptionMenu> Build(const Config& config, MenuOptions options = {});

  const std::vector<MenuOption>& options() const { return options_; }
  const MenuOption& option(int i) const { return options_[i]; }
  int size() const { return static_cast<int>(options_.size()); }
  int fastest() const { return fastest_; }
  const Config& config() const { return config_; }
  const Partitioner& partitioner() const { return *partitioner_; }
  const MenuOptions& settings() const { return settings_; }
  double state_bytes() const { return state_bytes_; }
  int num_sites() const { return static_cast<int>(config_.sites.size()); }
  // Placements: the distinct sets of sites the options run on (in order of first appearance), and
  // the placement of option i.
  const std::vector<std::vector<int>>& placements() const { return placements_; }
  int placement_of(int i) const { return placement_of_[i]; }

  // Facility MW of `idle_gpus` idle GPUs (with their hosts) at site s.
  double IdleFacilityMw(int site, int idle_gpus) const;
  // Seconds to move the model's state from the sites of `from` to those of `to` (max over stages
  // of bytes / link bandwidth; zero if the placement is unchanged) plus restart_seconds when
  // anything moves. Sites without a link are reached at the slowest configured link's speed.
  double MigrationSeconds(const std::vector<StagePlacement>& from, const std::vector<StagePlacement>& to) const;
  // Seconds before training can start at `to`: MigrationSeconds when state moves, else
  // restart_seconds when the job was not running (a resume, or the job's start) or when it runs
  // and its stages change in place (a resize: the ranks halt and regroup, as the live run does),
  // else 0. The checkpoint a move or pause is preceded by is not included (DeriveActions decides it).
  double StartSeconds(const std::vector<StagePlacement>& from, bool was_running,
                      const std::vector<StagePlacement>& to) const;
  // Bytes that cross the WAN for that move.
  double MigrationBytes(const std::vector<StagePlacement>& from, const std::vector<StagePlacement>& to) const;
  // Seconds to write a checkpoint of the state held at the given stages (in parallel per site).
  double CheckpointSeconds(const std::vector<StagePlacement>& stages) const;

 private:
  OptionMenu() = default;
  Config config_;  // a copy: the menu outlives nothing it refers to
  MenuOptions settings_;
  std::shared_ptr<const Partitioner> partitioner_;
  std::vector<MenuOption> options_;
  int fastest_ = -1;
  double state_bytes_ = 0;
  std::vector<std::vector<int>> placements_;
  std::vector<int> placement_of_;
  // Precomputed at Build for the planners' inner loops (MigrationSeconds runs per option per
  // decision): the index in config_.links of the link between sites a and b (link_[a * n + b], -1:
  // none; the first matching link, as Config::FindLink), the slowest link's bandwidth, and the
  // state bytes of layers [lo, hi) (range_bytes_[lo * (L + 1) + hi], summed in layer order exactly
  // as ModelProfile::StateBytes does).
  std::vector<int> link_;
  double slowest_gbps_ = 1;
  std::vector<double> range_bytes_;
  void BuildMoveTables();
  double RangeBytes(int lo, int hi) const;
};

}  // namespace gt
