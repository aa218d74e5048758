// The greentrain job configuration (one JSON file) as plain structs, and its strict parser.
//
// Contract: LoadConfig/ParseConfig either return a fully validated Config or an error whose message
// names the JSON path at fault (e.g. "sites[1].battery.capacity_mwh") and a hint. Unknown keys, wrong
// types, out-of-range numbers, duplicate site names, links naming undefined sites and trace files
// that do not exist are all errors; nothing is silently ignored. Relative trace paths are resolved
// against the directory of the config file. Every field is documented in docs/config.md.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace gt {

// A column of a time-series file. `format` is auto|generic|eia930|electricitymaps|entsoe.
// An empty `column` means the format's default for the signal being read.
struct TraceRef {
  std::string file;     // absolute after parsing
  std::string format = "auto";
  std::string column;
  bool clip = false;    // clip values outside the physical range instead of refusing the trace
};

struct BatteryConfig {
  double capacity_mwh = 0;
  double charge_mw = 0;
  double discharge_mw = 0;
  double round_trip_efficiency = 0.9;  // (0, 1]
  double initial_soc = 0.5;            // fraction of capacity, [0, 1]
  double min_soc = 0.0;                // never discharged below this fraction
};

struct GpuConfig {
  std::string type = "generic";
  double idle_w = 100;        // drawn while allocated but not computing
  double busy_w = 400;        // drawn while training
  // The rest of the node per GPU (CPUs, memory, NICs, local storage, fans), drawn whenever the GPU
  // is allocated, busy or idle. Default: a DGX A100 draws at most 6.5 kW with 8 x 400 W GPUs, so
  // up to 412 W per GPU for the rest; 250 W is about 60 % of that peak (docs/accounting.md).
  double host_w = 250;
  double busy_node_w() const { return busy_w + host_w; }
  double idle_node_w() const { return idle_w + host_w; }
  double peak_tflops = 312;   // dense bf16/fp16 peak
  double mfu = 0.4;           // achieved fraction of peak for transformer training
  double memory_gb = 80;
};

// What a site buys besides grid power, for market-based carbon (GHG Protocol Scope 2) and the
// hourly carbon-free-energy score (docs/accounting.md).
struct ContractConfig {
  // A power purchase agreement: clean energy delivered in each interval. With ppa_mw the trace is a
  // profile scaled by its maximum (like wind); with ppa_share the contract is that share of the
  // trace's own MW values (e.g. 0.1 of a wind farm's output). Exactly one of them when `ppa` is set.
  std::optional<TraceRef> ppa;
  double ppa_mw = 0;
  double ppa_share = 0;
  double certificates_mw = 0;        // certificates matched hour by hour: this many MW every hour
  double certificates_mwh = 0;       // certificates matched annually: a pool over the whole run
  double residual_mix_g_per_kwh = -1;  // intensity of grid energy no instrument covers; < 0: the grid average
  bool any() const { return ppa || certificates_mw > 0 || certificates_mwh > 0 || residual_mix_g_per_kwh >= 0; }
};

struct SiteConfig {
  std::string name;
  int gpus = 0;
  GpuConfig gpu;
  double pue = 1.2;                 // facility power / IT power, >= 1
  double wind_mw = 0;               // nameplate of the site's own wind farm
  std::optional<TraceRef> wind;     // generation profile; scaled by its yearly maximum
  double solar_mw = 0;
  std::optional<TraceRef> solar;
  TraceRef carbon;                  // grid carbon intensity, gCO2/kWh (average)
  std::optional<TraceRef> marginal_carbon;  // marginal grid intensity (e.g. WattTime MOER), gCO2/kWh
  std::optional<TraceRef> price;    // grid price, currency/MWh
  double price_per_mwh = 0;         // flat grid price when no price trace is given
  double grid_limit_mw = std::numeric_limits<double>::infinity();
  BatteryConfig battery;
  ContractConfig contracts;
  std::vector<std::string> hosts;   // cluster mode: host names belonging to this site
  int ranks = 0;                    // one-box mode: worker processes simulating this site
};

struct LinkConfig {
  std::string from, to;             // undirected; both must name sites
  double bandwidth_gbps = 10;
  double latency_ms = 20;
  double loss_pct = 0;              // packet loss each direction (only `run --emulate-wan` uses it)
};

struct ModelConfig {
  std::string name = "gpt";
  int layers = 24;
  int hidden = 2048;
  int heads = 16;
  int seq_len = 2048;
  int vocab = 50257;
  int micro_batch = 1;              // samples per micro-batch
  int global_batch = 512;           // samples per optimizer step
  int bytes_per_param = 2;          // weights and activations (bf16)
  int optimizer_bytes_per_param = 12;  // fp32 master + Adam m, v
};

struct JobConfig {
  double steps = 10000;             // optimizer steps to run
  UnixSeconds start = 0;            // when the job is submitted (trace time)
  double deadline_hours = 72;       // from start
  double checkpoint_every_hours = 6;  // periodic checkpoints besides those before power drops
  // Whether a paused job gives its GPUs back after the checkpoint before the pause (the cluster
  // powers them down or runs other work): a pause then draws nothing and the resume is a cold start.
  // false: it keeps them, idle (idle_w + host_w each), until it resumes or finishes.
  bool pause_releases_gpus = false;
  // GPUs that keep drawing (idle, with their hosts) while the job is paused, of the `allocated` it
  // ran on: all of them, unless it gives them back. Both drivers book a pause, and greentrain prices
  // one, with it.
  int HeldWhilePaused(int allocated) const { return pause_releases_gpus ? 0 : allocated; }
};

