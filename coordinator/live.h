// The live coordinator: the control loop of a real training run on worker processes.
//
// What it does (protocol in coordinator/protocol.h):
//  1. Placement. Every interval it asks the policy through the IntervalEngine the simulator uses
//     (coordinator/engine.h: same option menu, forecasters, battery states, allocation, time since
//     the last checkpoint). At the start, a policy that pauses is followed ahead (without waiting;
//     at most 7 days of trace time) to the first interval where it runs.
//  2. Pipeline and actions. With sites "plan" (default) the live run carries out the plan: one
//     stage per site where the plan runs work, that site's live ranks standing for its GPUs in
//     proportion (at least one), layer cuts from the plan's partition scaled to the live model.
//     When the plan changes (pause, resume, another site, another number of GPUs mapping to another
//     replica count) every stage rank halts at one step boundary, keeping its state in memory,
//     after a checkpoint of it where the plan's actions hold one (before a pause or a move, or a
//     periodic or forecast one due then; not for a resize); the new pipeline is assigned in a new
//     epoch (fresh collective generation and pipeline links) and continues at that step, ranks
//     keeping their layers from memory, the others receiving them from the ranks that held them
//     (worker/state_transfer.h; the checkpoint only when no live rank holds them: after a failure
//     or on resume). A paused allocation is booked at idle power. Every action is reported with its
//     trace time, reason, state bytes and the training time it cost.
//     With sites "all" the pipeline is fixed on every site with workers (the plan's proposals are
//     logged, not applied). Replicas per stage: R = the fewest ranks of any stage's site, reduced
//     until R x micro_batch divides global_batch; replica r of stage k talks to replica r of k+1.
//  3. Time and ledger. Trace time replays at runtime.wall_seconds_per_trace_hour. Per site and
//     interval piece, the worker-reported busy (compute) seconds give the duty cycle d = busy /
//     (workers x wall seconds) of the site's live workers; the plan's GPUs there train for d of the
//     piece (busy_w) and wait idle for the rest (idle_w), dispatched in phases with energy/power.h
//     as the simulator dispatches, so every row balances. work_steps are live optimizer steps.
//     With runtime.pace "plan" the job advances at the plan's modelled speed instead of the box's:
//     steps are granted along the plan's line (its steps per hour scaled to the live steps), the
//     trace clock waits for a box that lags it, a reconfiguration takes the trace time the engine
//     charges it, and d is the share of the plan's steps the piece delivered.
//  4. Checkpoints (coordinator/live_checkpoints.h, format checkpoint/store.h). At every interval
//     boundary the engine's plan says whether one is due (DecideCheckpoint, coordinator/
//     checkpoint_policy.h, the simulator booking the same): before the policy's next plan pauses or
//     moves work, before a site's forecast green power falls below its load, and every
//     job.checkpoint_every_hours trained; --checkpoint-every adds one every N steps; the final
//     state is always saved. Workers snapshot at a common step boundary and write in the
//     background; the coordinator adds its own state at that boundary (trace time, battery states,
//     the ledger so far, loss curve, checkpoints) and commits. Resume takes the newest checkpoint
//     that verifies, places the job anew (any sites, stage split or replica count), continues the
//     trace clock where the checkpoint left it and appends to its ledger and report. A fresh run
//     refuses a run directory that holds checkpoints.
//  5. End. After every stage rank reported done (or on error / timeout / cancellation) it sends
//     stop to every worker, writes <run_dir>/report.json, ledger.json, ledger.csv, trace.json (a
//     Perfetto / chrome://tracing timeline: steps and checkpoint writes per rank, plan changes,
//     pauses, decisions) and emissions.csv (CodeCarbon's columns, one row per site), and returns
//     the report. During the run a status line is logged at every interval (and on request) and
//     <run_dir>/status.json rewritten.
//
// Ownership and threads: not thread-safe; Run is called once. options.cancelled is polled from
// Run's thread (e.g. a Ctrl-C flag or "the worker launcher exited").
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/config.h"
#include "common/status.h"
#include "energy/ledger.h"
#include "energy/power.h"

