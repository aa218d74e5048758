// LiveCoordinator: placement by the policy, registration and assignment of workers, the
// compressed-time ledger, and the run report (see coordinator/live.h).
#include "coordinator/live.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "checkpoint/store.h"
#include "common/log.h"
#include "common/strict_json.h"
#include "comms/keyring.h"
#include "comms/transport.h"
#include "comms/zmq_store.h"
#include "coordinator/checkpoint_policy.h"
#include "coordinator/engine.h"
#include "coordinator/live_checkpoints.h"
#include "coordinator/policy.h"
#include "coordinator/html_report.h"
#include "coordinator/metrics.h"
#include "coordinator/protocol.h"
#include "coordinator/run_outputs.h"
#include "coordinator/simulator.h"
#include "sharding/model_profile.h"
#include "sharding/partitioner.h"
#include "energy/contracts.h"
#include "energy/forecast.h"

namespace gt {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
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
  bool failed = false;  // excluded from later pipelines
  std::chrono::steady_clock::time_point last_seen;  // the last message from it (heartbeats included)
};

struct LiveStage {
  int site = -1;
  int first = 0, last = 0;
  std::vector<int> ranks;  // replica r -> worker rank
};

// The live pipeline a plan maps to (LiveCoordinator::Impl::LayoutFor).
struct LiveLayout {
  std::vector<LiveStage> stages;
  int R = 1;
  std::vector<int> model_gpus;  // per site, the plan's GPUs the live ranks stand for
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
  const double duty = workers > 0 ? std::min(1.0, busy_worker_seconds / (workers * wall_seconds)) : 0.0;
  const double busy_gpus = workers > 0 ? duty * plan_gpus : 0.0;
  const double idle_gpus = workers > 0 ? plan_gpus - busy_gpus : 0.0;
  // In phases, as the simulator dispatches (IntervalEngine::Dispatch): the plan's GPUs training for
  // the duty share of the interval, idle for the rest; renewables reach only load present with them.
  const int gpus = workers > 0 ? plan_gpus : 0;
  LedgerRow row;
  row.time = time;
  row.hours = hours;
  row.site = site.name;
  row.busy_gpus = static_cast<int>(std::lround(busy_gpus));
  row.idle_gpus = static_cast<int>(std::lround(idle_gpus));
  row.work_steps = work_steps;
  row.carbon_g_per_kwh = supply.carbon_g_per_kwh;
  row.flow = DispatchGpuPhases(site, soc_mwh, supply,
                               {{duty * hours, static_cast<double>(gpus), 0, false},
                                {(1 - duty) * hours, 0, static_cast<double>(gpus), false}},
                               &row.load);
  return row;
}

namespace {
// x > 0 rounded up to two significant digits (5.71 -> 5.8, 0.0775 -> 0.078).
double CeilTwoDigits(double x) {
  const double scale = std::pow(10.0, std::floor(std::log10(x)) - 1);
  return std::ceil(x / scale - 1e-9) * scale;
}
}  // namespace

std::string PaceAdvice(double live_over_plans, double wall_seconds_per_trace_hour) {
  if (!(live_over_plans > 0) || std::fabs(live_over_plans - 1) <= 0.1) return "";
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << "the box trained the job at " << live_over_plans
     << "x the pace of the plans' options, so the run "
     << (live_over_plans < 1 ? "fell behind them (and may miss a deadline the plans meet)"
                             : "ran ahead of them (and may finish before the plans would)")
     << "; runtime.wall_seconds_per_trace_hour " << std::defaultfloat << std::setprecision(3)
     << CeilTwoDigits(wall_seconds_per_trace_hour / live_over_plans) << " instead of "
     << wall_seconds_per_trace_hour << " would match their pace on this box (or runtime.pace \"plan\")";
  return os.str();
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
  Keyring keyring;              // the coordinator's pair and every rank's public key (CURVE)
  bool wrote_run_keys = false;  // <run_dir>/keys was written for this run (removed at the end)
  std::unique_ptr<Transport> control;
  std::unique_ptr<ZmqStoreServer> store;
  std::map<int, WorkerInfo> workers;  // by rank

  // ---- resume (LoadResumeState) ----
  std::optional<ckpt::CheckpointEntry> resume_from;
  json resume_state;                             // coordinator.json of resume_from
  std::vector<ckpt::CheckpointEntry> rejected;   // newer checkpoints that failed verification
  std::unique_ptr<LiveCheckpoints> ckpts;

  // ---- planning (SetUpPlanning): the simulator's menu and supply, the policy, the shared engine ----
  std::optional<Simulator> sim;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<IntervalEngine> engine;
  std::string forecaster_name;
  std::vector<std::string> site_names;
  size_t history = 0, per_day = 24;
  double dt = 1;                 // interval hours
  ModelConfig model;

  // ---- placement and pipeline (Place, BuildPipeline) ----
  Plan plan, last_running;
  size_t start_i = 0;
  double pos0 = 0;               // trace position (intervals since supply start) where training starts
  std::string placement_note, live_placement;
  std::vector<LiveStage> stages;
  int S = 0, R = 0;
  std::vector<int> idle, site_workers, model_gpus;

  // ---- training progress (Train, OnMessage) ----
  int64_t start_step = 0, end_step = 0, max_step_reported = -1;
  int64_t first_step = 0;                 // where this process's run began (0, or the resumed step)
  double step_wall_s = 0;                 // recent wall time per completed step (moving average)
  double step_intervals = 0;              // recent trace time per completed step, in intervals (same)
  double last_step_pos = 0;               // trace position of the last completed step
  int64_t granted = 0;                    // steps before this may run (the last allow sent)
  double reconfig_intervals = 0;          // measured trace time of a reconfiguration (moving average)
  double decided_ahead_wall_s = 0;        // how early the current interval's plan was acted on
  int64_t decided_for = -1;               // the interval whose plan has been acted on
  bool granting = true;                   // false while a halt is under way
  int64_t steps_ckpt = -1;                // the --checkpoint-every request open ahead, if any
  SteadyClock::time_point last_step_done;
  SteadyClock::time_point run_t0, train_t0, last_progress;
  std::unique_ptr<Clock> trace_clock;  // trace time (TraceReplayClock, or the test's FakeClock)
  double interval_wall = 1;
  // ---- runtime.pace "plan" (Pace): the job advances at the modelled speed of the plan in force ----
  bool pace_plan = false;
  double clock_lag_s = 0;          // trace seconds the clock was held back while the box lagged the plan
  double pace_rate = 0;            // live steps per interval of the plan in force (0: not paced now)
  double pace_anchor_pos = 0;      // trace position and completed steps where pace_rate took effect
  int64_t pace_anchor_steps = 0;
  int64_t pace_epoch = -1;         // the epoch pace_rate was anchored in
  int64_t pace_done = 0;           // steps completed in the current epoch (the next step's number)
  double pace_carry = 0;           // steps booked ahead of the plan's (BookInto)
  std::optional<double> frozen_at; // the trace position held during a paced reconfiguration
  double booked = 0;             // trace position booked into the ledger so far
  double last_ckpt_pos = 0;      // trace position of the last committed (or resumed-from) checkpoint
  Ledger ledger;
  std::vector<double> soc, busy;
  std::vector<int> allocated;    // per site, the GPUs of the plan last running (idle while paused)
  double steps_in_interval = 0;
  bool beyond_traces = false;
  std::map<int64_t, std::pair<int, double>> loss_acc;  // step -> (reports, sum)
  std::vector<std::pair<int64_t, double>> loss_curve;
  std::map<int, std::vector<double>> stage_wall, stage_compute;  // per stage, per step (replica 0)
  int proposals_ignored = 0;
  std::vector<std::string> proposals;
  json resumes = json::array();
  int done = 0;

  // ---- following the plan (Reconfigure) ----
  bool follow_plan = true;       // --sites plan: the live pipeline follows the policy's plans
  bool running = false;          // false before the start and while the plan pauses
  int64_t epoch = 0;
  std::set<int> halted;          // ranks that halted for the reconfiguration under way
  json actions = json::array();  // every reconfiguration carried out
  std::vector<std::pair<size_t, Plan>> plan_timeline;  // interval -> the plan in force in it
  std::vector<double> soc_at_start;
  std::string last_checkpoint_dir;
  double last_checkpoint_bytes = 0;
  int64_t last_checkpoint_step = 0;
  int recoveries = 0;
  // The stages whose ranks kept their layers in memory when they last halted (before held_at); the
  // next epoch takes state from them (memory, send_state) instead of the checkpoint. Cleared when
  // the workers drop it (start) or lose it (abort).
  std::vector<LiveStage> held_by;
  int64_t held_at = -1;
  std::map<int, json> state_sources;  // of the epoch being started: rank -> its state_from
  // ---- the operator's view ----
  Timeline timeline;                  // <run_dir>/trace.json
  std::optional<double> paused_since; // run seconds when the plan last paused
  std::set<int> paused_ranks;         // the stage ranks that paused then
  std::vector<int> peak_gpus;         // per site, the most GPUs a plan held (emissions.csv)
  std::unique_ptr<MetricsServer> metrics;  // --metrics-port
  Plan last_decision;                 // the policy's latest plan (with its schedule ahead) ...
  size_t last_decision_i = 0;         // ... for this interval
  json state_moves;                   // of the epoch being started: how the stage ranks got their state
  // ---- faults ----
  bool registered = false;            // Register finished: a later register is a rejoin
  json faults = json::array();        // every rank left out or rejoined: {event, ranks, trace_time, step, what}
  uint64_t impersonations = 0;        // messages dropped because their rank was not their key's
  std::set<int> unreachable;          // ranks a command could not be sent to (Send)
  std::deque<json> pending;           // screened messages read by Drain, not yet handled
  // The first epoch_failed of the current epoch: when, and what the rank said.
  std::optional<SteadyClock::time_point> epoch_failed_at;
  std::string epoch_failure;
  bool restart_epoch = false;         // a rank of the epoch left it (registered again): restart at once
  std::map<int, int64_t> left_at;     // ranks that left the current epoch -> the step their kept state is at

  ~Impl() {
    std::error_code ec;
    if (wrote_run_keys) fs::remove_all(live::KeysDir(opt.run_dir), ec);
  }

  bool Cancelled() const { return opt.cancelled && opt.cancelled(); }
  void Notify(const json& event) const {
    if (opt.observer) opt.observer(event);
  }

  // A command to one worker. A worker that cannot be reached within the control channel's send
  // timeout is noted unreachable (the liveness check then treats it as failed, as a silent one);
  // the run goes on. Only a malformed command is an error.
  Status Send(const WorkerInfo& w, const json& body) {
    if (unreachable.count(w.rank)) return Status::Ok();  // until the liveness check decides
    Status s = control->SendControl(w.peer, body);
    if (s.ok() || s.code() == Code::kInvalidArgument) return s;
    if (!w.failed && unreachable.insert(w.rank).second)
      GT_WARN("live", "rank " << w.rank << " cannot be reached: " << s.ToString());
    return Status::Ok();
  }

  void StopAll(const std::string& reason) {
    for (auto& [rank, w] : workers) {
      // A rank left out is told only if its channel is up (a dead one would hold the send for the
      // transport's send timeout).
      if (w.failed && !control->GetPeerState(w.peer).connected) continue;
      Status s = Send(w, {{"type", live::kStop}, {"reason", reason}});
      if (!s.ok()) GT_WARN("live", "stop to rank " << rank << " failed: " << s.ToString());
      // Closing the channel still delivers the stop (ZeroMQ lingers), and the worker's exit is then
      // not reported as a lost peer.
      (void)control->Disconnect(w.peer);
    }
  }

  Status SetUpKeys();
  std::string WorkerPublicKey(int rank) const {
    return curve && rank >= 0 && rank < static_cast<int>(keyring.workers.size()) ? keyring.workers[rank].public_key
                                                                                 : std::string();
  }
  Status Register();
  std::optional<json> Screen(ReceivedMessage& m);
  void Drain();
  Result<json> ReceiveControl(std::chrono::milliseconds wait);
  void Rejoin(int rank, const json& c);
  std::set<int> Silent();
  void LeaveOut(const std::set<int>& ranks, const std::string& what);
  Status OnSilent(const std::set<int>& silent);
  bool EpochBroken() const {
    return restart_epoch ||
           (epoch_failed_at && SteadyClock::now() - *epoch_failed_at > opt.heartbeat_timeout + std::chrono::seconds(1));
  }
  Status LoadResumeState();
  Status SetUpPlanning();
  // The engine's state for deciding interval i with `work_left` steps left, `current` running.
  EngineState State(size_t i, double work_left, const Plan& current) const;
  Plan Decide(size_t i, double work_left, const Plan& current);
  // Trace hours the job trained since its last checkpoint, counted as the simulator counts them
  // (HoursSinceCheckpointAfter): the intervals from the checkpoint's own up to, not including, `i`
  // whose plan in force (plan_timeline) trained.
  double HoursSinceCheckpoint(size_t i) const;
  Status Place();
  Result<LiveLayout> LayoutFor(const Plan& p) const;
  bool SamePipeline(const LiveLayout& l) const;
  void Apply(const LiveLayout& l);
  Status BuildPipeline(const Plan& p);
  std::string DescribePipeline() const;
  Status SendCmd(int rank, json body);
  json StateSources(int rank) const;
  Status SendStateRequests(int receiver, const std::string& endpoint);
  void CountStateMove(const json& ready);
  void RecordStateMoves(json& action) const;
  Status AssignAndStart(const std::string& resume_dir);
  Status Reconfigure(const Plan& next, const std::vector<Action>& acts);
  Status RecoverWithout(const std::set<int>& lost, const std::string& what, const Plan& target);
  std::optional<int64_t> SurvivorsStep();
  Status Train();
  // The trace position (intervals since the supply's start) on the trace clock, less the time it was
  // held back for a box slower than the plan (runtime.pace "plan"); while a reconfiguration is paced
  // (PacedReconfiguration), where it began.
  // Paced, never past the work: at most one step beyond the plan's line through the steps done.
  double Position() const {
    if (frozen_at) return *frozen_at;
    const double clock = ClockPosition();
    if (!(pace_plan && pace_rate > 0)) return clock;
    return std::min(clock, pace_anchor_pos + static_cast<double>(pace_done - pace_anchor_steps + 1) / pace_rate);
  }
  // The trace clock's position less the time it was held back (no pacing applied).
  double ClockPosition() const {
    return (static_cast<double>(trace_clock->Now() - sim->supply()[0].start) - clock_lag_s) /
           opt.config.interval_seconds;
  }
  // Holds the trace clock back to `pos` (when it is ahead of it): it continues from there.
  void HoldClockAt(double pos) {
    clock_lag_s += std::max(0.0, ClockPosition() - pos) * opt.config.interval_seconds;
  }
  // The job's (modelled) steps that `live` live steps stand for, and the live steps `job` stand for.
  double JobSteps(double live) const {
    return opt.config.job.steps * live / static_cast<double>(std::max<int64_t>(1, end_step));
  }
  double LiveSteps(double job) const {
    return job * static_cast<double>(end_step) / std::max<double>(1, static_cast<double>(opt.config.job.steps));
  }
  // Live steps per interval that the plan `p` stands for (0 when it pauses).
  double PlanLiveRate(const Plan& p) const {
    return p.paused() || !(p.steps_per_hour > 0) ? 0.0 : LiveSteps(p.steps_per_hour * dt);
  }
  void Pace();
  UnixSeconds TimeAt(double pos) const;
  // `carry`: paced to the plan, steps trained beyond the plan's in earlier pieces (counted in the next).
  Status BookInto(double from, double to, Ledger& l, std::vector<double>& soc_v, double& carry) const;
  Status CloseUntil(double pos);
  Status OnIntervalBoundary(size_t i);
  Status OnMessage(const json& c);
  Status OnStepCompleted(int64_t step, double loss);
  Status RequestCheckpoint(const std::string& kind, const std::string& reason);
  Status ScheduleStepsCheckpoint(int64_t after);
  std::set<int> StageRanks() const;
  bool SiteStorage() const { return opt.config.runtime.checkpoint_storage == live::kSiteStorage; }
  std::map<std::string, std::vector<int>> LiveRanksBySite() const;
  Result<json> CheckpointSources(int rank, const std::map<int, std::set<std::string>>& holders) const;
  Status TellSitesCommitted(const json& record);
  Status OpenCheckpoint(int64_t step, const std::string& kind, const std::string& reason);
  int64_t GrantWindow() const;
  Status Grant(int64_t completed_step);
  Status Committed(const std::optional<json>& record);
  Status SetCheckpointState(int64_t step);
  json CaptureState(int64_t step) const;
  json StatusSnapshot() const;
  void ReportStatus();
  void PublishMetrics(const json& status);
  json PredictedCarbon() const;
  json BuildReport() const;
  Result<json> Run();
};

