// LiveCoordinator: placement by the policy, registration and assignment of workers, the
// compressed-time ledger, and the run report (see coordinator/live.h).
#include "coordinator/live.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "checkpoint/store.h"
#include "common/log.h"
#include "comms/transport.h"
#include "comms/zmq_store.h"
#include "coordinator/checkpoint_policy.h"
#include "coordinator/live_checkpoints.h"
#include "coordinator/policy.h"
#include "coordinator/protocol.h"
#include "coordinator/simulator.h"
#include "sharding/model_profile.h"
#include "sharding/partitioner.h"
#include "energy/forecast.h"

namespace gt {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

Status WriteSecretFile(const std::string& path, const std::string& text, mode_t mode) {
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path);
  if (!out) return IoError("cannot write '" + path + "'");
  out << text << "\n";
  out.close();
  if (!out) return IoError("cannot write '" + path + "'");
  if (chmod(path.c_str(), mode) != 0) return IoError("cannot chmod '" + path + "'");
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return IoError("cannot write '" + path + "'");
  return Status::Ok();
}

// One registered worker.
struct WorkerInfo {
  int rank = -1;
  int site = -1;
  std::string host, control_endpoint, data_key, data_endpoint;
  std::string peer;  // Transport peer name "rank<N>"
  // Assigned role.
  bool active = false;
  int stage = -1, replica = -1;
  int64_t next_step = 0;
  bool ready = false, done = false;
};

struct LiveStage {
  int site = -1;
  int first = 0, last = 0;
  std::vector<int> ranks;  // replica r -> worker rank
};

// Layers of the live model a stage can own: embedding, the blocks, the head (worker/layout.h).
int NumLiveLayers(const ModelConfig& m) { return m.layers + 2; }

std::string DescribeLiveModel(const ModelConfig& m) {
  return m.name + " layers=" + std::to_string(m.layers) + " hidden=" + std::to_string(m.hidden) + " heads=" +
         std::to_string(m.heads) + " seq=" + std::to_string(m.seq_len) + " vocab=" + std::to_string(m.vocab) +
         " batch=" + std::to_string(m.global_batch) + "x" + std::to_string(m.micro_batch);
}

}  // namespace

Result<LedgerRow> AccountLiveInterval(const SiteConfig& site, UnixSeconds time, double hours, double wall_seconds,
                                      double busy_worker_seconds, int workers, int plan_gpus, double work_steps,
                                      const SiteSupply& supply, double soc_mwh) {
  if (!(hours > 0) || !(wall_seconds > 0))
    return InvalidArgument("AccountLiveInterval: hours and wall_seconds must be positive");
  if (workers < 0 || plan_gpus < 0 || busy_worker_seconds < 0)
    return InvalidArgument("AccountLiveInterval: negative workers, GPUs or busy seconds");
  double duty = workers > 0 ? std::min(1.0, busy_worker_seconds / (workers * wall_seconds)) : 0.0;
  const double busy_gpus = workers > 0 ? duty * plan_gpus : 0.0;
  const double idle_gpus = workers > 0 ? plan_gpus - busy_gpus : 0.0;
  SiteLoad load;
  load.extra_it_mwh = (busy_gpus * site.gpu.busy_w + idle_gpus * site.gpu.idle_w) / 1e6 * hours;
  LedgerRow row;
  row.time = time;
  row.hours = hours;
  row.site = site.name;
  row.busy_gpus = static_cast<int>(std::lround(busy_gpus));
  row.idle_gpus = static_cast<int>(std::lround(idle_gpus));
  row.work_steps = work_steps;
  row.carbon_g_per_kwh = supply.carbon_g_per_kwh;
  row.flow = Dispatch(site, soc_mwh, supply, load, hours);
  return row;
}

namespace {

double Mean(const std::vector<double>& x) {
  double s = 0;
  for (double y : x) s += y;
  return x.empty() ? 0.0 : s / x.size();
}

}  // namespace

// Feeds the measured per-stage compute times into the planner's cost model (the live model's
// profile, ModelProfile::SetMeasuredStageTime) and compares the partitioner's predicted step time
// for the live pipeline (GPipe flow shop, see sharding/partitioner.h) with the measured one. The
// live ranks are modelled as identical devices of a nominal speed (it cancels out), joined by
// loopback links; gradient allreduce and transfers are counted at loopback-like bandwidths.
template <typename Stages>
json CheckCostModel(const ModelConfig& model, const Stages& stages, int replicas,
                    const std::map<int, std::vector<double>>& stage_wall,
                    const std::map<int, std::vector<double>>& stage_compute) {
  const double kNominalFlops = 1e9;
  auto profile = BuildGptProfile(model);
  if (!profile.ok() || stages.empty()) return {{"error", profile.status().ToString()}};
  const double samples_per_replica = static_cast<double>(model.global_batch) / replicas;
  std::vector<SiteResources> sites;
  std::vector<StageSpec> specs;
  for (size_t k = 0; k < stages.size(); ++k) {
    auto it = stage_compute.find(static_cast<int>(k));
    if (it == stage_compute.end() || it->second.empty()) return {{"error", "no compute time reported"}};
    Status st = profile->SetMeasuredStageTime(stages[k].first, stages[k].last, Mean(it->second) / samples_per_replica,
                                              kNominalFlops);
    if (!st.ok()) return {{"error", st.ToString()}};
    SiteResources r;
    r.name = "stage" + std::to_string(k);
    r.peak_tflops = kNominalFlops / 1e12;
    r.mfu = 1;
    r.memory_gb = 1e6;
    r.intra_site_gbps_per_gpu = 10;
    sites.push_back(r);
    specs.push_back({static_cast<int>(k), stages[k].first, stages[k].last});
  }
  Cluster cluster(sites);
  for (int a = 0; a < cluster.size(); ++a)
    for (int b = a + 1; b < cluster.size(); ++b) cluster.SetLink(a, b, {10, 0.05});
  PartitionOptions po;
  po.max_gpus_per_replica = 1;
  auto part = Partitioner::Create(std::move(profile).value(), cluster, po);
  if (!part.ok()) return {{"error", part.status().ToString()}};
  auto eval = part->Evaluate(std::vector<int>(stages.size(), replicas), specs);
  if (!eval.ok()) return {{"error", eval.status().ToString()}};
  double measured = 0;
  for (const auto& [k, v] : stage_wall) measured = std::max(measured, Mean(v));
  return {{"predicted_step_s", eval->step_seconds},
          {"measured_step_s", measured},
          {"measured_over_predicted", eval->step_seconds > 0 ? measured / eval->step_seconds : 0.0},
          {"note", "measured per-stage compute fed into the profile; the partitioner's pipeline model "
                   "predicts the step (GPipe fill/drain + bottleneck stage + allreduce)"}};
}

