// The live control protocol between the coordinator (coordinator/live.h) and the worker processes
// (worker/runtime.h), and the run-directory conventions both sides share. Header-only (no link
// dependency), no torch, no ZeroMQ: messages are JSON objects sent with Transport::SendControl.
//
// Channels and keys. The coordinator binds a control endpoint; each worker binds its own control
// endpoint and, once assigned a stage, a data endpoint for activations and gradients. With
// runtime.transport_security "curve" (default) every channel is CURVE-encrypted:
//   - the control channels use a key pair for the coordinator and one per rank (comms/keyring.h):
//     from a keys directory made by `greentrain keys generate` (--keys), or fresh per run, handed
//     to the workers `greentrain run` starts in their environment, or written to <run_dir>/keys for
//     workers sharing the coordinator's file system (removed at the end). The coordinator accepts
//     only the ranks' keys and takes a message's rank from the key that authenticated it: a
//     message whose "rank" differs is dropped and logged. A worker's control endpoint accepts only
//     the coordinator's key. The rendezvous store (comms/zmq_store.h) accepts the same rank keys;
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
//                                    members: [ranks of the stage's replicas], collective_timeout_ms
//                                    (a collective with a silent member fails after it), prev_key, next_key,
//                                    state_from: [{rank, key, first, last[, checkpoint: true]}]}
//                                    (idle ranks get {epoch, role: "idle", start_step})
//   The state of a stage rank comes, in this order, from: memory (it halted before start_step holding
//   exactly its new layers); the ranks in state_from (resize, migration: they halted holding those
//   layers; see "state transfer" below; or, with site storage, the ranks of the sites keeping the
//   checkpoint's layers, itself for those of its own site); the checkpoint resume_dir; nothing
//   (fresh, step 0).
//   worker -> coordinator  receiving {data_endpoint}   (only with state_from) where to send the layers
//   coordinator -> worker  send_state {epoch, to, endpoint, key, first, last, step[, checkpoint]}   to
//                                    each rank in the receiver's state_from (with checkpoint: read
//                                    them from the site storage's checkpoint at `step`, which the
//                                    state_from entry marks checkpoint: true): send layers [first, last) held at the
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
//                                    share of the stage's layers (worker/layer_state.h). An empty dir
//                                    (runtime.checkpoint_storage "site"): the step directory of the
//                                    worker's site storage (ckpt::SiteCheckpointsDir)
//   coordinator -> worker  checkpoint_committed {step, files: [{name, bytes, sha256}], keep}   (site
//                                    storage, to one rank per site that wrote files) the step is
//                                    committed: write the site's manifest of these files and keep the
//                                    newest `keep` committed steps of the site's storage
//   worker -> coordinator  checkpoint_written {step, dir, files: [{name, bytes, sha256}], bytes,
//                                    snapshot_s (training time lost), write_s (background)}
//   worker -> coordinator  checkpoint_failed {step, message}   (boundary already passed, or I/O error)
//   worker -> coordinator  done     {next_step}   (after its last checkpoint write has finished)
//   coordinator -> worker  halt     {epoch, step}  end the epoch at the boundary before `step` (all
//                                    stages stop at the same boundary), keep the state in memory
//   worker -> coordinator  halted   {step}         the epoch's channels are closed; the worker waits
//                                    for its next assign (the same layers at the same step continue
//                                    from memory, others from the assign's resume_dir)
//   coordinator -> worker  abort    {epoch, reason} leave the epoch now (a peer failed) and wait for the
//                                    next assign; a rank that was training keeps its state at the
//                                    boundary before the step it was on (nothing of it applied) and
//                                    reports it:
//   worker -> coordinator  left     {held_step, first, last}   (epoch_failed carries the same fields
//                                    when its rank held a state). When every surviving stage rank
//                                    holds the same step and every stage has a survivor, the next
//                                    epoch starts there, the layers coming from the survivors
//                                    (memory, send_state); otherwise from the last checkpoint.
// State transfer. A rank that halts keeps its layers in memory until every rank of the next epoch is
// ready (start) or an assignment for another step arrives. A receiver binds its data endpoint with the
// sources' data keys allowed (CURVE: only they can send), tells the coordinator (receiving), which
// asks each source (send_state); each source opens a send-only channel with its data key and sends
// its fragment (layers its own state covers come from its memory). A source that cannot send logs it;
// the receiver then misses the acknowledgement time like any silent rank.
// Epochs. Every assignment carries an epoch (0, 1, ...); every worker message carries the epoch of
// its assignment and every command to a worker the current epoch; either side drops messages of
// another epoch. A worker serves one assignment after another until stop; idle workers wait too.
//   worker -> coordinator  epoch_failed {message}    the epoch broke on a peer (a collective or a
//                                    pipeline link failed, a neighbour went silent): this rank left
//                                    it, dropped its state and waits for an assignment. The
//                                    coordinator waits one heartbeat timeout for the dead rank to
//                                    show (it then recovers without it), else restarts the epoch
//                                    from the last checkpoint with the same ranks.
//   worker -> coordinator  error    {message}        a fault of its own (the coordinator then stops the run)
//   coordinator -> worker  stop     {reason}         (to every worker at the end or on error)
// Liveness. Every worker sends heartbeat {epoch} every kHeartbeatSeconds from its own thread (also
// while computing). The coordinator treats a rank silent for --heartbeat-timeout as failed: the
// epoch is abandoned (abort) and the plan carried out without it; an idle rank is only left out.
// A rank treated as failed that is heard again (it was stopped or cut off) is told to leave its
// epoch (abort with the epoch its heartbeat names) and rejoins as idle; a restarted worker process
// registers again. Either way it is used again from the next interval on.
// Idle workers (ranks the plan does not use) receive assign{role:"idle"} and wait for stop.
#pragma once