// The run's CURVE keys: from opt.keys_dir, or fresh (written to <run_dir>/keys when asked).
Status LiveCoordinator::Impl::SetUpKeys() {
  if (!opt.keys_dir.empty()) {
    ASSIGN_OR_RETURN(keyring, LoadCoordinatorKeys(opt.keys_dir, opt.workers));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(keyring, GenerateKeyring(opt.workers));
  if (!opt.write_run_keys) return Status::Ok();
  // A run killed before it could clean up leaves its keys behind: they are replaced.
  RETURN_IF_ERROR(WriteKeyring(keyring, live::KeysDir(opt.run_dir), false, true));
  wrote_run_keys = true;
  return Status::Ok();
}

Status LiveCoordinator::Impl::Register() {
  const auto deadline = SteadyClock::now() + opt.register_timeout;
  while (static_cast<int>(workers.size()) < opt.workers) {
    if (Cancelled()) return Aborted("cancelled while waiting for workers");
    if (SteadyClock::now() > deadline)
      return Timeout(std::to_string(workers.size()) + " of " + std::to_string(opt.workers) +
                     " workers registered within " + std::to_string(opt.register_timeout.count() / 1000) +
                     " s; check the worker logs (mpirun output)");
    auto r = ReceiveControl(std::chrono::milliseconds(200));
    if (!r.ok()) {
      if (r.status().code() == Code::kTimeout) continue;
      if (Cancelled()) return Aborted("cancelled (interrupt)");
      return r.status();
    }
    const json& c = *r;
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
      w.last_seen = SteadyClock::now();
      // The key proved the rank: a second register is the same worker again (its channel to a
      // coordinator came back, or it was restarted): its new endpoints replace the old.
      if (workers.count(w.rank)) (void)control->Disconnect(w.peer);
      RETURN_IF_ERROR(control->Connect(w.peer, w.control_endpoint, WorkerPublicKey(w.rank)));
      GT_INFO("live", "registered rank " << w.rank << " site " << opt.config.sites[w.site].name << " host " << w.host);
      timeline.NameThread(Timeline::SitePid(w.site), w.rank, "rank " + std::to_string(w.rank));
      workers[w.rank] = w;
    } catch (const json::exception& e) {
      return InvalidArgument(std::string("malformed register message: ") + e.what());
    }
  }
  timeline.NameProcess(0, "coordinator");
  timeline.NameThread(0, 0, "plan changes");
  timeline.NameThread(0, 1, "decisions");
  for (size_t s = 0; s < opt.config.sites.size(); ++s)
    timeline.NameProcess(Timeline::SitePid(static_cast<int>(s)), "site " + opt.config.sites[s].name);
  for (auto& [rank, w] : workers) {
    RETURN_IF_ERROR(control->WaitConnected(w.peer, std::chrono::milliseconds(30000))
                        .WithContext("control channel to rank " + std::to_string(rank)));
    w.last_seen = SteadyClock::now();
  }
  registered = true;
  return Status::Ok();
}

// Every control message passes here (Screen). In CURVE mode the key that authenticated a message
// names its rank: a message claiming another rank is dropped and logged. Any message shows its rank
// alive; heartbeats end here; a rank treated as failed that is heard again, or registers again
// after Register, rejoins (Rejoin). The others are returned for the control loop.
std::optional<json> LiveCoordinator::Impl::Screen(ReceivedMessage& m) {
  if (m.kind != FrameKind::kControl) return std::nullopt;
  json& c = m.control;
  const json& rank_field = c.contains("rank") ? c["rank"] : json();
  const int rank = rank_field.is_number_integer() ? rank_field.get<int>() : -1;
  if (curve && m.peer != "rank" + std::to_string(rank)) {
    ++impersonations;
    GT_WARN("live", "dropped a '" << c.value("type", "") << "' claiming rank " << rank_field.dump() << " from the key of "
                                  << m.peer << " (" << m.peer_address << ")");
    return std::nullopt;
  }
  const std::string type = c.value("type", "");
  auto it = workers.find(rank);
  if (it != workers.end()) {
    it->second.last_seen = SteadyClock::now();
    if (registered && (it->second.failed || type == live::kRegister)) {
      Rejoin(rank, c);
      return std::nullopt;
    }
  }
  if (type == live::kHeartbeat) return std::nullopt;
  return std::move(c);
}

// Reads everything already queued (screened; the rest kept for ReceiveControl in order), so that
// liveness is judged on every message that has arrived, however long the loop was busy.
void LiveCoordinator::Impl::Drain() {
  while (true) {
    auto m = control->Receive(std::chrono::milliseconds(0));
    if (!m.ok()) return;
    if (auto c = Screen(*m)) pending.push_back(std::move(*c));
  }
}

// The next control message for the loop (queued ones first); Timeout when none within `wait`.
Result<json> LiveCoordinator::Impl::ReceiveControl(std::chrono::milliseconds wait) {
  const auto deadline = SteadyClock::now() + wait;
  while (true) {
    if (!pending.empty()) {
      json c = std::move(pending.front());
      pending.pop_front();
      return c;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    auto m = control->Receive(std::max(left, std::chrono::milliseconds(0)));
    if (!m.ok()) return m.status();
    if (auto c = Screen(*m)) return std::move(*c);
  }
}

// A rank treated as failed is alive again (it was stopped or cut off and has come back: its old
// epoch is ended), or a restarted worker process registered again (its new endpoints are used). It
// is idle until the next interval's plan places work on it.
void LiveCoordinator::Impl::Rejoin(int rank, const json& c) {
  WorkerInfo& w = workers[rank];
  const std::string type = c.value("type", "");
  if (type == live::kRegister) {
    const std::string endpoint = c.value("control_endpoint", std::string());
    if (endpoint.empty() || c.value("site", std::string()) != site_names[w.site]) {
      GT_WARN("live", "rank " << rank << " registered again with another site or no endpoint; ignored: " << c.dump());
      return;
    }
    (void)control->Disconnect(w.peer);
    if (!control->Connect(w.peer, endpoint, WorkerPublicKey(rank)).ok()) return;
    w.control_endpoint = endpoint;
    w.data_key = c.value("data_key", std::string());
    w.host = c.value("host", w.host);
    if (running && w.active && !w.failed) {
      // It left the epoch when its channel to the coordinator broke; the epoch cannot go on.
      restart_epoch = true;
      epoch_failure = "rank " + std::to_string(rank) + " registered again";
    }
  } else if (!w.failed || type == live::kError) {
    return;  // an error from a rank already left out changes nothing
  } else {
    // Its epoch is over: it leaves it (dropping its state) and waits for an assignment.
    (void)Send(w, {{"type", live::kAbort}, {"epoch", c.value("epoch", int64_t{-1})},
                   {"reason", "this rank was treated as failed; it rejoins as idle"}});
  }
  const bool was_active = w.active && !w.failed;
  w.failed = false;
  unreachable.erase(rank);
  w.done = false;
  GT_WARN("live", "rank " << rank << " (" << site_names[w.site] << ") "
                          << (type == live::kRegister ? "registered again" : "is back") << "; it rejoins"
                          << (was_active ? "" : " from the next interval on"));
  faults.push_back({{"event", "rejoin"}, {"ranks", {rank}}, {"trace_time", FormatIsoTime(TimeAt(Position()))},
                    {"what", type == live::kRegister ? "registered again" : "heard again"}});
  timeline.Instant(0, 0, "rank " + std::to_string(rank) + " rejoins", "fault", Since(run_t0));
}

// Registered ranks, not treated as failed, silent for longer than the heartbeat timeout.
std::set<int> LiveCoordinator::Impl::Silent() {
  Drain();
  std::set<int> out;
  const auto now = SteadyClock::now();
  for (const auto& [r, w] : workers)
    if (!w.failed && (now - w.last_seen > opt.heartbeat_timeout || unreachable.count(r))) out.insert(r);
  return out;
}

// Marks `ranks` failed without touching the pipeline (they hold no part of a running epoch).
void LiveCoordinator::Impl::LeaveOut(const std::set<int>& ranks, const std::string& what) {
  if (ranks.empty()) return;
  for (int r : ranks) {
    workers[r].failed = true;
    unreachable.erase(r);
    GT_WARN("live", "rank " << r << " (" << site_names[workers[r].site] << ") " << what << "; left out");
  }
  faults.push_back({{"event", "left_out"}, {"ranks", ranks}, {"trace_time", FormatIsoTime(TimeAt(Position()))},
                    {"what", what}});
}

// Ranks silent past the heartbeat timeout: those of the running epoch are recovered from
// (RecoverWithout: the plan goes on without them), the others are left out.
Status LiveCoordinator::Impl::OnSilent(const std::set<int>& silent) {
  bool all_unreachable = true;
  for (int r : silent) all_unreachable &= unreachable.count(r) > 0;
  const std::string what = all_unreachable ? std::string("could not be reached over its control channel")
                                           : "sent nothing for " +
                                                 std::to_string(opt.heartbeat_timeout.count() / 1000.0).substr(0, 4) +
                                                 " s (heartbeat timeout)";
  std::set<int> in_epoch, others;
  for (int r : silent) (running && workers[r].active ? in_epoch : others).insert(r);
  LeaveOut(others, what);
  if (in_epoch.empty()) return Status::Ok();
  return RecoverWithout(in_epoch, what, plan);
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
  auto parsed = ParseStrictJson(ss.str(), chosen->dir + "/" + kCoordinatorStateFile);
  if (!parsed.ok()) return parsed.status();
  resume_state = std::move(*parsed);
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
  ASSIGN_OR_RETURN(engine, IntervalEngine::Create(cfg, sim->menu(), supply, history, *policy, cfg.policy.forecaster));
  forecaster_name = engine->forecaster();
  soc.assign(n_sites, 0.0);
  busy.assign(n_sites, 0.0);
  allocated.assign(n_sites, 0);
  for (int i = 0; i < n_sites; ++i) soc[i] = cfg.sites[i].battery.capacity_mwh * cfg.sites[i].battery.initial_soc;
  for (const auto& site : cfg.sites) site_names.push_back(site.name);
  interval_wall = cfg.runtime.wall_seconds_per_trace_hour * dt;
  pace_plan = cfg.runtime.pace == "plan";
  return Status::Ok();
}

// The policy's plan for interval `i` through the engine the simulator uses (same input: forecasts,
// battery states, allocation, time since the last checkpoint).
EngineState LiveCoordinator::Impl::State(size_t i, double work_left, const Plan& current) const {
  EngineState st;
  st.work_left_steps = std::max(1e-9, work_left);
  st.hours_since_checkpoint = HoursSinceCheckpoint(i);
  st.battery_soc_mwh = soc;
  st.allocated_gpus = allocated;
  st.current = current;
  st.checkpoint_hours = ckpts->last_wall_seconds() / opt.config.runtime.wall_seconds_per_trace_hour;
  return st;
}

Plan LiveCoordinator::Impl::Decide(size_t i, double work_left, const Plan& current) {
  return engine->Decide(i, State(i, work_left, current));
}

double LiveCoordinator::Impl::HoursSinceCheckpoint(size_t i) const {
  double hours = 0;
  std::optional<size_t> later;  // the interval counted last: an earlier entry for it was superseded
  for (auto it = plan_timeline.rbegin(); it != plan_timeline.rend(); ++it) {
    if (static_cast<double>(it->first) < last_ckpt_pos) break;
    if (it->first >= i || it->first == later) continue;
    later = it->first;
    hours = HoursSinceCheckpointAfter(hours, false, !it->second.paused(), dt);
  }
  return hours;
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
    work_done = JobSteps(static_cast<double>(resume_from->step));
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
    placement_note = "policy paused until " + FormatIsoTime(engine->input().now) + "; the live run starts there";
    GT_INFO("live", placement_note);
  }
  GT_INFO("live", "plan at " << FormatIsoTime(TimeAt(pos0)) << ": " << plan.Describe(site_names) << " ("
                             << plan.reason << ")");
  Notify({{"event", "interval"}, {"interval", start_i}, {"time", TimeAt(pos0)}, {"trace_time", FormatIsoTime(TimeAt(pos0))},
          {"plan", plan.Describe(site_names)}, {"paused", plan.paused()}, {"steps_per_hour", plan.steps_per_hour},
          {"work_left_steps", cfg.job.steps - work_done}});
  return Status::Ok();
}