struct LiveCoordinator::Impl {
  LiveOptions opt;
  bool curve = true;
  CurveKeyPair coord_keys, control_keys;
  std::unique_ptr<Transport> control;
  std::unique_ptr<ZmqStoreServer> store;
  std::map<int, WorkerInfo> workers;  // by rank

  // ---- resume (LoadResumeState) ----
  std::optional<ckpt::CheckpointEntry> resume_from;
  json resume_state;                             // coordinator.json of resume_from
  std::vector<ckpt::CheckpointEntry> rejected;   // newer checkpoints that failed verification
  std::unique_ptr<LiveCheckpoints> ckpts;

  // ---- planning (SetUpPlanning): the simulator's menu, supply, policy and forecasters ----
  std::optional<Simulator> sim;
  std::unique_ptr<Policy> policy;
  std::string forecaster_name;
  std::vector<std::unique_ptr<Forecaster>> f_renew, f_carbon;
  PolicyInput in;
  std::vector<std::string> site_names;
  size_t history = 0, per_day = 24;
  double dt = 1;                 // interval hours
  ModelConfig model;

  // ---- placement and pipeline (Place, BuildPipeline) ----
  Plan plan, last_proposal;
  size_t start_i = 0;
  double pos0 = 0;               // trace position (intervals since supply start) where training starts
  std::string placement_note, live_placement;
  std::vector<LiveStage> stages;
  int S = 0, R = 0;
  std::vector<int> idle, site_workers, model_gpus;

  // ---- training progress (Train, OnMessage) ----
  int64_t start_step = 0, end_step = 0, max_step_reported = -1, last_ckpt_step = 0;
  SteadyClock::time_point run_t0, train_t0, last_progress;
  double interval_wall = 1;
  double booked = 0;             // trace position booked into the ledger so far
  double last_ckpt_pos = 0;      // trace position of the last committed (or resumed-from) checkpoint
  Ledger ledger;
  std::vector<double> soc, busy;
  double steps_in_interval = 0;
  bool beyond_traces = false;
  std::map<int64_t, std::pair<int, double>> loss_acc;  // step -> (reports, sum)
  std::vector<std::pair<int64_t, double>> loss_curve;
  std::map<int, std::vector<double>> stage_wall, stage_compute;  // per stage, per step (replica 0)
  int proposals_ignored = 0;
  std::vector<std::string> proposals;
  json resumes = json::array();
  int done = 0;

  ~Impl() {
    std::error_code ec;
    if (!opt.run_dir.empty()) fs::remove_all(live::KeysDir(opt.run_dir), ec);
  }

  bool Cancelled() const { return opt.cancelled && opt.cancelled(); }

  Status Send(const WorkerInfo& w, const json& body) { return control->SendControl(w.peer, body); }

  void StopAll(const std::string& reason) {
    for (auto& [rank, w] : workers) {
      Status s = Send(w, {{"type", live::kStop}, {"reason", reason}});
      if (!s.ok()) GT_WARN("live", "stop to rank " << rank << " failed: " << s.ToString());
      // Closing the channel still delivers the stop (ZeroMQ lingers), and the worker's exit is then
      // not reported as a lost peer.
      (void)control->Disconnect(w.peer);
    }
  }

  Status Register();
  Status LoadResumeState();
  Status SetUpPlanning();
  Plan Decide(size_t i, double work_left, const Plan& current);
  Status Place();
  Status BuildPipeline();
  Status AssignAndStart();
  Status Train();
  double Position() const { return pos0 + Since(train_t0) / interval_wall; }
  UnixSeconds TimeAt(double pos) const;
  Status BookInto(double from, double to, Ledger& l, std::vector<double>& soc_v) const;
  Status CloseUntil(double pos);
  Status OnIntervalBoundary(size_t i);
  Status OnMessage(const json& c);
  Status OnStepCompleted(int64_t step, double loss);
  Status RequestCheckpoint(const std::string& kind, const std::string& reason);
  Status Committed(const std::optional<json>& record);
  Status SetCheckpointState(int64_t step);
  json CaptureState(int64_t step) const;
  json BuildReport() const;
  Result<json> Run();
};

Status LiveCoordinator::Impl::Register() {
  const auto deadline = SteadyClock::now() + opt.register_timeout;
  while (static_cast<int>(workers.size()) < opt.workers) {
    if (Cancelled()) return Aborted("cancelled while waiting for workers");
    if (SteadyClock::now() > deadline)
      return Timeout(std::to_string(workers.size()) + " of " + std::to_string(opt.workers) +
                     " workers registered within " + std::to_string(opt.register_timeout.count() / 1000) +
                     " s; check the worker logs (mpirun output)");
    auto r = control->Receive(std::chrono::milliseconds(200));
    if (!r.ok()) {
      if (r.status().code() == Code::kTimeout) continue;
      if (Cancelled()) return Aborted("cancelled (interrupt)");
      return r.status();
    }
    if (r->kind != FrameKind::kControl) continue;
    const json& c = r->control;
    const std::string type = c.value("type", "");
    if (type == live::kError) return Internal("worker rank " + std::to_string(c.value("rank", -1)) + ": " +
                                              c.value("message", std::string()));
    if (type != live::kRegister) continue;
    try {
      WorkerInfo w;
      w.rank = c.at("rank");
      const int size = c.at("size");
      if (size != opt.workers)
        return InvalidArgument("worker rank " + std::to_string(w.rank) + " reports world size " +
                               std::to_string(size) + " but the coordinator expects " + std::to_string(opt.workers));
      w.site = opt.config.SiteIndex(c.at("site").get<std::string>());
      if (w.site < 0) return InvalidArgument("worker rank " + std::to_string(w.rank) + " names unknown site");
      w.host = c.value("host", "");
      w.control_endpoint = c.at("control_endpoint");
      w.data_key = c.value("data_key", "");
      w.peer = "rank" + std::to_string(w.rank);
      if (workers.count(w.rank)) return InvalidArgument("rank " + std::to_string(w.rank) + " registered twice");
      RETURN_IF_ERROR(control->Connect(w.peer, w.control_endpoint, control_keys.public_key));
      GT_INFO("live", "registered rank " << w.rank << " site " << opt.config.sites[w.site].name << " host " << w.host);
      workers[w.rank] = w;
    } catch (const json::exception& e) {
      return InvalidArgument(std::string("malformed register message: ") + e.what());
    }
  }
  for (auto& [rank, w] : workers)
    RETURN_IF_ERROR(control->WaitConnected(w.peer, std::chrono::milliseconds(30000))
                        .WithContext("control channel to rank " + std::to_string(rank)));
  return Status::Ok();
}