namespace gt {

struct LiveOptions {
  Config config;
  std::string run_dir;              // keys/ (removed at the end), report.json, ledger.*, checkpoints/
  std::string bind_host = "127.0.0.1";
  // The address workers reach the coordinator and its store at (protocol.h AdvertisedHost): needed
  // when bind_host is 0.0.0.0 and the host name does not resolve for the workers.
  std::string advertise_host;
  // The control endpoint's port, the rendezvous store's the next one; 0 = any free ports. A fixed
  // port lets workers find a restarted coordinator (`greentrain coordinator` uses runtime.base_port).
  int control_port = 0;
  int workers = 0;                  // registrations to wait for; 0 = sum of sites[].ranks
  int64_t steps = 0;                // train until this step; 0 = runtime.live_steps
  int64_t checkpoint_every = 0;     // also checkpoint every N steps (0 = only the energy/plan/periodic triggers)
  int keep_checkpoints = 3;         // committed checkpoints kept (runtime.keep_checkpoints)
  bool resume = false;              // continue from the newest valid checkpoint in run_dir/checkpoints
  uint64_t seed = 1;                // model initialisation and data order
  std::string policy;               // "" = config.policy.name
  // "plan": the pipeline follows the policy's plan as it changes (see 2. above). "all": one stage
  // per site with workers (the plan's sites first, in plan order, then the others in config order),
  // fixed for the run; the plan's busy GPUs are spread evenly over the pipeline's sites for the
  // ledger and its later proposals are only logged.
  std::string sites = "plan";
  // Wall seconds the whole run may take; 0 = no limit (a run lasts as long as its plan: days). A
  // run without progress for stall_seconds fails either way.
  double timeout_seconds = 0;
  double stall_seconds = 180;       // no progress for this long: the run fails
  // A worker that does not acknowledge a halt or an assignment within this time is treated as
  // failed: the epoch is abandoned and the plan carried out without it from the last checkpoint.
  std::chrono::milliseconds ack_timeout{30000};
  std::chrono::milliseconds register_timeout{120000};
  // Every worker sends a heartbeat each second (protocol.h); a registered worker silent for this
  // long is treated as failed at once, whatever the run is doing (training, paused, waiting for
  // acknowledgements): the plan goes on without it (see RecoverWithout in live.cc).
  std::chrono::milliseconds heartbeat_timeout{10000};
  // CURVE keys (comms/keyring.h). keys_dir: a keys directory made by `greentrain keys generate`
  // (the coordinator reads coordinator.key and worker-<rank>.pub; nothing is written or removed).
  // Empty: fresh keys for this run, written to <run_dir>/keys for workers that share this file
  // system when write_run_keys (removed at the end), else handed only to workers the caller starts
  // itself through WorkerEnvironment (no key on disk).
  std::string keys_dir;
  bool write_run_keys = true;
  std::function<bool()> cancelled;  // polled; true stops the run (Aborted)
  // The trace clock (common/clock.h), made when training starts at `trace_start`; empty = a
  // TraceReplayClock at runtime.wall_seconds_per_trace_hour. Tests pass a FakeClock they advance.
  std::function<std::unique_ptr<Clock>(UnixSeconds trace_start)> make_clock;
  // Watches the control loop, called on Run's thread (must return quickly and not call back):
  //   {"event": "interval", "interval", "time" (Unix s), "trace_time", "plan", "paused", "steps_per_hour",
  //    "work_left_steps"}                after each decision of the policy;
  //   {"event": "reconfigure", "from", "to", "overhead_hours"}   before a plan change is carried out
  //                                      (overhead_hours: the simulator engine's modelled cost);
  //   {"event": "step", "step", "loss"}  after each completed step;
  //   {"event": "waiting"}               when nothing arrived within one wait of the training loop.
  // For status displays, and for tests that model time on a FakeClock (tests/live/fake_workers.h).
  std::function<void(const nlohmann::json&)> observer;
  // Polled by the training loop; true prints the status line now (`greentrain run` sets it on SIGUSR1).
  // The status line is also logged at every interval and written to <run_dir>/status.json.
  std::function<bool()> status_requested;
  // Serve Prometheus metrics (coordinator/metrics.h) on bind_host:metrics_port; 0 = any free port,
  // -1 = off.
  int metrics_port = -1;
};

// The modelled energy of one site over one interval of a live run (see the header comment, 3.).
// `busy_worker_seconds` is clamped to workers x wall_seconds. Fails on non-positive hours or wall
// seconds. `soc_mwh` is the battery state before; the row's flow holds the state after.
Result<LedgerRow> AccountLiveInterval(const SiteConfig& site, UnixSeconds time, double hours, double wall_seconds,
                                      double busy_worker_seconds, int workers, int plan_gpus, double work_steps,
                                      const SiteSupply& supply, double soc_mwh);

class LiveCoordinator {
 public:
  // Validates the options, writes the run's keys (CURVE) and binds the control endpoint and the
  // rendezvous store on bind_host. Errors name the option or path at fault.
  static Result<std::unique_ptr<LiveCoordinator>> Create(LiveOptions options);
  ~LiveCoordinator();  // removes <run_dir>/keys