// The live pipeline for plan `p` from the registered workers (see the header, 2.). "plan" mode:
// one stage per site where the plan runs work, that site's live ranks standing for its GPUs in
// proportion (ranks x plan GPUs / site GPUs, at least 1), layer cuts from the plan's partition scaled
// to the live model. "all" mode: every site with workers, an even split, fixed for the run. R
// replicas per stage (the fewest any stage's site offers, reduced until it divides the batch).
Result<LiveLayout> LiveCoordinator::Impl::LayoutFor(const Plan& p) const {
  LiveLayout out;
  const Config& cfg = opt.config;
  const int n_sites = static_cast<int>(cfg.sites.size());
  std::map<int, std::vector<int>> by_site;  // site -> usable ranks (ascending)
  for (const auto& [rank, w] : workers)
    if (!w.failed) by_site[w.site].push_back(rank);
  // Sites in pipeline order with the layer range the plan gives them (in the modelled model's layers).
  std::vector<int> live_sites;
  std::map<int, std::pair<int, int>> plan_range;
  for (const auto& st : p.stages) {
    if (!by_site.count(st.site)) continue;
    if (std::find(live_sites.begin(), live_sites.end(), st.site) == live_sites.end()) {
      live_sites.push_back(st.site);
      plan_range[st.site] = {st.first_layer, st.last_layer};
    } else {
      plan_range[st.site].second = std::max(plan_range[st.site].second, st.last_layer);
    }
  }
  const bool fixed = !follow_plan;
  if (live_sites.empty()) GT_WARN("live", "no worker runs at the plan's sites; using every site with workers");
  if (live_sites.empty() || fixed)
    for (const auto& [s, ranks] : by_site)
      if (std::find(live_sites.begin(), live_sites.end(), s) == live_sites.end()) live_sites.push_back(s);
  const int L = NumLiveLayers(model);
  const int S = std::min<int>(static_cast<int>(live_sites.size()), L);
  live_sites.resize(S);
  // Live ranks per site: all of them (fixed), or in proportion to the plan's GPUs there.
  int R = 1 << 30;
  for (int s : live_sites) {
    int n = static_cast<int>(by_site[s].size());
    if (!fixed && cfg.sites[s].gpus > 0 && s < static_cast<int>(p.busy_gpus.size()))
      n = std::clamp(static_cast<int>(std::lround(static_cast<double>(n) * p.busy_gpus[s] / cfg.sites[s].gpus)), 1, n);
    R = std::min(R, n);
  }
  while (R > 1 && model.global_batch % (R * model.micro_batch) != 0) --R;
  if (model.global_batch % (R * model.micro_batch) != 0)
    return InvalidArgument("runtime.live_model: micro_batch must divide global_batch");
  // Layer cuts: the plan's, scaled from the modelled model's layers to the live model's.
  std::vector<int> cuts(S + 1, 0);
  const int Lm = cfg.model.layers + 2;
  bool scaled = !fixed && S > 1;
  for (int k = 0; scaled && k < S; ++k) {
    cuts[k] = k == 0 ? 0 : static_cast<int>(std::lround(static_cast<double>(plan_range[live_sites[k]].first) * L / Lm));
    if (k > 0 && cuts[k] <= cuts[k - 1]) scaled = false;
  }
  cuts[S] = L;
  if (scaled && cuts[S - 1] >= L) scaled = false;
  for (int k = 0; !scaled && k <= S; ++k) cuts[k] = k * (L / S) + std::min(k, L % S);
  out.R = R;
  out.stages.assign(S, LiveStage{});
  for (int k = 0; k < S; ++k) {
    out.stages[k].site = live_sites[k];
    out.stages[k].first = cuts[k];
    out.stages[k].last = cuts[k + 1];
    for (int r = 0; r < R; ++r) out.stages[k].ranks.push_back(by_site[live_sites[k]][r]);
  }
  // Modelled GPUs per site standing behind the live workers: the plan's at its sites; with --sites
  // all on sites it does not use, the plan's total spread evenly over the pipeline.
  out.model_gpus.assign(n_sites, 0);
  int plan_total = 0;
  for (int g : p.busy_gpus) plan_total += g;
  bool plan_sites_only = true;
  for (const auto& st : out.stages)
    if (st.site >= static_cast<int>(p.busy_gpus.size()) || p.busy_gpus[st.site] == 0) plan_sites_only = false;
  for (const auto& st : out.stages)
    out.model_gpus[st.site] = plan_sites_only ? p.busy_gpus[st.site] : std::max(1, plan_total / S);
  return out;
}

bool LiveCoordinator::Impl::SamePipeline(const LiveLayout& l) const {
  if (l.R != R || l.stages.size() != stages.size()) return false;
  for (size_t k = 0; k < stages.size(); ++k)
    if (l.stages[k].site != stages[k].site || l.stages[k].first != stages[k].first ||
        l.stages[k].last != stages[k].last || l.stages[k].ranks != stages[k].ranks)
      return false;
  return true;
}

// Makes `l` the pipeline in force: worker roles, idle ranks, the modelled GPUs behind each site.
void LiveCoordinator::Impl::Apply(const LiveLayout& l) {
  const int n_sites = static_cast<int>(opt.config.sites.size());
  stages = l.stages;
  S = static_cast<int>(stages.size());
  R = l.R;
  for (auto& [rank, w] : workers) {
    w.active = false;
    w.stage = w.replica = -1;
  }
  for (int k = 0; k < S; ++k)
    for (int r = 0; r < R; ++r) {
      WorkerInfo& w = workers[stages[k].ranks[r]];
      w.active = true;
      w.stage = k;
      w.replica = r;
    }
  idle.clear();
  for (const auto& [rank, w] : workers)
    if (!w.active) idle.push_back(rank);
  site_workers.assign(n_sites, 0);
  for (const auto& st : stages) site_workers[st.site] += R;
  model_gpus = l.model_gpus;
  allocated = model_gpus;
  peak_gpus.resize(n_sites, 0);
  for (int s = 0; s < n_sites; ++s) peak_gpus[s] = std::max(peak_gpus[s], model_gpus[s]);
  live_placement.clear();
  for (const auto& st : stages)
    live_placement += (live_placement.empty() ? "" : "+") + opt.config.sites[st.site].name + ":" +
                      std::to_string(model_gpus[st.site]);
  GT_INFO("live", "pipeline " << DescribePipeline() << (idle.empty() ? "" : "; idle ranks " + json(idle).dump()));
}

Status LiveCoordinator::Impl::BuildPipeline(const Plan& p) {
  ASSIGN_OR_RETURN(LiveLayout l, LayoutFor(p));
  Apply(l);
  return Status::Ok();
}



std::string LiveCoordinator::Impl::DescribePipeline() const {
  std::string out;
  for (size_t k = 0; k < stages.size(); ++k)
    out += (k ? " | " : "") + site_names[stages[k].site] + " layers [" + std::to_string(stages[k].first) + "," +
           std::to_string(stages[k].last) + ") x" + std::to_string(stages[k].ranks.size());
  return out;
}

Status LiveCoordinator::Impl::SendCmd(int rank, json body) {
  if (workers[rank].failed) return Status::Ok();  // left out: it takes no part in the epoch
  body["epoch"] = epoch;
  return Send(workers[rank], body);
}

// The ranks that send stage rank `rank` its layers at start_step ([{rank, key, first, last}]): empty
// when it kept exactly its layers itself or when some of them are held by no live rank (the memory
// or checkpoint path then applies). Per old stage overlapping its layers, one holder: itself, else one
// at its own site (no WAN traffic), else the counterpart of its replica index.
json LiveCoordinator::Impl::StateSources(int rank) const {
  const WorkerInfo& w = workers.at(rank);
  if (held_by.empty() || held_at != start_step || !w.active) return json::array();
  const LiveStage& mine = stages[w.stage];
  json out = json::array();
  for (const LiveStage& old : held_by) {
    const int first = std::max(old.first, mine.first), last = std::min(old.last, mine.last);
    if (first >= last) continue;
    std::vector<int> alive;
    for (int r : old.ranks)
      if (!workers.at(r).failed) alive.push_back(r);
    if (alive.empty()) return json::array();
    if (old.first == mine.first && old.last == mine.last &&
        std::find(alive.begin(), alive.end(), rank) != alive.end())
      return json::array();  // its own layers, from memory
    int pick = alive[static_cast<size_t>(w.replica) % alive.size()];
    for (int r : alive)
      if (workers.at(r).site == w.site) pick = r;
    if (std::find(alive.begin(), alive.end(), rank) != alive.end()) pick = rank;
    out.push_back({{"rank", pick}, {"key", workers.at(pick).data_key}, {"first", first}, {"last", last}});
  }
  return out;
}

// Workers not failed (stage or idle), by site name, ascending by rank.
std::map<std::string, std::vector<int>> LiveCoordinator::Impl::LiveRanksBySite() const {
  std::map<std::string, std::vector<int>> out;
  for (const auto& [r, w] : workers)
    if (!w.failed && w.site >= 0) out[site_names[w.site]].push_back(r);
  return out;
}

// Site storage: the state_from of stage rank `rank` restoring the checkpoint whose layers the sites
// in `holders` keep ([{rank, key, first, last, checkpoint: true}], PlanCheckpointFetch).
Result<json> LiveCoordinator::Impl::CheckpointSources(int rank, const std::map<int, std::set<std::string>>& holders) const {
  const WorkerInfo& w = workers.at(rank);
  const LiveStage& mine = stages[w.stage];
  ASSIGN_OR_RETURN(std::vector<FetchRange> plan,
                   PlanCheckpointFetch(holders, site_names[w.site], rank, mine.first, mine.last, site_names,
                                       LiveRanksBySite()));
  json out = json::array();
  for (const FetchRange& f : plan)
    out.push_back({{"rank", f.rank}, {"key", workers.at(f.rank).data_key}, {"first", f.first}, {"last", f.last},
                   {"checkpoint", true}});
  return out;
}

// A receiver bound its data endpoint: each of its sources (other than itself) is asked to send.
Status LiveCoordinator::Impl::SendStateRequests(int receiver, const std::string& endpoint) {
  auto it = state_sources.find(receiver);
  if (it == state_sources.end()) return Status::Ok();
  for (const json& src : it->second) {
    const int from = src.at("rank");
    if (from == receiver) continue;
    json cmd = {{"type", live::kSendState}, {"to", receiver}, {"endpoint", endpoint},
                {"key", workers[receiver].data_key}, {"first", src.at("first")},
                {"last", src.at("last")}, {"step", start_step}};
    if (src.value("checkpoint", false)) cmd["checkpoint"] = true;
    RETURN_IF_ERROR(SendCmd(from, cmd));
  }
  return Status::Ok();
}

// Adds a ready rank's state_via / state_bytes / state_s to state_moves.
void LiveCoordinator::Impl::CountStateMove(const json& c) {
  const std::string via = c.value("state_via", std::string("fresh"));
  state_moves["ranks"][via] = state_moves["ranks"].value(via, 0) + 1;
  state_moves["bytes"][via] = state_moves["bytes"].value(via, 0.0) + c.value("state_bytes", 0.0);
  state_moves["slowest_s"] = std::max(state_moves.value("slowest_s", 0.0), c.value("state_s", 0.0));
  state_moves["fetched_bytes"] = state_moves.value("fetched_bytes", 0.0) + c.value("state_fetched_bytes", 0.0);
}

