// The live control protocol between the coordinator (coordinator/live.h) and the worker processes
// (worker/runtime.h), and the run-directory conventions both sides share. Header-only (no link
// dependency), no torch, no ZeroMQ: messages are JSON objects sent with Transport::SendControl.
//
// Channels and keys. The coordinator binds a control endpoint; each worker binds its own control
// endpoint and, once assigned a stage, a data endpoint for activations and gradients. With
// runtime.transport_security "curve" (default) every channel is CURVE-encrypted:
//   - the coordinator writes, per run, <run_dir>/keys/coordinator.pub (its public key) and
//     <run_dir>/keys/control.key (a control-channel key pair shared by the run's workers; file mode
//     0600) before any worker starts; the coordinator accepts only that client key, a worker's control
//     endpoint only the coordinator's key;
//   - each worker generates a fresh data key pair at start and registers its public key; the
//     coordinator hands every stage rank the public keys of its two neighbours (assign), and each
//     data endpoint accepts only those two keys.
// The keys directory is removed when the run ends.
//
// Sequence (one run; every message carries "rank" when sent by a worker):
//   worker -> coordinator  register {rank, size, site, host, control_endpoint, data_key}
//   coordinator -> worker  assign   {epoch, role: "stage"|"idle", stage, num_stages, replica, replicas,
//                                    first, last, job, seed, start_step, end_step, resume_dir
//                                    ("" = fresh), store_endpoint, collective,
//                                    members: [ranks of the stage's replicas], prev_key, next_key,
//                                    state_from: [{rank, key, first, last}]}
//                                    (idle ranks get {epoch, role: "idle", start_step})
//   The state of a stage rank comes, in this order, from: memory (it halted before start_step holding
//   exactly its new layers); the ranks in state_from (resize, migration: they halted holding those
//   layers; see "state transfer" below); the checkpoint resume_dir; nothing (fresh, step 0).
//   worker -> coordinator  receiving {data_endpoint}   (only with state_from) where to send the layers
//   coordinator -> worker  send_state {epoch, to, endpoint, key, first, last, step}   to each rank in
//                                    the receiver's state_from: send layers [first, last) held at the
//                                    boundary before `step` (worker/state_transfer.h)
//   worker -> coordinator  ready    {data_endpoint, next_step (= start_step once the state is loaded),
//                                    state_via: memory|peers|checkpoint|fresh, state_bytes, state_s}
//   coordinator -> worker  start    {start_step, allowed, prev_endpoint, next_endpoint}
//   coordinator -> worker  allow    {epoch, until}  steps before `until` may run (a rank waits at the
//                                    boundary of an ungranted step); the grant runs ahead of the
//                                    pipeline by about half a second of steps (and at most 5 % of
//                                    an interval of trace time, at least 2 steps), so that a halt or
//                                    a checkpoint at the granted boundary is one no rank has passed
//   worker -> coordinator  step     {stage, replica, step, loss, compute_s, wall_s, allreduce_s}  (each step)
//   coordinator -> worker  checkpoint {step, dir, reason}   snapshot at the boundary before step `step`
//                                    (after `step` steps; step may equal end_step) into the step
//                                    directory `dir` (checkpoint/store.h); every replica writes its
//                                    share of the stage's layers (worker/layer_state.h)
//   worker -> coordinator  checkpoint_written {step, dir, files: [{name, bytes, sha256}], bytes,
//                                    snapshot_s (training time lost), write_s (background)}
//   worker -> coordinator  checkpoint_failed {step, message}   (boundary already passed, or I/O error)
//   worker -> coordinator  done     {next_step}   (after its last checkpoint write has finished)
//   coordinator -> worker  halt     {epoch, step}  end the epoch at the boundary before `step` (all
//                                    stages stop at the same boundary), keep the state in memory
//   worker -> coordinator  halted   {step}         the epoch's channels are closed; the worker waits
//                                    for its next assign (the same layers at the same step continue
//                                    from memory, others from the assign's resume_dir)
//   coordinator -> worker  abort    {epoch, reason} leave the epoch now (a peer failed), drop its state,
//                                    wait for the next assign (which resumes from a checkpoint)
// State transfer. A rank that halts keeps its layers in memory until every rank of the next epoch is
// ready (start) or an assignment for another step arrives. A receiver binds its data endpoint with the
// sources' data keys allowed (CURVE: only they can send), tells the coordinator (receiving), which
// asks each source (send_state); each source opens a send-only channel with its data key and sends
// its fragment (layers its own state covers come from its memory). A source that cannot send logs it;
// the receiver then misses the acknowledgement time like any silent rank.
// Epochs. Every assignment carries an epoch (0, 1, ...); every worker message carries the epoch of
// its assignment and every command to a worker the current epoch; either side drops messages of
// another epoch. A worker serves one assignment after another until stop; idle workers wait too.
//   worker -> coordinator  error    {message}        (the coordinator then stops the run)
//   coordinator -> worker  stop     {reason}         (to every worker at the end or on error)
// Idle workers (ranks the plan does not use) receive assign{role:"idle"} and wait for stop.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace gt::live {