// Picks the checkpoint to resume from (the newest that verifies; damaged newer ones are reported)
// and reads the coordinator's state from it. A fresh run refuses a directory holding checkpoints.
Status LiveCoordinator::Impl::LoadResumeState() {
  const std::string root = ckpt::CheckpointsDir(opt.run_dir);
  if (!opt.resume) {
    if (ckpt::HasCheckpoints(root))
      return InvalidArgument("run directory " + opt.run_dir + " already holds checkpoints (" + root +
                             "); continue that run with --resume, or start a new one with another --run-dir");
    return Status::Ok();
  }
  std::vector<std::string> removed;
  RETURN_IF_ERROR(ckpt::RemoveIncomplete(root, &removed));
  for (const auto& r : removed) GT_WARN("live", "removed the incomplete checkpoint write " << r);
  auto chosen = ckpt::NewestValid(root, &rejected);
  for (const auto& r : rejected)
    GT_WARN("live", "checkpoint " << r.name << " cannot be used: " << r.status.ToString()
                                  << "; falling back to an older one");
  if (!chosen.ok())
    return NotFound("--resume: no valid checkpoint in " + root +
                    (rejected.empty() ? std::string(" (none was written)") : " (every one is damaged, see above)") +
                    "; run without --resume to start over");
  std::ifstream in((fs::path(chosen->dir) / kCoordinatorStateFile).string());
  std::stringstream ss;
  ss << in.rdbuf();
  resume_state = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!resume_state.is_object() || !resume_state.contains("step") || !resume_state.contains("ledger"))
    return ParseError(chosen->dir + "/" + kCoordinatorStateFile + " is not a coordinator state");
  resume_from = *chosen;
  GT_INFO("live", "resuming from " << chosen->dir << " (step " << chosen->step << ")");
  return Status::Ok();
}

Status LiveCoordinator::Impl::SetUpPlanning() {
  const Config& cfg = opt.config;
  const int n_sites = static_cast<int>(cfg.sites.size());
  ASSIGN_OR_RETURN(Simulator s, Simulator::FromConfig(cfg));
  sim.emplace(std::move(s));
  ASSIGN_OR_RETURN(policy, MakePolicy(opt.policy));
  const auto& supply = sim->supply();
  dt = cfg.interval_seconds / 3600.0;
  history = static_cast<size_t>(std::max<int64_t>(0, (cfg.job.start - supply[0].start) / cfg.interval_seconds));
  per_day = static_cast<size_t>(std::max<int64_t>(1, 86400 / cfg.interval_seconds));
  forecaster_name = policy->wants_truth() ? "oracle" : cfg.policy.forecaster;
  f_renew.resize(n_sites);
  f_carbon.resize(n_sites);
  for (int i = 0; i < n_sites; ++i) {
    ASSIGN_OR_RETURN(f_renew[i], MakeForecaster(forecaster_name, &supply[i].renewable_mw, per_day));
    ASSIGN_OR_RETURN(f_carbon[i], MakeForecaster(forecaster_name, &supply[i].carbon_g_per_kwh, per_day));
  }
  soc.assign(n_sites, 0.0);
  busy.assign(n_sites, 0.0);
  for (int i = 0; i < n_sites; ++i) soc[i] = cfg.sites[i].battery.capacity_mwh * cfg.sites[i].battery.initial_soc;
  for (const auto& site : cfg.sites) site_names.push_back(site.name);
  in.config = &opt.config;
  in.menu = &sim->menu();
  in.interval_hours = dt;
  in.work_total_steps = cfg.job.steps;
  in.outlook.resize(n_sites);
  interval_wall = cfg.runtime.wall_seconds_per_trace_hour * dt;
  return Status::Ok();
}

// The policy's plan for interval `i` (the simulator's PolicyInput: outlook from the forecasters,
// battery states, the time since the last checkpoint).
Plan LiveCoordinator::Impl::Decide(size_t i, double work_left, const Plan& current) {
  const Config& cfg = opt.config;
  const auto& supply = sim->supply();
  in.now = supply[0].start + static_cast<int64_t>(i) * cfg.interval_seconds;
  in.work_remaining_steps = std::max(1e-9, work_left);
  in.hours_to_deadline = std::max(dt, cfg.job.deadline_hours - (static_cast<double>(i) - history) * dt);
  in.hours_since_checkpoint = std::max(0.0, (static_cast<double>(i) - last_ckpt_pos) * dt);
  in.battery_soc_mwh = soc;
  in.current = current;
  const size_t horizon = std::max<size_t>(1, policy->horizon(in));
  for (size_t s = 0; s < supply.size(); ++s) {
    auto fill = [&](const Forecaster& f, const std::vector<double>& truth, std::vector<double>& out) {
      out = f.Forecast(HistoryView{truth.data(), i}, horizon);
      out.resize(horizon, out.empty() ? truth[std::max<size_t>(i, 1) - 1] : out.back());
    };
    fill(*f_renew[s], supply[s].renewable_mw, in.outlook[s].renewable_mw);
    fill(*f_carbon[s], supply[s].carbon_g_per_kwh, in.outlook[s].carbon_g_per_kwh);
  }
  return policy->Decide(in);
}

// The plan at the start (or resume) interval; a policy that pauses there is followed until it runs
// (at most 7 days of trace time ahead, without waiting), else the fastest option runs.
Status LiveCoordinator::Impl::Place() {
  const Config& cfg = opt.config;
  const auto& supply = sim->supply();
  double work_done = 0;
  pos0 = static_cast<double>(history);
  if (resume_from) {
    const double t = resume_state.value("trace_time_unix", 0.0);
    pos0 = std::max(0.0, (t - static_cast<double>(supply[0].start)) / cfg.interval_seconds);
    work_done = cfg.job.steps * static_cast<double>(resume_from->step) / std::max<int64_t>(1, end_step);
  }
  start_i = static_cast<size_t>(pos0);
  last_ckpt_pos = pos0;
  plan = Decide(start_i, cfg.job.steps - work_done, Plan{});
  const size_t max_look = std::min(supply[0].size(), start_i + static_cast<size_t>(7 * per_day));
  const size_t first_i = start_i;
  while (plan.paused() && start_i + 1 < max_look) {
    ++start_i;
    plan = Decide(start_i, cfg.job.steps - work_done, Plan{});
  }
  if (plan.paused()) {
    const auto& fast = sim->menu().option(sim->menu().fastest());
    GT_WARN("live", "policy " << opt.policy << " pauses for 7 days of trace time; running the fastest option "
                              << fast.label << " anyway");
    start_i = first_i;
    plan.option = sim->menu().fastest();
    plan.busy_gpus = fast.gpus;
    plan.stages = fast.partition.stages;
    plan.steps_per_hour = fast.steps_per_hour;
    placement_note = "policy paused throughout the look-ahead; fastest option used";
  } else if (start_i > first_i) {
    pos0 = static_cast<double>(start_i);
    placement_note = "policy paused until " + FormatIsoTime(in.now) + "; the live run starts there";
    GT_INFO("live", placement_note);
  }
  last_proposal = plan;
  booked = pos0;
  GT_INFO("live", "plan at " << FormatIsoTime(TimeAt(pos0)) << ": " << plan.Describe(site_names) << " ("
                             << plan.reason << ")");
  return Status::Ok();
}