// The state moved to start the epoch, into a reconfiguration's report entry: state_bytes (the bytes
// the new stage ranks did not have in memory: received from peers or read from the checkpoint),
// state_transfer_bytes (those received from peers over the transport), state_via (stage ranks per
// source) and state_load_s (the slowest rank's time to get its state).
void LiveCoordinator::Impl::RecordStateMoves(json& action) const {
  const json& bytes = state_moves.at("bytes");
  action["state_transfer_bytes"] = bytes.value("peers", 0.0);
  action["state_bytes"] = bytes.value("peers", 0.0) + bytes.value("checkpoint", 0.0);
  action["state_via"] = state_moves.at("ranks");
  action["state_load_s"] = state_moves.value("slowest_s", 0.0);
  // Site storage: checkpoint bytes that came from another site's storage over the transport.
  action["checkpoint_fetched_bytes"] = state_moves.value("fetched_bytes", 0.0);
}

// Assigns every worker its role for this epoch, waits until the stage ranks are ready (state loaded:
// from memory, from the ranks holding it, or from the checkpoint resume_dir) and starts them at
// start_step.
Status LiveCoordinator::Impl::AssignAndStart(const std::string& resume_dir) {
  const Config& cfg = opt.config;
  const std::string store_ep = live::WithHost(store->endpoint(), live::AdvertisedHost(opt.bind_host, opt.advertise_host));
  state_sources.clear();
  state_moves = {{"ranks", json::object()}, {"bytes", json::object()}, {"slowest_s", 0.0}};
  epoch_failed_at.reset();
  restart_epoch = false;
  left_at.clear();
  std::map<int, std::set<std::string>> holders;  // site storage: the sites keeping each layer of resume_dir
  if (SiteStorage() && !resume_dir.empty()) {
    ASSIGN_OR_RETURN(ckpt::Manifest m, ckpt::ReadManifest(resume_dir));
    holders = LayerHolders(m);
  }
  for (auto& [rank, w] : workers) {
    if (w.failed) continue;
    json a = {{"type", live::kAssign}, {"role", w.active ? "stage" : "idle"}, {"start_step", start_step}};
    if (w.active) {
      const LiveStage& st = stages[w.stage];
      a.update({{"stage", w.stage}, {"num_stages", S}, {"replica", w.replica}, {"replicas", R},
                {"first", st.first}, {"last", st.last}, {"job", 1}, {"seed", opt.seed},
                {"start_step", start_step}, {"end_step", end_step}, {"resume_dir", resume_dir},
                {"store_endpoint", store_ep}, {"collective", cfg.runtime.collective}, {"members", st.ranks},
                {"collective_timeout_ms", std::max<int64_t>(5000, 2 * opt.heartbeat_timeout.count())}});
      if (w.stage > 0) a["prev_key"] = workers[stages[w.stage - 1].ranks[w.replica]].data_key;
      if (w.stage + 1 < S) a["next_key"] = workers[stages[w.stage + 1].ranks[w.replica]].data_key;
      a["state_from"] = StateSources(rank);
      if (a["state_from"].empty() && !holders.empty()) {
        // A rank holding exactly its layers at start_step still takes them from memory.
        ASSIGN_OR_RETURN(a["state_from"], CheckpointSources(rank, holders));
      }
      if (!a["state_from"].empty()) state_sources[rank] = a["state_from"];
    }
    RETURN_IF_ERROR(SendCmd(rank, a));
  }
  const int active = S * R;
  std::set<int> ready;
  const auto ready_deadline = SteadyClock::now() + opt.ack_timeout;
  while (static_cast<int>(ready.size()) < active) {
    if (Cancelled()) return Aborted("cancelled while waiting for workers to get ready");
    if (SteadyClock::now() > ready_deadline) {
      std::set<int> lost;
      for (const auto& [r, w] : workers)
        if (w.active && !ready.count(r)) lost.insert(r);
      return RecoverWithout(lost, "did not report ready within the acknowledgement time", plan);
    }
    std::set<int> silent = Silent(), lost;
    for (int r : silent)
      if (workers[r].active) lost.insert(r);
    if (!lost.empty()) return RecoverWithout(lost, "went silent while getting ready (heartbeat timeout)", plan);
    LeaveOut(silent, "went silent (heartbeat timeout)");
    if (EpochBroken())
      return RecoverWithout({}, "the epoch broke while starting (" + epoch_failure + ") and no rank was lost", plan);
    auto m = ReceiveControl(std::chrono::milliseconds(200));
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) continue;
      if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
      return m.status();
    }
    const json& c = *m;
    const std::string type = c.value("type", "");
    const int rank = c.value("rank", -1);
    if (type == live::kError && workers.count(rank) && !workers[rank].failed)
      return Internal("worker rank " + std::to_string(rank) + ": " + c.value("message", std::string()));
    const bool current = workers.count(rank) && c.value("epoch", int64_t{-1}) == epoch;
    if (type == live::kReceiving && current) {
      RETURN_IF_ERROR(SendStateRequests(rank, c.value("data_endpoint", std::string())));
      continue;
    }
    if (type != live::kReady || !current) {
      if (type != live::kReady && type != live::kReceiving) RETURN_IF_ERROR(OnMessage(c));  // late checkpoint reports
      continue;
    }
    CountStateMove(c);
    workers[rank].data_endpoint = c.value("data_endpoint", "");
    workers[rank].next_step = c.value("next_step", int64_t{0});
    if (workers[rank].next_step != start_step)
      return Internal("rank " + std::to_string(rank) + " is ready at step " + std::to_string(workers[rank].next_step) +
                      ", the run continues at step " + std::to_string(start_step));
    ready.insert(rank);
  }
  granting = true;
  held_by.clear();  // every rank is ready: the workers drop what they held
  granted = start_step + (pace_plan ? 1 : GrantWindow());
  for (auto& [rank, w] : workers) {
    if (!w.active) continue;
    json s = {{"type", live::kStart}, {"start_step", start_step}, {"allowed", granted}};
    if (w.stage > 0) s["prev_endpoint"] = workers[stages[w.stage - 1].ranks[w.replica]].data_endpoint;
    if (w.stage + 1 < S) s["next_endpoint"] = workers[stages[w.stage + 1].ranks[w.replica]].data_endpoint;
    RETURN_IF_ERROR(SendCmd(rank, s));
  }
  GT_INFO("live", "epoch " << epoch << ": training steps " << start_step << ".." << end_step << " on " << S
                           << " stage(s) x " << R << " replica(s)");
  done = 0;
  loss_acc.clear();
  stage_wall.clear();
  stage_compute.clear();
  max_step_reported = start_step - 1;
  pace_done = start_step;
  last_progress = SteadyClock::now();
  running = true;
  // The final state is always saved: a later --resume continues from it.
  ckpts->Cancel(end_step);
  RETURN_IF_ERROR(OpenCheckpoint(end_step, "end", "end of the run"));
  ckpts->Cancel(steps_ckpt);
  steps_ckpt = -1;
  return ScheduleStepsCheckpoint(start_step);
}

// --checkpoint-every N: the next multiple of N after `after` is asked for in advance (a boundary
// known ahead cannot be missed, however fast the steps are).
Status LiveCoordinator::Impl::ScheduleStepsCheckpoint(int64_t after) {
  if (opt.checkpoint_every <= 0) return Status::Ok();
  const int64_t next = (after / opt.checkpoint_every + 1) * opt.checkpoint_every;
  if (next >= end_step || ckpts->IsOpen(next)) return Status::Ok();
  RETURN_IF_ERROR(
      OpenCheckpoint(next, "steps", "every " + std::to_string(opt.checkpoint_every) + " steps (--checkpoint-every)"));
  steps_ckpt = next;
  return Status::Ok();
}

std::set<int> LiveCoordinator::Impl::StageRanks() const {
  std::set<int> ranks;
  for (const auto& st : stages) ranks.insert(st.ranks.begin(), st.ranks.end());
  return ranks;
}

// Opens the checkpoint request at `step` and sends it to every stage rank (each writes its share).
Status LiveCoordinator::Impl::OpenCheckpoint(int64_t step, const std::string& kind, const std::string& reason) {
  const std::set<int> writers = StageRanks();
  ASSIGN_OR_RETURN(json cmd, ckpts->Open(step, kind, reason, FormatIsoTime(TimeAt(Position())), writers));
  for (int r : writers) RETURN_IF_ERROR(SendCmd(r, cmd));
  // The pipeline may already wait at that boundary (every granted step done, as when paced to the
  // plan): no later step completion would then add the coordinator's state.
  if (running && pace_done >= step && step > start_step) return SetCheckpointState(step);
  return Status::Ok();
}

// Workers that did not acknowledge a command in time are treated as failed: every other rank of
// the epoch leaves it (some may wait on the lost ones), and the plan is carried out without them
// from the last committed checkpoint; the steps after it are trained again (their energy stays
// booked, as it was spent).
Status LiveCoordinator::Impl::RecoverWithout(const std::set<int>& lost, const std::string& what,
                                             const Plan& target) {
  if (++recoveries > static_cast<int>(workers.size()))
    return Unavailable("too many failed workers; the last: rank(s) " + json(lost).dump() + " " + what);
  std::string names;
  for (int r : lost) {
    workers[r].failed = true;
    unreachable.erase(r);
    names += (names.empty() ? "" : ", ") + std::to_string(r) + " (" + site_names[workers[r].site] + ")";
  }
  faults.push_back({{"event", lost.empty() ? "epoch_failed" : "failed"}, {"ranks", lost},
                    {"trace_time", FormatIsoTime(TimeAt(Position()))}, {"what", what}, {"step", max_step_reported + 1}});
  // "rank(s) 3 (texas) went silent ..." or, when no rank is blamed, "the epoch broke ...".
  const std::string who = lost.empty() ? std::string() : "rank(s) " + names + " ";
  GT_WARN("live", who << what << "; " << (lost.empty() ? "the same ranks start again" : "treated as failed, continuing without them"));
  const bool was_training = running;
  for (const auto& [r, w] : workers)
    if (w.active && !w.failed && !left_at.count(r)) (void)SendCmd(r, {{"type", live::kAbort}, {"reason", who + what}});
  const auto t0 = SteadyClock::now();
  const std::optional<int64_t> from_survivors = was_training ? SurvivorsStep() : std::nullopt;
  if (!from_survivors && last_checkpoint_dir.empty() && start_step > 0)
    return Unavailable(who + what + ", and there is no checkpoint to continue from");
  RETURN_IF_ERROR(CloseUntil(Position()));
  running = false;
  ckpts->CancelAll();
  steps_ckpt = -1;
  // The survivors' state, or the last checkpoint (held_by: the old stages without the lost ranks).
  held_by.clear();
  if (from_survivors) {
    start_step = *from_survivors;
    for (LiveStage st : stages) {
      st.ranks.erase(std::remove_if(st.ranks.begin(), st.ranks.end(), [&](int r) { return !left_at.count(r); }),
                     st.ranks.end());
      held_by.push_back(std::move(st));
    }
    held_at = start_step;
  } else {
    start_step = last_checkpoint_dir.empty() ? 0 : last_checkpoint_step;
  }
  GT_WARN("live", "continuing at step " << start_step << " from "
                                        << (from_survivors ? std::string("the surviving ranks' memory")
                                                           : last_checkpoint_dir.empty() ? std::string("the start")
                                                                                         : last_checkpoint_dir));
  while (!loss_curve.empty() && loss_curve.back().first >= start_step) loss_curve.pop_back();
  loss_acc.clear();
  json action = {{"trace_time", FormatIsoTime(TimeAt(Position()))}, {"actions", json::array({"recover"})},
                 {"from", plan.Describe(site_names)}, {"to", target.Describe(site_names)},
                 {"reason", who + what}, {"step", start_step},
                 {"recovered_from", from_survivors ? "survivors" : "checkpoint"},
                 {"checkpoint", from_survivors ? std::string() : last_checkpoint_dir}, {"state_bytes", 0.0},
                 {"from_pipeline", DescribePipeline()}, {"failed_ranks", lost}};
  timeline.Instant(0, 0, lost.empty() ? std::string("restart the epoch") : "recover without rank(s) " + names, "fault",
                   Since(run_t0), action);
  plan = target;
  if (target.paused()) {
    action["to_pipeline"] = "paused";
    action["lost_training_s"] = 0.0;
    actions.push_back(action);
    return Status::Ok();
  }
  ++epoch;
  RETURN_IF_ERROR(BuildPipeline(target));
  const size_t index = actions.size();
  actions.push_back(action);
  RETURN_IF_ERROR(AssignAndStart(last_checkpoint_dir));
  RecordStateMoves(actions[index]);
  actions[index]["to_pipeline"] = DescribePipeline();
  actions[index]["lost_training_s"] = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  return Status::Ok();
}