  std::string control_endpoint() const;
  // The environment entries that give worker `rank` its secret key and the coordinator's public key
  // (comms/keyring.h); empty with runtime.transport_security "plain".
  std::vector<std::string> WorkerEnvironment(int rank) const;
  // The port serving /metrics, or -1 when metrics are off.
  int metrics_port() const;

  // Runs the whole live job (see above). The report (also written to <run_dir>/report.json):
  // {"run", "policy", "plan", "pipeline": [...], "idle_ranks", "start_step", "end_step",
  //  "loss_curve": [{"step","loss"}...] (from step 0, across resumes), "wall_seconds", "trace_start",
  //  "trace_hours", "pace" (runtime.pace), "trace_clock_held_hours" (paced by the plan: trace time
  //  the clock waited for the box), "step_seconds": {...}, "ledger": Ledger::ToJson() (across resumes),
  //  "ledger_max_imbalance_mwh", "checkpoints": [{step, dir, kind, reason, trace_time, bytes, files,
  //  snapshot_s, write_s, commit_s, wall_s}], "resumes": [{step, checkpoint, trace_time, rejected}],
  //  "policy_proposals_ignored", "energy_model", "simulator_prediction": {simulated_carbon_kg,
  //  simulated_demand_mwh, live_carbon_kg, live_demand_mwh, live_over_simulated_carbon,
  //  live_over_simulated_demand, simulated_job_steps, live_job_steps, live_over_simulated_pace,
  //  pace_advice, note} (when the run follows the plan)}.
  Result<nlohmann::json> Run();

  struct Impl;

 private:
  explicit LiveCoordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a live run's pace means for its deadline. `live_over_plans`: the job's steps the run trained
// over the job's steps the plans' options would have trained in the same trace hours (the report's
// simulator_prediction.live_over_simulated_pace; the live steps stand for the job's, so the box's
// speed, not the plan, sets how fast the job advances). Empty within 10 % of 1 or when unknown (<= 0);
// otherwise one sentence: which way the run drifted from its plans and the
// runtime.wall_seconds_per_trace_hour that would match their pace on this box (the current value
// over the ratio, rounded up to two significant digits). Pure.
std::string PaceAdvice(double live_over_plans, double wall_seconds_per_trace_hour);

// A human-readable summary of a Run report: loss every `every` steps, placement, energy and carbon
// per site, wall time.
std::string FormatLiveReport(const nlohmann::json& report, int every = 10);

}  // namespace gt