// One stage per site of the plan with registered workers (or every such site with --sites all);
// R replicas per stage; even layer split; everything else idle (see the header, 2.).
Status LiveCoordinator::Impl::BuildPipeline() {
  const Config& cfg = opt.config;
  const int n_sites = static_cast<int>(cfg.sites.size());
  std::map<int, std::vector<int>> by_site;  // site -> ranks (ascending)
  for (const auto& [rank, w] : workers) by_site[w.site].push_back(rank);
  std::vector<int> live_sites;
  for (const auto& st : plan.stages)
    if (std::find(live_sites.begin(), live_sites.end(), st.site) == live_sites.end() && by_site.count(st.site))
      live_sites.push_back(st.site);
  if (live_sites.empty()) GT_WARN("live", "no worker runs at the plan's sites; using every site with workers");
  if (live_sites.empty() || opt.sites == "all")
    for (const auto& [s, ranks] : by_site)
      if (std::find(live_sites.begin(), live_sites.end(), s) == live_sites.end()) live_sites.push_back(s);
  S = std::min<int>(static_cast<int>(live_sites.size()), NumLiveLayers(model));
  live_sites.resize(S);
  R = 1 << 30;
  for (int s : live_sites) R = std::min<int>(R, static_cast<int>(by_site[s].size()));
  while (R > 1 && model.global_batch % (R * model.micro_batch) != 0) --R;
  if (model.global_batch % (R * model.micro_batch) != 0)
    return InvalidArgument("runtime.live_model: micro_batch must divide global_batch");
  stages.assign(S, LiveStage{});
  const int L = NumLiveLayers(model);
  for (int k = 0; k < S; ++k) {
    stages[k].site = live_sites[k];
    const int base = L / S, extra = L % S;
    stages[k].first = k * base + std::min(k, extra);
    stages[k].last = stages[k].first + base + (k < extra ? 1 : 0);
    for (int r = 0; r < R; ++r) {
      const int rank = by_site[live_sites[k]][r];
      stages[k].ranks.push_back(rank);
      workers[rank].active = true;
      workers[rank].stage = k;
      workers[rank].replica = r;
    }
  }
  for (const auto& [rank, w] : workers)
    if (!w.active) idle.push_back(rank);
  if (!idle.empty())
    GT_INFO("live", idle.size() << " rank(s) idle in this plan (pipeline uses " << R << " replica(s) per stage)");
  site_workers.assign(n_sites, 0);
  for (const auto& st : stages) site_workers[st.site] += R;
  // Modelled GPUs per site standing behind the live workers (see LiveOptions::sites).
  model_gpus.assign(n_sites, 0);
  int plan_total = 0;
  for (int g : plan.busy_gpus) plan_total += g;
  bool plan_sites_only = true;
  for (const auto& st : stages)
    if (st.site >= static_cast<int>(plan.busy_gpus.size()) || plan.busy_gpus[st.site] == 0) plan_sites_only = false;
  for (const auto& st : stages)
    model_gpus[st.site] = plan_sites_only ? plan.busy_gpus[st.site] : std::max(1, plan_total / S);
  for (const auto& st : stages)
    live_placement += (live_placement.empty() ? "" : "+") + cfg.sites[st.site].name + ":" +
                      std::to_string(model_gpus[st.site]);
  return Status::Ok();
}

Status LiveCoordinator::Impl::AssignAndStart() {
  const Config& cfg = opt.config;
  const std::string store_ep = store->endpoint();
  const std::string resume_dir = resume_from ? resume_from->dir : std::string();
  for (auto& [rank, w] : workers) {
    json a = {{"type", live::kAssign}, {"role", w.active ? "stage" : "idle"}};
    if (w.active) {
      const LiveStage& st = stages[w.stage];
      a.update({{"stage", w.stage}, {"num_stages", S}, {"replica", w.replica}, {"replicas", R},
                {"first", st.first}, {"last", st.last}, {"job", 1}, {"seed", opt.seed},
                {"start_step", start_step}, {"end_step", end_step}, {"resume_dir", resume_dir},
                {"store_endpoint", store_ep}, {"collective", cfg.runtime.collective}, {"members", st.ranks}});
      if (w.stage > 0) a["prev_key"] = workers[stages[w.stage - 1].ranks[w.replica]].data_key;
      if (w.stage + 1 < S) a["next_key"] = workers[stages[w.stage + 1].ranks[w.replica]].data_key;
    }
    RETURN_IF_ERROR(Send(w, a));
  }
  const int active = S * R;
  int ready = 0;
  const auto ready_deadline = SteadyClock::now() + opt.register_timeout;
  while (ready < active) {
    if (Cancelled()) return Aborted("cancelled while waiting for workers to get ready");
    if (SteadyClock::now() > ready_deadline) return Timeout("stage workers did not report ready in time");
    auto m = control->Receive(std::chrono::milliseconds(200));
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) continue;
      if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
      return m.status();
    }
    const json& c = m->control;
    const std::string type = c.value("type", "");
    const int rank = c.value("rank", -1);
    if (type == live::kError)
      return Internal("worker rank " + std::to_string(rank) + ": " + c.value("message", std::string()));
    if (type != live::kReady || !workers.count(rank)) continue;
    workers[rank].data_endpoint = c.value("data_endpoint", "");
    workers[rank].next_step = c.value("next_step", int64_t{0});
    workers[rank].ready = true;
    if (workers[rank].next_step != start_step)
      return Internal("rank " + std::to_string(rank) + " is ready at step " + std::to_string(workers[rank].next_step) +
                      ", the run continues at step " + std::to_string(start_step));
    ++ready;
  }
  for (auto& [rank, w] : workers) {
    if (!w.active) continue;
    json s = {{"type", live::kStart}, {"start_step", start_step}};
    if (w.stage > 0) s["prev_endpoint"] = workers[stages[w.stage - 1].ranks[w.replica]].data_endpoint;
    if (w.stage + 1 < S) s["next_endpoint"] = workers[stages[w.stage + 1].ranks[w.replica]].data_endpoint;
    RETURN_IF_ERROR(Send(w, s));
  }
  GT_INFO("live", "training steps " << start_step << ".." << end_step << " on " << S << " stage(s) x " << R
                                    << " replica(s)");
  train_t0 = SteadyClock::now();
  last_progress = train_t0;
  max_step_reported = start_step - 1;
  last_ckpt_step = start_step;
  // The final state is always saved: a later --resume continues from it.
  std::set<int> writers;
  for (const auto& st : stages) writers.insert(st.ranks.begin(), st.ranks.end());
  ASSIGN_OR_RETURN(json cmd, ckpts->Open(end_step, "end", "end of the run", FormatIsoTime(TimeAt(pos0)), writers));
  for (int r : writers) RETURN_IF_ERROR(Send(workers[r], cmd));
  return Status::Ok();
}