// After an abort: waits (at most until a collective with a silent member has failed, and the
// acknowledgement time) for every surviving stage rank to report the step its kept state is at
// (left / epoch_failed), leaving out any that goes silent meanwhile. Returns that step when every
// survivor holds the same one, every stage of the abandoned pipeline kept a survivor, and it is not
// before the last checkpoint; otherwise nothing (the checkpoint is used).
std::optional<int64_t> LiveCoordinator::Impl::SurvivorsStep() {
  std::set<int> survivors;
  for (const auto& [r, w] : workers)
    if (w.active && !w.failed) survivors.insert(r);
  const auto wait = std::min<std::chrono::milliseconds>(
      opt.ack_timeout, std::chrono::milliseconds(std::max<int64_t>(5000, 2 * opt.heartbeat_timeout.count()) + 3000));
  const auto deadline = SteadyClock::now() + wait;
  auto reported = [&] {
    for (int r : survivors)
      if (!left_at.count(r)) return false;
    return true;
  };
  while (!reported() && SteadyClock::now() < deadline) {
    std::set<int> gone;
    for (int r : Silent())
      if (survivors.count(r)) gone.insert(r);
    for (int r : gone) survivors.erase(r);
    LeaveOut(gone, "went silent while leaving the epoch (heartbeat timeout)");
    auto m = ReceiveControl(std::chrono::milliseconds(100));
    if (m.ok() && !OnMessage(*m).ok()) break;
  }
  if (survivors.empty() || !reported()) return std::nullopt;
  const int64_t step = left_at.at(*survivors.begin());
  for (int r : survivors)
    if (left_at.at(r) != step) return std::nullopt;
  for (const LiveStage& st : stages) {
    bool kept = false;
    for (int r : st.ranks) kept |= survivors.count(r) > 0;
    if (!kept) return std::nullopt;
  }
  if (!last_checkpoint_dir.empty() && step < last_checkpoint_step) return std::nullopt;
  // Every step before it must have completed (all replicas of the last stage reported it).
  const int64_t completed = loss_curve.empty() ? start_step : std::max(start_step, loss_curve.back().first + 1);
  if (step > completed) return std::nullopt;
  for (auto it = left_at.begin(); it != left_at.end();)  // only survivors serve as sources
    it = survivors.count(it->first) ? std::next(it) : left_at.erase(it);
  return step;
}

// Carries out a change of plan at a common step boundary: every stage rank halts there (keeping its
// state in memory), after a checkpoint of that boundary where `acts` hold one (the engine's rule:
// before a pause or move, periodic, ahead of a forecast loss of green power; not for a resize);
// then, unless the new plan pauses, the new pipeline is assigned (a new epoch) and continues from
// that step: ranks that keep their layers from memory, the others from the ranks that held them.
// The report records the action, its reason, the state bytes written and the training time it cost.
Status LiveCoordinator::Impl::Reconfigure(const Plan& next, const std::vector<Action>& acts) {
  // Training time lost: from the last step completed before the halt (or now, when paused) until
  // the new pipeline has started; the steps run while the halt boundary approaches are not lost.
  auto stopped = SteadyClock::now();
  struct Measure {  // the trace time of the whole reconfiguration, for deciding the next one early
    const Impl* self;
    double p0;
    double* avg;
    ~Measure() {
      const double s = std::max(0.0, self->Position() - p0);
      *avg = *avg > 0 ? 0.7 * *avg + 0.3 * s : s;
    }
  } measure{this, Position(), &reconfig_intervals};
  // Paced to the plan, a reconfiguration takes the trace time the engine charges it (the
  // transition's overhead), or less when the wall clock allows no more, not the time this box's
  // halt and restart take on the compressed clock. Released before `measure` reads the clock.
  struct PacedReconfiguration {
    Impl* self;
    double overhead;  // intervals
    PacedReconfiguration(Impl* s, double ov) : self(s), overhead(ov) {
      if (self->pace_plan) self->frozen_at = self->Position();
    }
    ~PacedReconfiguration() {
      if (!self->frozen_at) return;
      const double from = *self->frozen_at;
      self->frozen_at.reset();
      self->HoldClockAt(std::min(self->ClockPosition(), from + overhead));
      self->pace_rate = 0;  // re-anchored by the next Pace, on the plan now in force
      self->pace_epoch = -1;
    }
  } paced{this, engine->Cost(plan, next).overhead_hours / dt};
  const double began_s = Since(run_t0);
  const std::set<int> old_ranks = StageRanks();
  // The change on the coordinator's track and on the track of every rank it stopped or started,
  // and the pause it ends or begins.
  auto on_timeline = [&](const json& a) {
    std::string name;
    for (const auto& k : a["actions"]) name += (name.empty() ? "" : "+") + k.get<std::string>();
    const double dur = Since(run_t0) - began_s;
    timeline.Span(0, 0, name, "plan", began_s, dur, a);
    std::set<int> ranks = old_ranks;
    if (!next.paused())
      for (int r : StageRanks()) ranks.insert(r);
    for (int r : ranks) timeline.Span(Timeline::SitePid(workers[r].site), r, name, "plan", began_s, dur);
    if (paused_since && !next.paused()) {
      timeline.Span(0, 0, "paused", "pause", *paused_since, began_s - *paused_since);
      for (int r : paused_ranks)
        timeline.Span(Timeline::SitePid(workers[r].site), r, "paused", "pause", *paused_since, began_s - *paused_since);
      paused_since.reset();
    }
    if (next.paused()) {
      paused_since = Since(run_t0);
      paused_ranks = old_ranks;
    }
  };
  Notify({{"event", "reconfigure"}, {"from", plan.Describe(site_names)}, {"to", next.Describe(site_names)},
          {"overhead_hours", engine->Cost(plan, next).overhead_hours}});
  json action = {{"trace_time", FormatIsoTime(TimeAt(Position()))},
                 {"from", plan.Describe(site_names)},
                 {"to", next.Describe(site_names)},
                 {"reason", next.reason}};
  json kinds = json::array();
  for (const Action& a : acts)
    if (a.kind != ActionKind::kCheckpoint) kinds.push_back(ActionKindName(a.kind));
  if (kinds.empty()) kinds.push_back(next.paused() ? "pause" : "resize");
  action["actions"] = kinds;
  action["from_pipeline"] = DescribePipeline();
  std::string resume_dir = last_checkpoint_dir;
  double checkpoint_bytes = 0;
  bool took_checkpoint = false;  // the state saved at the halt (reported as checkpointed)
  if (running) {
    const int64_t halt_at = granted;  // no rank can be past it; none is granted more from now on
    granting = false;
    if (halt_at >= end_step) {  // the run ends before the change could take effect
      granting = true;
      return Status::Ok();
    }
    const std::set<int> writers = StageRanks();
    // A checkpoint where the plan's actions hold one (the engine's rule, as the simulator books it:
    // before a pause or move, periodic, ahead of a forecast loss of green power); a resize keeps the
    // state in the halted ranks' memory and moves it from there.
    const auto ckpt = std::find_if(acts.begin(), acts.end(), [](const Action& a) { return a.kind == ActionKind::kCheckpoint; });
    took_checkpoint = ckpt != acts.end() || ckpts->IsOpen(halt_at);
    if (ckpt != acts.end() && !ckpts->IsOpen(halt_at)) {
      // The actions come from the engine's last Decide, whose trigger took where they hold one.
      const CheckpointTrigger& trig = engine->checkpoint();
      RETURN_IF_ERROR(OpenCheckpoint(halt_at, trig.take ? trig.kind : "plan", trig.take ? trig.reason : ckpt->reason));
    }
    for (int r : writers) RETURN_IF_ERROR(SendCmd(r, {{"type", live::kHalt}, {"step", halt_at}}));
    GT_INFO("live", "halting every stage before step " << halt_at << " for " << kinds.dump() << " to "
                                                       << next.Describe(site_names));
    halted.clear();
    const auto deadline = SteadyClock::now() + opt.ack_timeout;
    while (static_cast<int>(halted.size()) < static_cast<int>(writers.size()) || ckpts->IsOpen(halt_at)) {
      if (Cancelled()) return Aborted("cancelled while reconfiguring");
      if (SteadyClock::now() > deadline) {
        std::set<int> lost;
        for (int r : writers)
          if (!halted.count(r)) lost.insert(r);
        if (lost.empty()) return Timeout("the checkpoint before step " + std::to_string(halt_at) + " did not complete");
        return RecoverWithout(lost, "did not acknowledge the halt before step " + std::to_string(halt_at), next);
      }
      std::set<int> silent = Silent(), lost;
      for (int r : silent)
        if (writers.count(r)) lost.insert(r);
      if (!lost.empty())
        return RecoverWithout(lost, "went silent before the halt at step " + std::to_string(halt_at) +
                                        " (heartbeat timeout)", next);
      LeaveOut(silent, "went silent (heartbeat timeout)");
      auto m = ReceiveControl(std::chrono::milliseconds(200));
      if (!m.ok()) {
        if (m.status().code() == Code::kTimeout) continue;
        return m.status();
      }
      RETURN_IF_ERROR(OnMessage(*m));
    }
    running = false;
    stopped = last_step_done;  // training stopped when the step before the boundary completed
    start_step = halt_at;
    // Without a checkpoint at the halt the new pipeline's state comes from the halted ranks' memory
    // only: an older checkpoint is not of this step (a rank that finds no holder fails its start,
    // and the run recovers from that checkpoint instead).
    resume_dir = took_checkpoint ? last_checkpoint_dir : std::string();
    checkpoint_bytes = took_checkpoint ? last_checkpoint_bytes : 0.0;
    held_by = stages;  // every stage rank halted holding its layers
    held_at = halt_at;
    // The old pipeline's load is booked up to here; the new one's from here.
    RETURN_IF_ERROR(CloseUntil(Position()));
  }
  plan = next;
  action["step"] = start_step;
  action["checkpoint"] = resume_dir;
  action["checkpoint_bytes"] = checkpoint_bytes;
  action["state_bytes"] = 0.0;
  action["started_ahead_of_interval_s"] = decided_ahead_wall_s;
  if (next.paused()) {
    // The allocation stays (booked idle, as the simulator books it); the state stays in memory.
    action["to_pipeline"] = "paused";
    action["lost_training_s"] = std::chrono::duration<double>(SteadyClock::now() - stopped).count();
    actions.push_back(action);
    on_timeline(action);
    GT_INFO("live", "paused at step " << start_step << " (" << next.reason << ")");
    return Status::Ok();
  }
  ++epoch;
  RETURN_IF_ERROR(BuildPipeline(next));
  RETURN_IF_ERROR(AssignAndStart(resume_dir));
  RecordStateMoves(action);
  action["to_pipeline"] = DescribePipeline();
  action["lost_training_s"] = std::chrono::duration<double>(SteadyClock::now() - stopped).count();
  actions.push_back(action);
  on_timeline(action);
  return Status::Ok();
}

// Where the run stands: step and loss, throughput, trace time, what runs where, green share,
// energy and carbon so far, battery states and the estimated end against the deadline.
json LiveCoordinator::Impl::StatusSnapshot() const {
  const Config& cfg = opt.config;
  const int64_t done_steps = loss_curve.empty() ? start_step : loss_curve.back().first + 1;
  const LedgerTotals t = ledger.Totals();
  json st = {{"step", done_steps}, {"end_step", end_step}, {"trace_time", FormatIsoTime(TimeAt(Position()))},
             {"plan", plan.Describe(site_names)}, {"pipeline", running ? DescribePipeline() : std::string("paused")},
             {"green_share", t.renewable_share()}, {"energy_mwh", t.demand_mwh}, {"carbon_kg", t.carbon_kg}};
  if (!loss_curve.empty()) st["loss"] = loss_curve.back().second;
  st["tokens_per_s"] = running && step_wall_s > 0
                           ? static_cast<double>(model.global_batch) * model.seq_len / step_wall_s
                           : 0.0;
  json batteries = json::object();
  for (size_t s = 0; s < cfg.sites.size(); ++s)
    if (cfg.sites[s].battery.capacity_mwh > 0) batteries[site_names[s]] = soc[s] / cfg.sites[s].battery.capacity_mwh;
  st["battery_soc"] = batteries;
  const UnixSeconds deadline = cfg.job.start + static_cast<UnixSeconds>(std::llround(cfg.job.deadline_hours * 3600.0));
  st["deadline"] = FormatIsoTime(deadline);
  // The policy's own schedule ahead (when it has one): the first interval planned differently.
  for (size_t k = 0; k < last_decision.planned.size(); ++k) {
    const int o = last_decision.planned[k];
    if (o == last_decision.option) continue;
    const double at = static_cast<double>(last_decision_i + 1 + k);
    st["next_planned_change"] = {{"trace_time", FormatIsoTime(TimeAt(at))},
                                 {"to", o < 0 ? std::string("pause") : sim->menu().option(o).label}};
    break;
  }
  if (running && step_intervals > 0) {
    const double finish = Position() + static_cast<double>(end_step - done_steps) * step_intervals;
    st["eta"] = FormatIsoTime(TimeAt(finish));
    st["hours_to_spare"] = static_cast<double>(deadline - TimeAt(finish)) / 3600.0;
  }
  return st;
}

