// The worker process of a live run (`greentrain worker`): registers with the coordinator, takes the
// stage it is assigned, trains it with worker/pipeline.h and reports every step. The protocol is
// described in coordinator/protocol.h. No torch in this header.
//
// Contract: RunWorker returns OK after the coordinator's stop (a normal end) and an error otherwise
// (bad options, coordinator unreachable within options.connect_timeout, a neighbour silent for
// receive_timeout, a failed collective); on error it first tries to tell the coordinator. It never
// waits forever: every wait has a deadline. One RunWorker per process (it sets the process-wide
// compute threads).
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace gt::worker {

struct WorkerOptions {
  std::string config_path;            // the run's config (sites, live model, runtime)
  std::string coordinator_endpoint;   // the coordinator's control endpoint
  std::string run_dir;                // checkpoints/ (and keys/ when the coordinator writes the run's keys)
  // This rank's CURVE keys (comms/keyring.h), in this order: the environment (GREENTRAIN_WORKER_KEY and
  // GREENTRAIN_COORDINATOR_KEY, set by `greentrain run`), keys_dir (worker-<rank>.key and
  // coordinator.pub, from `greentrain keys generate`), <run_dir>/keys.
  std::string keys_dir;
  std::string bind_host = "127.0.0.1";  // address this worker listens on
  std::string advertise_host;         // the address its peers reach it at (protocol.h AdvertisedHost)
  std::string hostname;               // for sites[].hosts; empty = gethostname()
  int rank = -1, size = -1;           // -1: from OMPI_COMM_WORLD_* / PMI_* (coordinator/protocol.h)
  int threads = 1;                    // torch / BLAS compute threads
  std::string corpus;                 // empty = the bundled corpus
  std::chrono::milliseconds connect_timeout{120000};  // registration until assignment and start
  std::chrono::milliseconds receive_timeout{120000};  // per activation / gradient from a neighbour
};

Status RunWorker(const WorkerOptions& options);

}  // namespace gt::worker