UnixSeconds LiveCoordinator::Impl::TimeAt(double pos) const {
  return sim->supply()[0].start + static_cast<int64_t>(std::llround(pos * opt.config.interval_seconds));
}

// Books the live load of [from, to) (trace positions) into `l`, one row per site and interval piece;
// the busy seconds and steps accumulated since `booked` are shared in proportion to time.
Status LiveCoordinator::Impl::BookInto(double from, double to, Ledger& l, std::vector<double>& soc_v) const {
  const Config& cfg = opt.config;
  const auto& supply = sim->supply();
  const double span = to - from;
  for (double b = from; b < to - 1e-9;) {
    const size_t i = static_cast<size_t>(b);
    const double e = std::min(to, static_cast<double>(i + 1));
    if (i >= supply[0].size()) return Unavailable("beyond the traces");
    const double share = (e - b) / span;
    const double hours = (e - b) * dt, wall = (e - b) * interval_wall;
    for (size_t s = 0; s < cfg.sites.size(); ++s) {
      const int gpus = site_workers[s] > 0 ? model_gpus[s] : 0;
      ASSIGN_OR_RETURN(LedgerRow row, AccountLiveInterval(cfg.sites[s], TimeAt(b), hours, wall, busy[s] * share,
                                                          site_workers[s], gpus,
                                                          site_workers[s] > 0 ? steps_in_interval * share : 0.0,
                                                          supply[s].At(i), soc_v[s]));
      soc_v[s] = row.flow.soc_after_mwh;
      RETURN_IF_ERROR(l.Add(row));
    }
    b = e;
  }
  return Status::Ok();
}

// Books [booked, pos) into the run's ledger and resets the interval's accumulators.
Status LiveCoordinator::Impl::CloseUntil(double pos) {
  if (pos <= booked + 1e-9) return Status::Ok();
  Status s = beyond_traces ? Unavailable("beyond the traces") : BookInto(booked, pos, ledger, soc);
  if (!s.ok() && s.code() != Code::kUnavailable) return s;
  if (!s.ok() && !beyond_traces) {
    GT_WARN("live", "the run outlasted the loaded traces (sim_end " << FormatIsoTime(opt.config.sim_end)
                                                                    << "); later intervals are not in the ledger");
    beyond_traces = true;
  }
  booked = pos;
  std::fill(busy.begin(), busy.end(), 0.0);
  steps_in_interval = 0;
  return Status::Ok();
}

// At the start of interval `i`: the policy's plan for it (logged when it differs from the live
// plan, which stays fixed), and whether a checkpoint is due (coordinator/checkpoint_policy.h).
Status LiveCoordinator::Impl::OnIntervalBoundary(size_t i) {
  const Config& cfg = opt.config;
  const auto& supply = sim->supply();
  if (i >= supply[0].size()) return Status::Ok();
  const double frac = loss_curve.empty() ? 0 : double(loss_curve.back().first + 1) / end_step;
  Plan p = Decide(i, cfg.job.steps * (1 - frac), plan);
  if (p.Describe(site_names) != plan.Describe(site_names)) {
    ++proposals_ignored;
    if (proposals.size() < 20) proposals.push_back(FormatIsoTime(in.now) + " " + p.Describe(site_names));
    GT_INFO("live", "policy proposes " << p.Describe(site_names) << " at " << FormatIsoTime(in.now)
                                       << "; the live plan stays " << plan.Describe(site_names));
  }
  CheckpointTriggerInput t;
  t.interval_hours = dt;
  t.hours_since_checkpoint = (static_cast<double>(i) - last_ckpt_pos) * dt;
  t.every_hours = cfg.job.checkpoint_every_hours;
  t.measured_checkpoint_hours = ckpts->last_wall_seconds() / cfg.runtime.wall_seconds_per_trace_hour;
  t.current = &last_proposal;
  t.next = &p;
  t.site_names = site_names;
  for (size_t s = 0; s < cfg.sites.size(); ++s) {
    if (site_workers[s] == 0) continue;
    const SiteConfig& site = cfg.sites[s];
    CheckpointSiteOutlook o;
    o.name = site.name;
    o.load_mw = model_gpus[s] * site.gpu.busy_w * site.pue / 1e6;
    o.renewable_now_mw = supply[s].renewable_mw[i];
    // The outlook's first value forecasts interval i itself; the drop ahead starts at i + 1.
    const auto& f = in.outlook[s].renewable_mw;
    o.renewable_forecast_mw.assign(f.begin() + std::min<size_t>(1, f.size()), f.end());
    o.battery_mwh = std::max(0.0, soc[s] - site.battery.min_soc * site.battery.capacity_mwh);
    t.sites.push_back(std::move(o));
  }
  last_proposal = p;
  const CheckpointTrigger trig = DecideCheckpoint(t);
  if (trig.take && !ckpts->BusyExcept(end_step)) RETURN_IF_ERROR(RequestCheckpoint(trig.kind, trig.reason));
  return Status::Ok();
}

// Asks every stage rank for a checkpoint at the first boundary none of them can have passed.
Status LiveCoordinator::Impl::RequestCheckpoint(const std::string& kind, const std::string& reason) {
  const int64_t step = max_step_reported + 2;
  if (step >= end_step || ckpts->IsOpen(step)) return Status::Ok();  // the end checkpoint comes first
  std::set<int> writers;
  for (const auto& st : stages) writers.insert(st.ranks.begin(), st.ranks.end());
  ASSIGN_OR_RETURN(json cmd, ckpts->Open(step, kind, reason, FormatIsoTime(TimeAt(Position())), writers));
  GT_INFO("live", "checkpoint requested at step " << step << " (" << reason << ")");
  for (int r : writers) RETURN_IF_ERROR(Send(workers[r], cmd));
  last_ckpt_step = step;
  if (!loss_curve.empty() && loss_curve.back().first + 1 >= step)
    return SetCheckpointState(step);
  return Status::Ok();
}

Status LiveCoordinator::Impl::Committed(const std::optional<json>& record) {
  if (!record) return Status::Ok();
  auto t = ParseIsoTime((*record)["trace_time"].get<std::string>());
  // Counted from the start of the interval it was taken in, as the simulator counts.
  if (t.ok())
    last_ckpt_pos = std::floor((static_cast<double>(*t) - static_cast<double>(sim->supply()[0].start)) /
                               opt.config.interval_seconds);
  return Status::Ok();
}

Status LiveCoordinator::Impl::SetCheckpointState(int64_t step) {
  ASSIGN_OR_RETURN(auto rec, ckpts->SetState(step, CaptureState(step)));
  return Committed(rec);
}