struct PolicyConfig {
  std::string name = "greentrain";
  std::string forecaster = "blend";
  double carbon_threshold = 0;      // suspend-resume: run only below this gCO2/kWh (0: auto)
  // greentrain: fraction of the time left kept in reserve (when renewables are forecast), at most
  // half the slack (the time left beyond the work at full speed).
  double safety_margin = 0.1;
  double renewable_derate = 0.35;    // greentrain: plans on (1 - derate) x forecast renewables
  // greentrain: when > 0, the derate is measured instead, per site and step of the outlook: this
  // quantile of the share of forecast renewables that failed to come over the history before the
  // job (energy/forecast.h MeasuredShortfall); the fixed renewable_derate where there is no history.
  double derate_quantile = 0.8;
  // greentrain: the two hedges above apply while the time left is less than this multiple of the
  // time the work left needs at full speed (beyond it, renewables that fail to come can be waited
  // for again); a large value keeps them always.
  double hedge_below_slack = 2.0;
  // greentrain: the two hedges apply only to a job whose grids vary: the 90th over the 10th
  // percentile of the grid intensity of all its sites over the 14 days before it (measured once,
  // PolicyInput::grid_spread) at least this. On a flatter grid the work a renewable shortfall
  // displaces runs at about the same intensity whenever and wherever it runs, so hedging costs
  // about what it saves.
  // 1 keeps them whatever the spread.
  double hedge_min_spread = 1.5;
};

struct RuntimeConfig {
  double wall_seconds_per_trace_hour = 10;  // compressed clock for live runs
  // Who sets the live job's pace: "box" (the live steps run as fast as the box runs them and stand
  // for the job's, so a slow box falls behind the plan) or "plan" (the job advances at the modelled
  // speed of the plan in force: grants hold a fast box back and the trace clock waits for a slow one).
  std::string pace = "box";
  std::string collective = "gloo";          // gloo|nccl|mpi
  std::string transport_security = "curve"; // curve|plain
  int base_port = 47100;
  // Run directories (checkpoints, report, keys) go below this; empty = ./greentrain-runs.
  std::string checkpoint_dir;
  int keep_checkpoints = 3;  // committed checkpoints kept per run (older ones removed after a newer commit)
  // Where the workers' layer files go: "shared" (the run directory every site can reach) or "site"
  // (each site's own storage, <run dir>/sites/<site>/checkpoints; a restore fetches layers a site
  // lacks from a live rank of a site that holds them, over the encrypted transport).
  std::string checkpoint_storage = "shared";
  // The model actually trained by the live runtime (small enough for CPUs); empty layers = model.
  ModelConfig live_model;
  int live_steps = 200;
};

// How energy outside the sites' facilities is counted (docs/accounting.md).
struct AccountingConfig {
  // Energy of data crossing the WAN between sites, kWh per GB, booked at the grid intensity of the
  // sites at both ends. Default: Aslan et al. (2018), 0.06 kWh/GB for 2015, halving every two
  // years, gives about 0.006 kWh/GB for 2022 (the traces' year).
  double wan_kwh_per_gb = 0.006;
  // One emission-factor basis per run: "direct" (operational: on-site wind, solar and the battery
  // count 0), "life-cycle" (they count the factors below; the grid traces must be life-cycle too), or
  // "auto": from the grid traces' columns (Electricity Maps' "(LCA)" column is life-cycle; a run
  // whose traces disagree is refused).
  std::string basis = "auto";
  // Life-cycle factors, gCO2e per kWh: IPCC AR5 WGIII Annex III medians (onshore wind 11, utility
  // PV 48); the battery's own manufacturing per kWh it delivers (about 100 kgCO2e per kWh of
  // capacity over some 4,000 cycles: 25 g/kWh).
  double wind_lifecycle_g_per_kwh = 11;
  double solar_lifecycle_g_per_kwh = 48;
  double battery_lifecycle_g_per_kwh = 25;
};

struct Config {
  std::string name = "greentrain";
  std::string path;                  // the file it was read from, if any
  int64_t interval_seconds = 3600;   // planning and ledger interval
  UnixSeconds sim_end = 0;           // end of the period simulated (default: start + 1.5 x deadline: a job that misses its deadline still shows when it would finish)
  std::vector<SiteConfig> sites;
  std::vector<LinkConfig> links;
  ModelConfig model;
  JobConfig job;
  PolicyConfig policy;
  RuntimeConfig runtime;
  AccountingConfig accounting;

  // Index of the site with this name, or -1.
  int SiteIndex(const std::string& name) const;
  // The link between two sites (either direction), or nullptr.
  const LinkConfig* FindLink(const std::string& a, const std::string& b) const;
};

// Reads and validates a config file. Does check that trace files exist (not their contents).
Result<Config> LoadConfig(const std::string& path);
// Parses config JSON text; relative paths are resolved against `base_dir`.
Result<Config> ParseConfig(const std::string& json_text, const std::string& base_dir);

// The bundled default config (launch/configs/default.json in the source tree).
std::string DefaultConfigPath();

}  // namespace gt