// Logs the status line, rewrites <run_dir>/status.json (atomically) and tells the observer.
void LiveCoordinator::Impl::ReportStatus() {
  const json st = StatusSnapshot();
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << "step " << st.value("step", int64_t{0}) << "/"
     << st.value("end_step", int64_t{0});
  if (st.contains("loss")) os << " loss " << std::setprecision(3) << st["loss"].get<double>();
  os << std::setprecision(0) << ", " << st.value("tokens_per_s", 0.0) << " tok/s, trace " << st.value("trace_time", "")
     << ", " << st.value("plan", "") << " [" << st.value("pipeline", "") << "], green " << std::setprecision(1)
     << 100 * st.value("green_share", 0.0) << " %, " << std::setprecision(3) << st.value("energy_mwh", 0.0)
     << " MWh, " << std::setprecision(2) << st.value("carbon_kg", 0.0) << " kg";
  for (const auto& [site, f] : st["battery_soc"].items())
    os << ", " << site << " battery " << std::setprecision(0) << 100 * f.get<double>() << " %";
  if (st.contains("next_planned_change"))
    os << ", next planned change " << st["next_planned_change"].value("to", "") << " at "
       << st["next_planned_change"].value("trace_time", "");
  if (st.contains("eta"))
    os << ", ETA " << st.value("eta", "") << " (deadline " << st.value("deadline", "") << ", " << std::setprecision(1)
       << st.value("hours_to_spare", 0.0) << " h to spare)";
  else
    os << ", deadline " << st.value("deadline", "");
  GT_INFO("status", os.str());
  const std::string path = opt.run_dir + "/status.json";
  if (WriteText(path + ".tmp", st.dump(2) + "\n").ok()) {
    std::error_code ec;
    fs::rename(path + ".tmp", path, ec);
  }
  json event = st;
  event["event"] = "status";
  Notify(event);
  PublishMetrics(st);
}

// Replaces the Prometheus exposition (when --metrics-port is on) with the run's state now.
void LiveCoordinator::Impl::PublishMetrics(const json& status) {
  if (!metrics) return;
  json c = {{"steps", loss_curve.empty() ? 0 : loss_curve.back().first + 1 - first_step},
            {"checkpoints", ckpts->records().size()},
            {"last_checkpoint_s", ckpts->last_wall_seconds()}};
  json kinds = json::object();
  for (const auto& a : actions)
    for (const auto& k : a.value("actions", json::array())) kinds[k.get<std::string>()] = kinds.value(k.get<std::string>(), 0) + 1;
  c["actions"] = kinds;
  json sites = json::object();
  for (const auto& [name, t] : ledger.TotalsBySite()) sites[name] = {{"energy_mwh", t.demand_mwh}, {"carbon_kg", t.carbon_kg}};
  // The last booked piece of each site, its power by source: rows are appended in time order, so
  // a walk back from the end stops once every site has been seen.
  std::set<std::string> seen;
  const auto& rows = ledger.rows();
  for (auto it = rows.rbegin(); it != rows.rend() && seen.size() < site_names.size(); ++it) {
    if (!(it->hours > 0) || !seen.insert(it->site).second) continue;
    json& s = sites[it->site];
    s["renewable_mw"] = it->flow.renewable_used_mwh / it->hours;
    s["battery_mw"] = it->flow.battery_discharge_mwh / it->hours;
    s["grid_mw"] = it->flow.grid_mwh / it->hours;
  }
  c["sites"] = sites;
  metrics->Publish(PrometheusText(status, c));
}

UnixSeconds LiveCoordinator::Impl::TimeAt(double pos) const {
  return sim->supply()[0].start + static_cast<int64_t>(std::llround(pos * opt.config.interval_seconds));
}

// Books the live load of [from, to) (trace positions) into `l`, one row per site and interval piece;
// the busy seconds and steps accumulated since `booked` are shared in proportion to time, a step
// among the sites that train it (each counts its share, as in the simulator). WAN bytes: the plan's
// partition's bytes per step (modelled, like the GPUs), shared by those sites.
Status LiveCoordinator::Impl::BookInto(double from, double to, Ledger& l, std::vector<double>& soc_v,
                                      double& carry) const {
  const Config& cfg = opt.config;
  const auto& supply = sim->supply();
  const double span = to - from;
  int working = 0;
  for (size_t s = 0; s < cfg.sites.size(); ++s) working += site_workers[s] > 0 ? 1 : 0;
  const double wan_bytes_per_step = working > 1 && !plan.paused() && plan.option >= 0 && plan.option < sim->menu().size()
                                        ? sim->menu().option(plan.option).partition.wan_bytes_per_step
                                        : 0.0;
  for (double b = from; b < to - 1e-9;) {
    const size_t i = static_cast<size_t>(b);
    const double e = std::min(to, static_cast<double>(i + 1));
    if (i >= supply[0].size()) return Unavailable("beyond the traces");
    const double share = (e - b) / span;
    const double hours = (e - b) * dt, wall = (e - b) * interval_wall;
    // Paced to the plan, the plan's GPUs train for the share of its steps the piece delivered (whole
    // steps land in one piece or the next: those beyond the plan's count in the next); the box's own
    // duty cycle would measure how far it is ahead of the plan, not the GPUs' load.
    const double rate = PlanLiveRate(plan);
    double duty = 0;
    if (pace_plan && rate > 0) {
      const double have = steps_in_interval * share + carry, want = rate * (e - b);
      duty = std::min(1.0, have / want);
      carry = std::max(0.0, have - want);
    }
    for (size_t s = 0; s < cfg.sites.size(); ++s) {
      const int gpus = site_workers[s] <= 0 ? 0
                       : plan.paused()      ? cfg.job.HeldWhilePaused(model_gpus[s])
                                            : model_gpus[s];
      const double steps = site_workers[s] > 0 ? steps_in_interval * share / working : 0.0;
      const double busy_s = pace_plan && rate > 0 ? duty * site_workers[s] * wall : busy[s] * share;
      ASSIGN_OR_RETURN(LedgerRow row, AccountLiveInterval(cfg.sites[s], TimeAt(b), hours, wall, busy_s,
                                                          site_workers[s], gpus, steps, supply[s].At(i), soc_v[s]));
      BookWan(row.load, wan_bytes_per_step * steps / 1e9, cfg.accounting.wan_kwh_per_gb, row.carbon_g_per_kwh);
      double annual_left = AnnualCertificatesLeft(cfg.sites[s], l);
      BookMarket(cfg.sites[s], cfg.accounting, sim->basis() == "life-cycle", supply[s].At(i), row, &annual_left);
      soc_v[s] = row.flow.soc_after_mwh;
      RETURN_IF_ERROR(l.Add(row));
    }
    b = e;
  }
  return Status::Ok();
}

// Books [booked, pos) into the run's ledger and resets the interval's accumulators. Pieces end on
// whole trace seconds: a ledger row is keyed by the second it starts at, so a piece shorter than
// that (a clock held or frozen by the pace, a close just before a boundary) waits for the next.
Status LiveCoordinator::Impl::CloseUntil(double pos) {
  const double per = static_cast<double>(opt.config.interval_seconds);
  pos = std::round(pos * per) / per;
  if (pos <= booked + 1e-12) return Status::Ok();
  Status s = beyond_traces ? Unavailable("beyond the traces") : BookInto(booked, pos, ledger, soc, pace_carry);
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
  if (i >= supply[0].size()) {
    // Beyond the traces no plan can be made: a paused job resumes as it last ran, so the run ends.
    if (follow_plan && !running && !last_running.paused() && !last_running.stages.empty())
      return Reconfigure(last_running, {});
    return Status::Ok();
  }
  const double frac = loss_curve.empty() ? 0 : double(loss_curve.back().first + 1) / end_step;
  const double work_left = cfg.job.steps * (1 - frac);
  Plan p = Decide(i, work_left, plan);
  last_decision = p;
  last_decision_i = i;
  timeline.Instant(0, 1, p.Describe(site_names), "decision", Since(run_t0),
                   {{"interval", FormatIsoTime(engine->input().now)}, {"reason", p.reason}, {"work_left_steps", work_left}});
  Notify({{"event", "interval"}, {"interval", i}, {"time", engine->input().now},
          {"trace_time", FormatIsoTime(engine->input().now)},
          {"plan", p.Describe(site_names)}, {"paused", p.paused()}, {"steps_per_hour", p.steps_per_hour},
          {"work_left_steps", work_left}});
  if (follow_plan) {
    // The live run carries out the plan: a pause, a resume, another pipeline (resize or move), or
    // only other modelled GPUs behind the same live ranks (booked from here on).
    bool change = p.paused() == running;
    std::optional<LiveLayout> layout;
    if (!change && !p.paused()) {
      ASSIGN_OR_RETURN(LiveLayout l, LayoutFor(p));
      change = !SamePipeline(l);
      layout = std::move(l);
    }
    if (change) {
      RETURN_IF_ERROR(Reconfigure(p, p.actions));
      if (!p.paused()) last_running = p;
      plan_timeline.emplace_back(i, p);
      return Status::Ok();
    }
    if (layout && layout->model_gpus != model_gpus) {
      RETURN_IF_ERROR(CloseUntil(Position()));
      Apply(*layout);
    }
    plan = p;
    if (!p.paused()) last_running = p;
  } else if (p.Describe(site_names) != plan.Describe(site_names)) {
    ++proposals_ignored;
    if (proposals.size() < 20) proposals.push_back(FormatIsoTime(engine->input().now) + " " + p.Describe(site_names));
    GT_INFO("live", "policy proposes " << p.Describe(site_names) << " at " << FormatIsoTime(engine->input().now)
                                       << "; the live plan stays " << plan.Describe(site_names) << " (--sites all)");
  }
  plan_timeline.emplace_back(i, follow_plan ? plan : last_running);
  if (!running) return Status::Ok();
  // The checkpoint the engine's rule gives the plan that runs: the policy's (the simulator books the
  // same), or on a fixed plan that plan's own.
  CheckpointTrigger trig = engine->checkpoint();
  if (!follow_plan) {
    Plan stays = plan;  // it carries on: no actions lead to it
    stays.actions.clear();
    trig = engine->CheckpointFor(i, State(i, work_left, plan), stays);
  }
  if (trig.take && !ckpts->BusyExcept({end_step, steps_ckpt})) RETURN_IF_ERROR(RequestCheckpoint(trig.kind, trig.reason));
  return Status::Ok();
}

// Asks every stage rank for a checkpoint at the first boundary none of them can have passed.
Status LiveCoordinator::Impl::RequestCheckpoint(const std::string& kind, const std::string& reason) {
  // The furthest boundary granted: no rank can have passed it.
  const int64_t step = std::max(granted, max_step_reported + 1);
  if (step >= end_step || ckpts->IsOpen(step)) return Status::Ok();  // the end checkpoint comes first
  GT_INFO("live", "checkpoint requested at step " << step << " (" << reason << ")");
  RETURN_IF_ERROR(OpenCheckpoint(step, kind, reason));
  if (!loss_curve.empty() && loss_curve.back().first + 1 >= step)
    return SetCheckpointState(step);
  return Status::Ok();
}

// Site storage: one live rank of each site that wrote files of the committed step writes the site's
// manifest and prunes the site's storage (checkpoint_committed).
Status LiveCoordinator::Impl::TellSitesCommitted(const json& record) {
  if (!record.contains("site_files")) return Status::Ok();
  const std::map<std::string, std::vector<int>> live_ranks = LiveRanksBySite();
  for (const auto& [site, files] : record.at("site_files").items()) {
    auto it = live_ranks.find(site);
    if (it == live_ranks.end() || it->second.empty()) {
      GT_WARN("live", "no live rank at site " << site << " to commit step " << record.value("step", int64_t{0})
                                              << " in its storage; it is committed at the site's next checkpoint");
      continue;
    }
    RETURN_IF_ERROR(SendCmd(it->second.front(), {{"type", live::kCheckpointCommitted}, {"step", record.at("step")},
                                                 {"files", files}, {"keep", opt.keep_checkpoints}}));
  }
  return Status::Ok();
}

Status LiveCoordinator::Impl::Committed(const std::optional<json>& record) {
  if (!record) return Status::Ok();
  RETURN_IF_ERROR(TellSitesCommitted(*record));
  last_checkpoint_dir = (*record)["dir"].get<std::string>();
  last_checkpoint_bytes = (*record).value("bytes", 0.0);
  const int64_t step = (*record).value("step", int64_t{0});
  last_checkpoint_step = step;
  if (step == steps_ckpt) {
    steps_ckpt = -1;
    RETURN_IF_ERROR(ScheduleStepsCheckpoint(step));
  }
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
  double carry = pace_carry;
  if (!beyond_traces) (void)BookInto(booked, pos, l, soc_v, carry);
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
          {"reconfigurations", actions},
          {"faults", faults},
          // Epoch numbers continue after a resume, so that workers still running from before a
          // coordinator restart never take a new command for one of their old epoch.
          {"epoch", epoch},
          {"resumes", resumes},
          {"plan", {{"placement", plan.Describe(site_names)}, {"live_placement", live_placement}}},
          {"pipeline", pipe},
          {"replicas", R},
          {"policy_proposals_ignored", proposals_ignored}};
}

// runtime.pace "plan": makes the hold that Position() applies (never more than one step past the
// plan's line through the steps done) the clock's own, so that the clock continues from there, and
// re-anchors the line (trace position, completed steps) where the plan's speed changes (another
// plan, a new epoch, a halt). A slow box then stretches the wall time of an interval instead of
// falling behind the plan; Grant holds a fast one back; a reconfiguration takes the trace time the
// engine charges it (PacedReconfiguration); a plan's pause, the time it lasts.
void LiveCoordinator::Impl::Pace() {
  if (frozen_at) return;
  HoldClockAt(Position());  // the clock continues from where the work held it
  const double rate = running && granting ? PlanLiveRate(plan) : 0.0;
  if (epoch != pace_epoch || rate != pace_rate) {
    pace_anchor_pos = Position();  // (read before the new rate applies)
    pace_anchor_steps = pace_done;
    pace_epoch = epoch;
    pace_rate = rate;
  }
}