// The coordinator's part of a checkpoint at the boundary before `step`: the trace clock, battery
// states, the ledger (the current interval booked up to now, on copies), the loss curve and the
// reconfigurations and checkpoints so far, the plan and pipeline in force.
json LiveCoordinator::Impl::CaptureState(int64_t step) const {
  const double pos = Position();
  Ledger l = ledger;
  std::vector<double> soc_v = soc;
  if (!beyond_traces) (void)BookInto(booked, pos, l, soc_v);
  json socs = json::object();
  for (size_t s = 0; s < soc_v.size(); ++s) socs[site_names[s]] = soc_v[s];
  json lc = json::array();
  for (const auto& [s, v] : loss_curve)
    if (s < step) lc.push_back({{"step", s}, {"loss", v}});
  json pipe = json::array();
  for (int k = 0; k < S; ++k)
    pipe.push_back({{"stage", k}, {"site", site_names[stages[k].site]}, {"first_layer", stages[k].first},
                    {"last_layer", stages[k].last}, {"ranks", stages[k].ranks}});
  return {{"format", "greentrain-coordinator-state"},
          {"version", 1},
          {"run", opt.config.name},
          {"step", step},
          {"seed", opt.seed},
          {"policy", opt.policy},
          {"model", {{"layers", model.layers}, {"hidden", model.hidden}, {"heads", model.heads},
                     {"seq_len", model.seq_len}, {"vocab", model.vocab}, {"micro_batch", model.micro_batch},
                     {"global_batch", model.global_batch}}},
          {"trace_time", FormatIsoTime(TimeAt(pos))},
          {"trace_time_unix", static_cast<double>(sim->supply()[0].start) + pos * opt.config.interval_seconds},
          {"battery_soc_mwh", socs},
          {"ledger", l.ToJson()},
          {"loss_curve", lc},
          {"checkpoints", ckpts->records()},
          {"reconfigurations", json::array()},
          {"resumes", resumes},
          {"plan", {{"placement", plan.Describe(site_names)}, {"live_placement", live_placement}}},
          {"pipeline", pipe},
          {"replicas", R},
          {"policy_proposals_ignored", proposals_ignored}};
}

Status LiveCoordinator::Impl::OnStepCompleted(int64_t step, double loss) {
  loss_curve.emplace_back(step, loss);
  steps_in_interval += 1;
  if (step % 10 == 0 || step + 1 == end_step)
    GT_INFO("live", "step " << step << " loss " << std::fixed << std::setprecision(4) << loss << " ("
                            << std::setprecision(1) << Since(train_t0) << " s)");
  for (int64_t n : ckpts->AwaitingState())
    if (n == step + 1) RETURN_IF_ERROR(SetCheckpointState(n));
  if (opt.checkpoint_every > 0 && max_step_reported + 2 - last_ckpt_step >= opt.checkpoint_every &&
      !ckpts->BusyExcept(end_step))
    RETURN_IF_ERROR(RequestCheckpoint("steps", "every " + std::to_string(opt.checkpoint_every) + " steps (--checkpoint-every)"));
  return Status::Ok();
}

Status LiveCoordinator::Impl::OnMessage(const json& c) {
  const std::string type = c.value("type", "");
  const int rank = c.value("rank", -1);
  if (!workers.count(rank)) return Status::Ok();
  WorkerInfo& w = workers[rank];
  if (type == live::kError)
    return Internal("worker rank " + std::to_string(rank) + " (stage " + std::to_string(w.stage) +
                    "): " + c.value("message", std::string()));
  if (type == live::kStep) {
    last_progress = SteadyClock::now();
    const int64_t step = c.value("step", int64_t{0});
    max_step_reported = std::max(max_step_reported, step);
    busy[w.site] += c.value("compute_s", 0.0);
    if (w.replica == 0) {
      stage_wall[w.stage].push_back(c.value("wall_s", 0.0));
      stage_compute[w.stage].push_back(c.value("compute_s", 0.0));
    }
    if (w.stage == S - 1) {
      auto& acc = loss_acc[step];
      acc.first += 1;
      acc.second += c.value("loss", 0.0);
      if (acc.first == R) {
        const double loss = acc.second / R;
        loss_acc.erase(step);
        RETURN_IF_ERROR(OnStepCompleted(step, loss));
      }
    }
  } else if (type == live::kCheckpointWritten) {
    ASSIGN_OR_RETURN(auto rec, ckpts->OnWritten(rank, c));
    RETURN_IF_ERROR(Committed(rec));
  } else if (type == live::kCheckpointFailed) {
    auto failed = ckpts->OnFailed(rank, c);
    if (failed && failed->kind == "end")
      return Internal("the final checkpoint failed at rank " + std::to_string(rank) + ": " +
                      c.value("message", std::string()));
    if (failed) RETURN_IF_ERROR(RequestCheckpoint(failed->kind, failed->reason + " (asked again at a later step)"));
  } else if (type == live::kDone) {
    if (!w.done) ++done;
    w.done = true;
  }
  return Status::Ok();
}

// Training: messages from the workers, the compressed trace clock's interval boundaries, limits.
Status LiveCoordinator::Impl::Train() {
  const int active = S * R;
  while (done < active) {
    if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
    if (Since(run_t0) > opt.timeout_seconds)
      return Timeout("the run exceeded its " + std::to_string(static_cast<int>(opt.timeout_seconds)) + " s limit");
    if (Since(last_progress) > opt.stall_seconds)
      return Timeout("no training progress for " + std::to_string(static_cast<int>(opt.stall_seconds)) +
                     " s; a worker is stuck or dead");
    const double pos = Position();
    const double boundary = std::floor(booked) + 1;
    if (pos >= boundary) {
      RETURN_IF_ERROR(CloseUntil(boundary));
      RETURN_IF_ERROR(OnIntervalBoundary(static_cast<size_t>(boundary)));
      continue;
    }
    const double to_boundary = (boundary - pos) * interval_wall;
    auto m = control->Receive(
        std::chrono::milliseconds(static_cast<int64_t>(std::clamp(to_boundary * 1000.0, 1.0, 200.0))));
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) continue;
      if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
      return m.status();
    }
    if (m->kind == FrameKind::kControl) RETURN_IF_ERROR(OnMessage(m->control));
  }
  return CloseUntil(Position());
}