constexpr const char* kRegister = "register";
constexpr const char* kAssign = "assign";
constexpr const char* kReady = "ready";
constexpr const char* kReceiving = "receiving";
constexpr const char* kSendState = "send_state";
constexpr const char* kStart = "start";
constexpr const char* kStep = "step";
constexpr const char* kCheckpoint = "checkpoint";
constexpr const char* kCheckpointWritten = "checkpoint_written";
constexpr const char* kCheckpointFailed = "checkpoint_failed";
constexpr const char* kHalt = "halt";
constexpr const char* kHalted = "halted";
constexpr const char* kAbort = "abort";
constexpr const char* kAllow = "allow";
constexpr const char* kDone = "done";
constexpr const char* kError = "error";
constexpr const char* kStop = "stop";

// Environment variables set by `greentrain run` for the workers (flags override them).
constexpr const char* kEnvCoordinator = "GREENTRAIN_COORDINATOR";
constexpr const char* kEnvRunDir = "GREENTRAIN_RUN_DIR";

inline std::string KeysDir(const std::string& run_dir) { return run_dir + "/keys"; }
inline std::string CoordinatorPublicKeyPath(const std::string& run_dir) { return KeysDir(run_dir) + "/coordinator.pub"; }
inline std::string ControlKeyPath(const std::string& run_dir) { return KeysDir(run_dir) + "/control.key"; }
// This process's rank and world size from the launcher's environment (Open MPI, then PMI).
// NotFound when neither is set.
inline Result<std::pair<int, int>> RankFromEnvironment() {
  const char* pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, {"PMI_RANK", "PMI_SIZE"}};
  for (const auto& p : pairs) {
    const char* r = std::getenv(p[0]);
    const char* s = std::getenv(p[1]);
    if (r && s) {
      char* end = nullptr;
      long rank = std::strtol(r, &end, 10);
      if (*end != '\0') return InvalidArgument(std::string(p[0]) + "='" + r + "' is not an integer");
      long size = std::strtol(s, &end, 10);
      if (*end != '\0') return InvalidArgument(std::string(p[1]) + "='" + s + "' is not an integer");
      if (size < 1 || rank < 0 || rank >= size)
        return InvalidArgument("rank " + std::to_string(rank) + " outside world size " + std::to_string(size));
      return std::make_pair(static_cast<int>(rank), static_cast<int>(size));
    }
  }
  return NotFound("no OMPI_COMM_WORLD_RANK/SIZE or PMI_RANK/SIZE in the environment: start workers with mpirun "
                  "or pass --rank and --size");
}

// The site of a worker. Cluster mode: the first site whose `hosts` lists `hostname`. One-box mode
// (no site lists hosts): sites[i].ranks consecutive ranks each, in config order. Errors name the
// host or rank that matches no site.
inline Result<int> SiteForRank(const Config& config, int rank, const std::string& hostname) {
  bool any_hosts = false;
  for (size_t s = 0; s < config.sites.size(); ++s) {
    for (const auto& h : config.sites[s].hosts) {
      any_hosts = true;
      if (h == hostname) return static_cast<int>(s);
    }
  }
  if (any_hosts)
    return NotFound("host '" + hostname + "' is not listed in any sites[].hosts of the config");
  int first = 0;
  for (size_t s = 0; s < config.sites.size(); ++s) {
    if (rank >= first && rank < first + config.sites[s].ranks) return static_cast<int>(s);
    first += config.sites[s].ranks;
  }
  return NotFound("rank " + std::to_string(rank) + " is beyond the " + std::to_string(first) +
                  " ranks the config's sites[].ranks provide; start fewer workers or raise sites[].ranks");
}

// Total of sites[].ranks: the number of workers `greentrain run` starts on one box.
inline int TotalRanks(const Config& config) {
  int n = 0;
  for (const auto& s : config.sites) n += s.ranks;
  return n;
}

}  // namespace gt::live