// Steps granted ahead of the last completed one: about half a second of wall time, and at most 5 %
// of an interval of trace time (a plan change decided at a boundary then takes effect within it,
// however compressed the trace clock); at least 2, so that the pipeline never waits for a grant.
int64_t LiveCoordinator::Impl::GrantWindow() const {
  double w = step_wall_s > 0 ? std::ceil(0.5 / step_wall_s) : 8;
  if (step_intervals > 0) w = std::min(w, std::ceil(0.05 / step_intervals));
  return std::clamp<int64_t>(static_cast<int64_t>(w), 2, 1000);
}

// Extends the grant once the pipeline has used part of it (not while a halt is under way).
Status LiveCoordinator::Impl::Grant(int64_t completed_step) {
  if (!running || !granting) return Status::Ok();
  const int64_t window = GrantWindow();
  int64_t target = completed_step + 1 + window;
  int64_t least = std::max<int64_t>(1, window / 4);  // the smallest extension worth a message
  // Paced to the plan: step k after the anchor starts once the plan's line reaches it (anchor + k /
  // rate), so that the steps trained are the plan's, not one more per anchor.
  if (pace_plan && pace_rate > 0) {
    target = std::min<int64_t>(target, pace_anchor_steps + 1 +
                                           static_cast<int64_t>(std::floor(pace_rate * (Position() - pace_anchor_pos) + 1e-9)));
    least = 1;
  }
  if (target < granted + least) return Status::Ok();
  granted = target;
  for (int r : StageRanks()) RETURN_IF_ERROR(SendCmd(r, {{"type", live::kAllow}, {"until", granted}}));
  return Status::Ok();
}

Status LiveCoordinator::Impl::OnStepCompleted(int64_t step, double loss) {
  const auto now = SteadyClock::now();
  const double gap = std::chrono::duration<double>(now - last_step_done).count();
  const double pos = Position();
  if (step > start_step && gap < 5) {
    step_wall_s = step_wall_s > 0 ? 0.8 * step_wall_s + 0.2 * gap : gap;
    const double d = std::max(0.0, pos - last_step_pos);
    step_intervals = step_intervals > 0 ? 0.8 * step_intervals + 0.2 * d : d;
  }
  last_step_done = now;
  last_step_pos = pos;
  loss_curve.emplace_back(step, loss);
  Notify({{"event", "step"}, {"step", step}, {"loss", loss}});
  pace_done = step + 1;
  RETURN_IF_ERROR(Grant(step));
  steps_in_interval += 1;
  if (metrics && step % 10 == 0) PublishMetrics(StatusSnapshot());
  if (step % 10 == 0 || step + 1 == end_step)
    GT_INFO("live", "step " << step << " loss " << std::fixed << std::setprecision(4) << loss << " ("
                            << std::setprecision(1) << Since(train_t0) << " s)");
  for (int64_t n : ckpts->AwaitingState())
    if (n == step + 1) RETURN_IF_ERROR(SetCheckpointState(n));

  return Status::Ok();
}

Status LiveCoordinator::Impl::OnMessage(const json& c) {
  const std::string type = c.value("type", "");
  const int rank = c.value("rank", -1);
  if (!workers.count(rank)) return Status::Ok();
  WorkerInfo& w = workers[rank];
  if (w.failed) return Status::Ok();  // treated as failed: nothing it says counts any more
  if (type == live::kError)
    return Internal("worker rank " + std::to_string(rank) + " (stage " + std::to_string(w.stage) +
                    "): " + c.value("message", std::string()));
  // Progress of another epoch is stale (checkpoint reports are matched by step, whatever the epoch).
  const bool current = c.value("epoch", int64_t{-1}) == epoch;
  if (!current && (type == live::kStep || type == live::kDone || type == live::kHalted || type == live::kEpochFailed ||
                   type == live::kLeft))
    return Status::Ok();
  if (type == live::kHalted) {
    halted.insert(rank);
    return Status::Ok();
  }
  if (type == live::kLeft) {
    if (current && c.contains("held_step") && c["held_step"].is_number_integer())
      left_at[rank] = c["held_step"].get<int64_t>();
    return Status::Ok();
  }
  if (type == live::kEpochFailed) {
    if (!current) return Status::Ok();
    if (c.contains("held_step") && c["held_step"].is_number_integer()) left_at[rank] = c["held_step"].get<int64_t>();
    GT_WARN("live", "rank " << rank << " left epoch " << epoch << " after a peer failure: " << c.value("message", ""));
    if (!epoch_failed_at) {
      epoch_failed_at = SteadyClock::now();
      epoch_failure = "rank " + std::to_string(rank) + ": " + c.value("message", std::string());
    }
    return Status::Ok();
  }
  if (type == live::kStep) {
    last_progress = SteadyClock::now();
    const int64_t step = c.value("step", int64_t{0});
    max_step_reported = std::max(max_step_reported, step);
    busy[w.site] += c.value("compute_s", 0.0);
    const double wall_s = c.value("wall_s", 0.0), allreduce_s = c.value("allreduce_s", 0.0), now_s = Since(run_t0);
    timeline.Span(Timeline::SitePid(w.site), rank, "step " + std::to_string(step), "step", now_s - wall_s, wall_s,
                  {{"stage", w.stage}, {"replica", w.replica}, {"compute_s", c.value("compute_s", 0.0)},
                   {"allreduce_s", allreduce_s}, {"loss", c.value("loss", 0.0)}});
    // The gradient allreduce closes the step; its time is mostly waiting for the slowest replica.
    if (allreduce_s > 0)
      timeline.Span(Timeline::SitePid(w.site), rank, "allreduce", "wait", now_s - allreduce_s, allreduce_s);
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
    const double write_s = c.value("write_s", 0.0);
    timeline.Span(Timeline::SitePid(w.site), rank, "checkpoint write", "checkpoint", Since(run_t0) - write_s, write_s,
                  {{"step", c.value("step", int64_t{0})}, {"bytes", c.value("bytes", 0.0)},
                   {"snapshot_s", c.value("snapshot_s", 0.0)}});
    ASSIGN_OR_RETURN(auto rec, ckpts->OnWritten(rank, c, site_names[w.site]));
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
  while (!running || done < S * R) {
    if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
    if (opt.timeout_seconds > 0 && Since(run_t0) > opt.timeout_seconds)
      return Timeout("the run exceeded its " + std::to_string(static_cast<int>(opt.timeout_seconds)) + " s limit");
    if (running && Since(last_progress) > opt.stall_seconds)
      return Timeout("no training progress for " + std::to_string(static_cast<int>(opt.stall_seconds)) +
                     " s; a worker is stuck or dead");
    if (pace_plan) {
      Pace();
      RETURN_IF_ERROR(Grant(pace_done - 1));
    }
    const double pos = Position();
    const double boundary = std::floor(booked) + 1;
    // A plan change takes effect at the boundary: it is decided ahead by the reconfiguration time
    // measured so far (at most half an interval), so that the pipeline already runs where the plan
    // wants it when the interval starts (before the old site's power drops).
    const double lead = follow_plan ? std::min(0.5, 1.2 * reconfig_intervals) : 0.0;
    if (pos >= boundary - lead && decided_for != static_cast<int64_t>(boundary)) {
      decided_for = static_cast<int64_t>(boundary);
      decided_ahead_wall_s = std::max(0.0, (boundary - pos) * interval_wall);
      RETURN_IF_ERROR(CloseUntil(std::min(pos, boundary)));
      RETURN_IF_ERROR(OnIntervalBoundary(static_cast<size_t>(boundary)));
      ReportStatus();
      continue;
    }
    if (pos >= boundary) {
      RETURN_IF_ERROR(CloseUntil(boundary));
      continue;
    }
    if (opt.status_requested && opt.status_requested()) ReportStatus();
    if (auto silent = Silent(); !silent.empty()) {
      RETURN_IF_ERROR(OnSilent(silent));
      continue;
    }
    if (running && EpochBroken()) {
      // No rank went silent: the failure was of a link, or transient. The same ranks start again.
      RETURN_IF_ERROR(RecoverWithout({}, "the epoch broke (" + epoch_failure + ") and no rank was lost", plan));
      continue;
    }
    const double to_boundary = (boundary - pos) * interval_wall;
    auto m = ReceiveControl(
        std::chrono::milliseconds(static_cast<int64_t>(std::clamp(to_boundary * 1000.0, 1.0, 200.0))));
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) {
        Notify({{"event", "waiting"}});
        continue;
      }
      if (Cancelled()) return Aborted("cancelled (interrupt or the worker launcher exited)");
      return m.status();
    }
    RETURN_IF_ERROR(OnMessage(*m));
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
    actions = resume_state.value("reconfigurations", json::array());
    faults = resume_state.value("faults", json::array());
    epoch = resume_state.value("epoch", int64_t{0}) + 1;
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
  follow_plan = opt.sites == "plan";
  first_step = start_step;
  if (resume_from) last_checkpoint_dir = resume_from->dir, last_checkpoint_step = resume_from->step;
  RETURN_IF_ERROR(Place());
  last_running = plan;
  RETURN_IF_ERROR(Register());
  RETURN_IF_ERROR(BuildPipeline(plan));
  train_t0 = SteadyClock::now();  // the trace clock starts with the first assignment
  trace_clock = opt.make_clock ? opt.make_clock(TimeAt(pos0))
                               : std::make_unique<TraceReplayClock>(TimeAt(pos0), cfg.runtime.wall_seconds_per_trace_hour);
  pos0 = Position();  // on whole trace seconds
  booked = pos0;
  soc_at_start = soc;
  plan_timeline.emplace_back(static_cast<size_t>(pos0), plan);
  RETURN_IF_ERROR(AssignAndStart(last_checkpoint_dir));
  if (resume_from && !resumes.empty()) RecordStateMoves(resumes.back());  // how the layers were read back
  RETURN_IF_ERROR(Train());
  StopAll("run complete");
  json report = BuildReport();
  RETURN_IF_ERROR(WriteText(opt.run_dir + "/report.json", report.dump(2) + "\n"));
  RETURN_IF_ERROR(ledger.WriteJson(opt.run_dir + "/ledger.json"));
  RETURN_IF_ERROR(ledger.WriteCsv(opt.run_dir + "/ledger.csv"));
  RETURN_IF_ERROR(timeline.Write(opt.run_dir + "/trace.json"));
  {
    std::vector<Chart> charts;
    for (size_t s = 0; s < site_names.size(); ++s)
      if (peak_gpus.size() > s && peak_gpus[s] > 0) charts.push_back(SupplyVsLoadChart(ledger, site_names[s]));
    charts.push_back(PlacementChart(ledger, site_names));
    Chart battery = BatteryChart(ledger, site_names);
    if (!battery.series.empty()) charts.push_back(battery);
    charts.push_back(LossChart(loss_curve));
    charts.push_back(CumulativeCarbonChart({{"live run", &ledger}}));
    RETURN_IF_ERROR(WriteHtmlReport(opt.run_dir + "/report.html", "greentrain live run: " + opt.config.name,
                                    FormatLiveReport(report), charts));
  }
  EmissionsRunInfo info;
  info.project_name = opt.config.name;
  info.run_id = fs::path(opt.run_dir).filename().string();
  info.timestamp = FormatIsoTime(static_cast<UnixSeconds>(std::time(nullptr)));
  info.duration_s = (booked - pos0) * opt.config.interval_seconds;
  for (const auto& site : opt.config.sites) info.ranks.push_back(site.ranks);
  info.gpus = peak_gpus;
  RETURN_IF_ERROR(WriteEmissionsCsv(opt.run_dir + "/emissions.csv", opt.config, ledger, info));
  return report;
}