Result<json> LiveCoordinator::Impl::Run() {
  const Config& cfg = opt.config;
  run_t0 = SteadyClock::now();
  model = cfg.runtime.live_model.layers > 0 ? cfg.runtime.live_model : cfg.model;
  if (model.layers < 1 || model.micro_batch < 1 || model.global_batch < model.micro_batch)
    return InvalidArgument("runtime.live_model: needs layers >= 1 and 1 <= micro_batch <= global_batch");
  end_step = opt.steps;
  RETURN_IF_ERROR(SetUpPlanning());
  if (resume_from) {
    start_step = resume_from->step;
    const json& m = resume_state.value("model", json::object());
    if (m.value("layers", -1) != model.layers || m.value("hidden", -1) != model.hidden ||
        m.value("heads", -1) != model.heads || m.value("seq_len", -1) != model.seq_len ||
        m.value("vocab", -1) != model.vocab || m.value("global_batch", -1) != model.global_batch)
      return InvalidArgument("the checkpoint " + resume_from->dir + " holds model " + m.dump() +
                             ", this run's live model is " + DescribeLiveModel(model) +
                             "; resume with the configuration that wrote it");
    opt.seed = resume_state.value("seed", opt.seed);
    ASSIGN_OR_RETURN(ledger, Ledger::FromJson(resume_state["ledger"]));
    for (const auto& p : resume_state.value("loss_curve", json::array()))
      loss_curve.emplace_back(p.value("step", int64_t{0}), p.value("loss", 0.0));
    ckpts->RestoreRecords(resume_state.value("checkpoints", json::array()));
    resumes = resume_state.value("resumes", json::array());
    const json socs = resume_state.value("battery_soc_mwh", json::object());
    for (size_t s = 0; s < site_names.size(); ++s) soc[s] = socs.value(site_names[s], soc[s]);
    json rej = json::array();
    for (const auto& r : rejected) rej.push_back({{"dir", r.dir}, {"problem", r.status.ToString()}});
    resumes.push_back({{"step", start_step}, {"checkpoint", resume_from->dir},
                       {"trace_time", resume_state.value("trace_time", "")}, {"rejected", rej}});
  }
  if (start_step >= end_step)
    return InvalidArgument("nothing to do: the checkpoint is at step " + std::to_string(start_step) +
                           " and the run ends at step " + std::to_string(end_step) + " (raise --steps)");
  RETURN_IF_ERROR(Place());
  RETURN_IF_ERROR(Register());
  RETURN_IF_ERROR(BuildPipeline());
  RETURN_IF_ERROR(AssignAndStart());
  RETURN_IF_ERROR(Train());
  StopAll("run complete");
  json report = BuildReport();
  RETURN_IF_ERROR(WriteText(opt.run_dir + "/report.json", report.dump(2) + "\n"));
  RETURN_IF_ERROR(ledger.WriteJson(opt.run_dir + "/ledger.json"));
  RETURN_IF_ERROR(ledger.WriteCsv(opt.run_dir + "/ledger.csv"));
  return report;
}

json LiveCoordinator::Impl::BuildReport() const {
  const Config& cfg = opt.config;
  std::vector<std::pair<int64_t, double>> lc_sorted = loss_curve;
  std::sort(lc_sorted.begin(), lc_sorted.end());
  json report;
  report["run"] = cfg.name;
  report["policy"] = opt.policy;
  report["forecaster"] = forecaster_name;
  report["plan"] = {{"placement", plan.Describe(site_names)}, {"reason", plan.reason},
                    {"steps_per_hour_modelled", plan.steps_per_hour}, {"note", placement_note},
                    {"live_placement", live_placement}, {"sites_mode", opt.sites}};
  json pipe = json::array();
  for (int k = 0; k < S; ++k)
    pipe.push_back({{"stage", k}, {"site", cfg.sites[stages[k].site].name}, {"first_layer", stages[k].first},
                    {"last_layer", stages[k].last}, {"ranks", stages[k].ranks},
                    {"modelled_gpus", model_gpus[stages[k].site]}});
  report["pipeline"] = pipe;
  report["replicas"] = R;
  report["idle_ranks"] = idle;
  report["model"] = DescribeLiveModel(model);
  report["micro_batches_per_replica"] = model.global_batch / (R * model.micro_batch);
  report["start_step"] = start_step;
  report["end_step"] = end_step;
  report["seed"] = opt.seed;
  json lc = json::array();
  for (const auto& [s, l] : lc_sorted) lc.push_back({{"step", s}, {"loss", l}});
  report["loss_curve"] = lc;
  const double train_wall = Since(train_t0);
  report["wall_seconds"] = Since(run_t0);
  report["train_wall_seconds"] = train_wall;
  report["trace_start"] = FormatIsoTime(TimeAt(pos0));
  report["trace_hours"] = train_wall / cfg.runtime.wall_seconds_per_trace_hour;
  json sts = json::object();
  for (const auto& [k, v] : stage_wall) {
    auto it = stage_compute.find(k);
    sts["stage" + std::to_string(k)] = {{"mean_wall_s", Mean(v)},
                                        {"mean_compute_s", it == stage_compute.end() ? 0.0 : Mean(it->second)}};
  }
  report["step_seconds"] = sts;
  report["cost_model_check"] = CheckCostModel(model, stages, R, stage_wall, stage_compute);
  report["ledger"] = ledger.ToJson();
  report["ledger_max_imbalance_mwh"] = ledger.MaxImbalanceMwh();
  report["ledger_complete"] = !beyond_traces;
  report["checkpoints"] = ckpts->records();
  report["checkpoint_dir"] = ckpts->root();
  report["resumes"] = resumes;
  report["policy_proposals_ignored"] = proposals_ignored;
  report["policy_proposals"] = proposals;
  report["energy_model"] =
      "each site's live workers stand in for the plan's GPUs there; duty = reported compute seconds / "
      "(workers x interval wall seconds); modelled IT energy = (duty x GPUs x busy_w + (1-duty) x GPUs x idle_w) "
      "x trace hours, dispatched with energy/power.h (PUE, renewables, battery, grid)";
  return report;
}

LiveCoordinator::LiveCoordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LiveCoordinator::~LiveCoordinator() = default;

std::string LiveCoordinator::control_endpoint() const { return impl_->control->endpoint(); }