#include <unistd.h>

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
constexpr const char* kSiteStorage = "site";  // runtime.checkpoint_storage value
constexpr const char* kCheckpointWritten = "checkpoint_written";
constexpr const char* kCheckpointFailed = "checkpoint_failed";
constexpr const char* kCheckpointCommitted = "checkpoint_committed";
constexpr const char* kHalt = "halt";
constexpr const char* kHalted = "halted";
constexpr const char* kAbort = "abort";
constexpr const char* kAllow = "allow";
constexpr const char* kDone = "done";
constexpr const char* kError = "error";
constexpr const char* kStop = "stop";
constexpr const char* kHeartbeat = "heartbeat";
constexpr const char* kEpochFailed = "epoch_failed";
constexpr const char* kLeft = "left";
constexpr double kHeartbeatSeconds = 1.0;

// Environment variables set by `greentrain run` for the workers (flags override them).
constexpr const char* kEnvCoordinator = "GREENTRAIN_COORDINATOR";
constexpr const char* kEnvRunDir = "GREENTRAIN_RUN_DIR";

inline std::string KeysDir(const std::string& run_dir) { return run_dir + "/keys"; }
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

// The address peers should use for a socket bound on `bind_host`: `advertise_host` when given,
// else bind_host itself, except that a wildcard bind ("0.0.0.0", "*", "") is advertised under this
// machine's host name (which peers must resolve; pass --advertise-host otherwise).
inline std::string AdvertisedHost(const std::string& bind_host, const std::string& advertise_host) {
  if (!advertise_host.empty()) return advertise_host;
  if (bind_host != "0.0.0.0" && bind_host != "*" && !bind_host.empty()) return bind_host;
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "127.0.0.1";
  return buf;
}

// `endpoint` ("tcp://0.0.0.0:41234", as a Transport reports what it bound) with its host replaced by
// `host`; other forms are returned unchanged.
inline std::string WithHost(const std::string& endpoint, const std::string& host) {
  const std::string scheme = "tcp://";
  const size_t colon = endpoint.rfind(':');
  if (endpoint.rfind(scheme, 0) != 0 || colon == std::string::npos || colon < scheme.size()) return endpoint;
  return scheme + host + endpoint.substr(colon);
}

// Total of sites[].ranks: the number of workers `greentrain run` starts on one box.
inline int TotalRanks(const Config& config) {
  int n = 0;
  for (const auto& s : config.sites) n += s.ranks;
  return n;
}

}  // namespace gt::live