// What the simulator's model (the shared engine: action costs, phases, dispatch) predicts for the
// plans this run carried out over the same trace hours: the modelled GPUs train at the option's
// full speed whenever the plan runs. Live books them busy only for the measured duty cycle of its
// workers, so the ratio shows how far the live pace and the model's agree.
json LiveCoordinator::Impl::PredictedCarbon() const {
  if (!follow_plan || plan_timeline.empty()) return {{"note", "only when the live run follows the plan"}};
  const int n_sites = static_cast<int>(opt.config.sites.size());
  std::vector<double> soc_sim = soc_at_start;
  std::vector<int> alloc(n_sites, 0);
  Plan prev;
  double kg = 0, mwh = 0, plan_steps = 0;
  const double end_pos = booked;
  for (size_t k = 0; k < plan_timeline.size(); ++k) {
    const size_t i = plan_timeline[k].first;
    if (i >= sim->supply()[0].size()) break;
    const Plan& p = plan_timeline[k].second;
    // The hours of interval i this run covered (the first and the last may be partial).
    const double from = std::max(static_cast<double>(i), pos0);
    const double to = std::min(static_cast<double>(i + 1), end_pos);
    if (k + 1 < plan_timeline.size() && plan_timeline[k + 1].first == i) continue;  // superseded in the same interval
    if (to <= from) continue;
    const double hours = (to - from) * dt;
    const Transition tr = engine->Cost(prev, p);
    const double overhead = std::min(hours, tr.overhead_hours);
    const double run_h = p.paused() ? 0 : hours - overhead;
    plan_steps += run_h * p.steps_per_hour;
    for (int s = 0; s < n_sites; ++s) {
      const PowerFlow f =
          engine->Dispatch(s, i, soc_sim[s], engine->Phases(s, p, alloc[s], hours, overhead, run_h), nullptr);
      soc_sim[s] = f.soc_after_mwh;
      kg += f.carbon_kg;
      mwh += f.demand_mwh;
    }
    if (!p.paused()) alloc = p.busy_gpus;
    prev = p;
  }
  double live_kg = 0, live_mwh = 0;
  const UnixSeconds t0 = TimeAt(pos0);
  for (const auto& row : ledger.rows())
    if (row.time >= t0) live_kg += row.flow.carbon_kg, live_mwh += row.flow.demand_mwh;
  // The job's steps the live run trained here (net of any rolled back), against those the plans' options
  // would have trained over the same hours: the live steps stand for the job's, so below 1 the box is
  // slower than the plans assume and the run falls behind them (PaceAdvice).
  const int64_t done = loss_curve.empty() ? first_step : loss_curve.back().first + 1;
  const double live_steps = JobSteps(static_cast<double>(done - first_step));
  const double pace = plan_steps > 0 ? live_steps / plan_steps : 0.0;
  return {{"simulated_carbon_kg", kg}, {"simulated_demand_mwh", mwh}, {"live_carbon_kg", live_kg},
          {"live_demand_mwh", live_mwh}, {"live_over_simulated_carbon", kg > 0 ? live_kg / kg : 0.0},
          {"live_over_simulated_demand", mwh > 0 ? live_mwh / mwh : 0.0},
          {"simulated_job_steps", plan_steps}, {"live_job_steps", live_steps}, {"live_over_simulated_pace", pace},
          {"pace_advice", PaceAdvice(pace, opt.config.runtime.wall_seconds_per_trace_hour)},
          {"note", "the simulator's engine on the plans carried out, over the same trace hours, GPUs training at "
                   "full speed whenever the plan runs; live books them busy for its workers' measured duty cycle"}};
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
  report["start_step"] = first_step;
  report["end_step"] = end_step;
  report["seed"] = opt.seed;
  json lc = json::array();
  for (const auto& [s, l] : lc_sorted) lc.push_back({{"step", s}, {"loss", l}});
  report["loss_curve"] = lc;
  const double train_wall = Since(train_t0);
  report["wall_seconds"] = Since(run_t0);
  report["train_wall_seconds"] = train_wall;
  report["trace_start"] = FormatIsoTime(TimeAt(pos0));
  report["trace_hours"] = (booked - pos0) * dt;
  report["pace"] = cfg.runtime.pace;
  report["trace_clock_held_hours"] = clock_lag_s / 3600.0;
  // The job's deadline in trace time; the live steps stand for the job's, so the run meets it when
  // its last step ends (on the trace clock) by then.
  const UnixSeconds deadline =
      cfg.job.start + static_cast<UnixSeconds>(std::llround(cfg.job.deadline_hours * 3600.0));
  report["deadline"] = FormatIsoTime(deadline);
  report["finished_at"] = FormatIsoTime(TimeAt(booked));
  report["deadline_met"] = TimeAt(booked) <= deadline;
  json sts = json::object();
  for (const auto& [k, v] : stage_wall) {
    auto it = stage_compute.find(k);
    sts["stage" + std::to_string(k)] = {{"mean_wall_s", Mean(v)},
                                        {"mean_compute_s", it == stage_compute.end() ? 0.0 : Mean(it->second)}};
  }
  report["step_seconds"] = sts;
  report["cost_model_check"] = CheckCostModel(model, stages, R, stage_wall, stage_compute);
  report["ledger"] = ledger.ToJson();
  report["emission_basis"] = sim->basis();
  report["ledger_max_imbalance_mwh"] = ledger.MaxImbalanceMwh();
  report["ledger_complete"] = !beyond_traces;
  report["checkpoints"] = ckpts->records();
  report["checkpoint_dir"] = ckpts->root();
  report["resumes"] = resumes;
  report["actions"] = actions;
  report["faults"] = faults;
  report["dropped_impersonations"] = impersonations;
  report["simulator_prediction"] = PredictedCarbon();
  report["follows_plan"] = follow_plan;
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

int LiveCoordinator::metrics_port() const { return impl_->metrics ? impl_->metrics->port() : -1; }

std::string LiveCoordinator::control_endpoint() const {
  return live::WithHost(impl_->control->endpoint(), live::AdvertisedHost(impl_->opt.bind_host, impl_->opt.advertise_host));
}

std::vector<std::string> LiveCoordinator::WorkerEnvironment(int rank) const {
  const Impl& I = *impl_;
  if (!I.curve || rank < 0 || rank >= static_cast<int>(I.keyring.workers.size()) ||
      I.keyring.workers[rank].secret_key.empty())
    return {};
  return {std::string(kEnvWorkerKey) + "=" + I.keyring.workers[rank].secret_key,
          std::string(kEnvCoordinatorPublicKey) + "=" + I.keyring.coordinator.public_key};
}

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
  I.ckpts = std::make_unique<LiveCheckpoints>(ckpt::CheckpointsDir(I.opt.run_dir), I.opt.keep_checkpoints,
                                              I.SiteStorage());

  TransportOptions to;
  to.name = "coordinator";
  const std::string port = I.opt.control_port > 0 ? std::to_string(I.opt.control_port) : "*";
  const std::string store_port = I.opt.control_port > 0 ? std::to_string(I.opt.control_port + 1) : "*";
  to.bind_endpoint = "tcp://" + I.opt.bind_host + ":" + port;
  to.plaintext = !I.curve;
  to.linger = std::chrono::milliseconds(1000);
  to.heartbeat_timeout = std::chrono::milliseconds(30000);
  // A command to a dead worker fails after this instead of holding the control loop (Send).
  // Control messages are small JSON: a frame above 16 MiB is refused (and its connection closed)
  // before it is buffered, even from an authenticated peer.
  to.max_message_bytes = 16ull << 20;
  to.send_timeout = std::clamp(I.opt.heartbeat_timeout / 2, std::chrono::milliseconds(500), std::chrono::milliseconds(5000));
  ZmqStoreServerOptions so;
  so.endpoint = "tcp://" + I.opt.bind_host + ":" + store_port;
  so.plaintext = !I.curve;
  if (I.curve) {
    RETURN_IF_ERROR(I.SetUpKeys());
    to.keys = so.keys = I.keyring.coordinator;
    for (int r = 0; r < I.opt.workers; ++r)
      to.allowed_peers[I.keyring.workers[r].public_key] = so.allowed_clients[I.keyring.workers[r].public_key] =
          "rank" + std::to_string(r);
  }
  ASSIGN_OR_RETURN(I.control, Transport::Create(to));
  ASSIGN_OR_RETURN(I.store, ZmqStoreServer::Start(so));
  if (I.opt.metrics_port >= 0) {
    ASSIGN_OR_RETURN(I.metrics, MetricsServer::Start(I.opt.bind_host, I.opt.metrics_port));
    GT_INFO("live", "Prometheus metrics at http://" << I.opt.bind_host << ":" << I.metrics->port() << "/metrics");
  }
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
  if (r.value("follows_plan", false))
    os << "placement: follows the policy's plan from " << r.value("trace_start", "") << "; at the end "
       << r["plan"].value("placement", "") << ", live pipeline " << r["plan"].value("live_placement", "") << "\n";
  else
    os << "placement: policy plan " << r["plan"].value("placement", "") << " at " << r.value("trace_start", "")
       << "; live pipeline fixed on " << r["plan"].value("live_placement", "") << " (--sites all)\n";
  if (!r["plan"].value("note", std::string()).empty()) os << "  note: " << r["plan"].value("note", "") << "\n";
  if (r.contains("deadline_met"))
    os << "deadline " << r.value("deadline", "") << ": " << (r.value("deadline_met", true) ? "met" : "MISSED")
       << " (last step at " << r.value("finished_at", "") << " trace time)\n";
  os << (r.value("follows_plan", false) ? "final " : "") << "pipeline (" << r.value("replicas", 0) << " replica(s) per stage, "
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
  const json& totals = ledger["totals"];
  os << "batteries: " << std::showpos << std::setprecision(3) << totals.value("battery_change_mwh", 0.0)
     << " MWh at the end vs the start; drawdown charged at the sites' mean grid intensity " << std::setprecision(2)
     << totals.value("battery_drawdown_kg", 0.0) << std::noshowpos << " kg -> " << totals.value("carbon_reconciled_kg", 0.0)
     << " kg with the books closed\n";
  os << "carbon (" << r.value("emission_basis", std::string("direct")) << " basis): location-based "
     << totals.value("carbon_kg", 0.0) << " kg, market-based " << totals.value("market_carbon_kg", 0.0)
     << " kg (never added together); hourly carbon-free energy " << std::setprecision(1)
     << 100 * totals.value("cfe_score", 0.0) << " %\n" << std::setprecision(2);
  os << "ledger max imbalance: " << std::scientific << std::setprecision(2) << r.value("ledger_max_imbalance_mwh", 0.0)
     << " MWh\n" << std::fixed;
  if (r.contains("cost_model_check") && r["cost_model_check"].contains("predicted_step_s"))
    os << "  cost model: predicted step " << r["cost_model_check"].value("predicted_step_s", 0.0)
       << " s from measured stage compute, measured " << r["cost_model_check"].value("measured_step_s", 0.0)
       << " s (ratio " << r["cost_model_check"].value("measured_over_predicted", 0.0) << ")\n";
  for (const auto& [k, v] : r["step_seconds"].items())
    os << "  " << k << ": " << std::setprecision(3) << v.value("mean_wall_s", 0.0) << " s/step wall, "
       << v.value("mean_compute_s", 0.0) << " s compute\n";
  if (r.value("follows_plan", false)) {
    os << "actions carried out live (" << r["actions"].size() << "; policy proposals not applied: "
       << r.value("policy_proposals_ignored", 0) << "):\n";
    for (const auto& a : r["actions"])
      os << "  " << a.value("trace_time", "") << "  step " << std::setw(5) << a.value("step", 0) << "  "
         << std::left << std::setw(18) << a["actions"].dump() << std::right << " " << a.value("from", "") << " -> "
         << a.value("to", "") << "  (" << std::setprecision(1) << a.value("checkpoint_bytes", 0.0) / 1e6
         << " MB checkpointed, " << a.value("state_transfer_bytes", 0.0) / 1e6 << " MB moved between ranks, "
         << (a.value("state_bytes", 0.0) - a.value("state_transfer_bytes", 0.0)) / 1e6 << " MB read back; "
         << std::setprecision(2) << a.value("lost_training_s", 0.0) << " s of training lost)\n";
  }
  if (r.contains("simulator_prediction") && r["simulator_prediction"].contains("simulated_carbon_kg")) {
    const json& p = r["simulator_prediction"];
    os << "simulator's prediction for these plans and trace hours: " << std::setprecision(2)
       << p.value("simulated_carbon_kg", 0.0) << " kg, " << std::setprecision(3) << p.value("simulated_demand_mwh", 0.0)
       << " MWh; live " << std::setprecision(2) << p.value("live_carbon_kg", 0.0) << " kg, " << std::setprecision(3)
       << p.value("live_demand_mwh", 0.0) << " MWh (ratio " << std::setprecision(2)
       << p.value("live_over_simulated_carbon", 0.0) << " carbon, " << p.value("live_over_simulated_demand", 0.0)
       << " energy)\n";
    if (p.contains("live_over_simulated_pace")) {
      const bool paced = r.value("pace", std::string()) == "plan";
      os << "pace (" << (paced ? "set by the plan" : "set by the box") << "): the live run trained "
         << std::setprecision(0) << p.value("live_job_steps", 0.0)
         << " of the job's steps where the plans' options would have trained " << p.value("simulated_job_steps", 0.0)
         << " (ratio " << std::setprecision(2) << p.value("live_over_simulated_pace", 0.0) << ")";
      if (paced)
        os << "; the trace clock waited " << r.value("trace_clock_held_hours", 0.0) << " trace hours for the box";
      const std::string advice = paced ? std::string() : p.value("pace_advice", std::string());
      os << (advice.empty() ? "" : ": " + advice) << "\n";
    }
  }
  if (r.contains("checkpoints") && !r["checkpoints"].empty()) {
    os << "checkpoints (" << r["checkpoints"].size() << ", kept in " << r.value("checkpoint_dir", "") << "):\n";
    for (const auto& c : r["checkpoints"])
      os << "  step " << std::setw(5) << c.value("step", 0) << " at " << c.value("trace_time", "") << "  "
         << std::setprecision(1) << c.value("bytes", 0.0) / 1e6 << " MB, training paused " << std::setprecision(3)
         << c.value("snapshot_s", 0.0) << " s, written in " << c.value("write_s", 0.0) << " s: "
         << c.value("reason", "") << "\n";
  }
  for (const auto& f : r.value("faults", json::array()))
    os << "fault: " << f.value("trace_time", "") << " rank(s) " << f.value("ranks", json::array()).dump() << " "
       << f.value("event", "") << ": " << f.value("what", "") << "\n";
  for (const auto& res : r.value("resumes", json::array()))
    os << "resumed at step " << res.value("step", 0) << " (trace " << res.value("trace_time", "") << ") from "
       << res.value("checkpoint", "") << "; " << res["rejected"].size() << " newer damaged checkpoint(s) skipped\n";
  os << "steps " << r.value("start_step", 0) << ".." << r.value("end_step", 0) << " in " << std::setprecision(1)
     << r.value("wall_seconds", 0.0) << " s wall; policy proposals not applied: " << r.value("policy_proposals_ignored", 0)
     << "\n";
  return os.str();
}

}  // namespace gt