Result<std::unique_ptr<LiveCoordinator>> LiveCoordinator::Create(LiveOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& I = *impl;
  if (options.run_dir.empty()) return InvalidArgument("live: run_dir is required");
  if (options.workers <= 0) options.workers = live::TotalRanks(options.config);
  if (options.workers <= 0) return InvalidArgument("live: no workers (sites[].ranks are all 0)");
  if (options.steps <= 0) options.steps = options.config.runtime.live_steps;
  if (options.policy.empty()) options.policy = options.config.policy.name;
  const auto& sec = options.config.runtime.transport_security;
  if (sec != "curve" && sec != "plain")
    return InvalidArgument("runtime.transport_security must be 'curve' or 'plain', got '" + sec + "'");
  I.curve = sec == "curve";
  std::error_code ec;
  fs::create_directories(options.run_dir, ec);
  if (ec) return IoError("cannot create run directory '" + options.run_dir + "': " + ec.message());
  if (options.keep_checkpoints < 1) return InvalidArgument("live: keep_checkpoints must be >= 1");
  I.opt = std::move(options);
  RETURN_IF_ERROR(I.LoadResumeState());
  I.ckpts = std::make_unique<LiveCheckpoints>(ckpt::CheckpointsDir(I.opt.run_dir), I.opt.keep_checkpoints);

  TransportOptions to;
  to.name = "coordinator";
  to.bind_endpoint = "tcp://" + I.opt.bind_host + ":*";
  to.plaintext = !I.curve;
  to.linger = std::chrono::milliseconds(1000);
  to.heartbeat_timeout = std::chrono::milliseconds(30000);
  fs::create_directories(live::KeysDir(I.opt.run_dir), ec);
  if (ec) return IoError("cannot create '" + live::KeysDir(I.opt.run_dir) + "': " + ec.message());
  chmod(live::KeysDir(I.opt.run_dir).c_str(), 0700);
  if (I.curve) {
    ASSIGN_OR_RETURN(I.coord_keys, GenerateCurveKeyPair());
    ASSIGN_OR_RETURN(I.control_keys, GenerateCurveKeyPair());
    RETURN_IF_ERROR(WriteSecretFile(live::CoordinatorPublicKeyPath(I.opt.run_dir), I.coord_keys.public_key, 0644));
    RETURN_IF_ERROR(WriteSecretFile(live::ControlKeyPath(I.opt.run_dir), I.control_keys.secret_key, 0600));
    to.keys = I.coord_keys;
    to.allowed_peers[I.control_keys.public_key] = "worker";
  }
  ASSIGN_OR_RETURN(I.control, Transport::Create(to));
  ASSIGN_OR_RETURN(I.store, ZmqStoreServer::Start("tcp://" + I.opt.bind_host + ":*"));
  return std::unique_ptr<LiveCoordinator>(new LiveCoordinator(std::move(impl)));
}

Result<json> LiveCoordinator::Run() {
  Result<json> r = impl_->Run();
  if (!r.ok()) impl_->StopAll("run failed: " + r.status().ToString());
  return r;
}

std::string FormatLiveReport(const json& r, int every) {
  std::ostringstream os;
  os << std::fixed;
  os << "greentrain live run: " << r.value("run", "") << " (policy " << r.value("policy", "") << ", model "
     << r.value("model", "") << ")\n";
  os << "placement: policy plan " << r["plan"].value("placement", "") << " at " << r.value("trace_start", "")
     << "; live pipeline " << r["plan"].value("live_placement", "") << " (--sites " << r["plan"].value("sites_mode", "")
     << ")\n";
  if (!r["plan"].value("note", std::string()).empty()) os << "  note: " << r["plan"].value("note", "") << "\n";
  os << "pipeline (" << r.value("replicas", 0) << " replica(s) per stage, "
     << r.value("micro_batches_per_replica", 0) << " micro-batches each, GPipe):\n";
  for (const auto& s : r["pipeline"])
    os << "  stage " << s.value("stage", 0) << " @ " << s.value("site", "") << ": layers ["
       << s.value("first_layer", 0) << "," << s.value("last_layer", 0) << ") ranks " << s["ranks"].dump()
       << " (stands for " << s.value("modelled_gpus", 0) << " GPUs)\n";
  if (!r["idle_ranks"].empty()) os << "  idle ranks: " << r["idle_ranks"].dump() << "\n";
  os << "loss curve:\n";
  const auto& lc = r["loss_curve"];
  // At most ~40 lines: every `every` steps, coarser (a multiple of `every`) for long runs.
  if (every < 1) every = 10;
  for (int e : {20, 50, 100, 200, 500, 1000})
    if (lc.size() / static_cast<size_t>(every) > 40 && e > every) every = e;
  for (size_t i = 0; i < lc.size(); ++i) {
    const int64_t step = lc[i].value("step", int64_t{0});
    if (step % every == 0 || i + 1 == lc.size())
      os << "  step " << std::setw(5) << step << "  loss " << std::setprecision(4) << lc[i].value("loss", 0.0) << "\n";
  }
  os << "energy and carbon per site (modelled, " << std::setprecision(1) << r.value("trace_hours", 0.0)
     << " trace hours):\n";
  os << "  site          demand MWh   renew MWh    grid MWh   carbon kg  busy GPU-h\n";
  const auto& ledger = r["ledger"];
  auto line = [&](const std::string& name, const json& t) {
    os << "  " << std::left << std::setw(12) << name << std::right << std::setprecision(4) << std::setw(12)
       << t.value("demand_mwh", 0.0) << std::setw(12)
       << t.value("renewable_used_mwh", 0.0) + t.value("battery_discharge_mwh", 0.0) << std::setw(12)
       << t.value("grid_mwh", 0.0) << std::setprecision(2) << std::setw(12) << t.value("carbon_kg", 0.0)
       << std::setprecision(1) << std::setw(12) << t.value("gpu_hours_busy", 0.0) << "\n";
  };
  for (const auto& [name, t] : ledger["sites"].items()) line(name, t);
  line("total", ledger["totals"]);
  os << "ledger max imbalance: " << std::scientific << std::setprecision(2) << r.value("ledger_max_imbalance_mwh", 0.0)
     << " MWh\n" << std::fixed;
  if (r.contains("cost_model_check") && r["cost_model_check"].contains("predicted_step_s"))
    os << "  cost model: predicted step " << r["cost_model_check"].value("predicted_step_s", 0.0)
       << " s from measured stage compute, measured " << r["cost_model_check"].value("measured_step_s", 0.0)
       << " s (ratio " << r["cost_model_check"].value("measured_over_predicted", 0.0) << ")\n";
  for (const auto& [k, v] : r["step_seconds"].items())
    os << "  " << k << ": " << std::setprecision(3) << v.value("mean_wall_s", 0.0) << " s/step wall, "
       << v.value("mean_compute_s", 0.0) << " s compute\n";
  if (r.contains("checkpoints") && !r["checkpoints"].empty()) {
    os << "checkpoints (" << r["checkpoints"].size() << ", kept in " << r.value("checkpoint_dir", "") << "):\n";
    for (const auto& c : r["checkpoints"])
      os << "  step " << std::setw(5) << c.value("step", 0) << " at " << c.value("trace_time", "") << "  "
         << std::setprecision(1) << c.value("bytes", 0.0) / 1e6 << " MB, training paused " << std::setprecision(3)
         << c.value("snapshot_s", 0.0) << " s, written in " << c.value("write_s", 0.0) << " s: "
         << c.value("reason", "") << "\n";
  }
  for (const auto& res : r.value("resumes", json::array()))
    os << "resumed at step " << res.value("step", 0) << " (trace " << res.value("trace_time", "") << ") from "
       << res.value("checkpoint", "") << "; " << res["rejected"].size() << " newer damaged checkpoint(s) skipped\n";
  os << "steps " << r.value("start_step", 0) << ".." << r.value("end_step", 0) << " in " << std::setprecision(1)
     << r.value("wall_seconds", 0.0) << " s wall; policy proposals not applied: " << r.value("policy_proposals_ignored", 0)
     << "\n";
  return os.str();
}

}  // namespace gt
