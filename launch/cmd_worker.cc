// `greentrain worker [CONFIG] --coordinator EP --run-dir DIR [--bind-host H] [--rank R --size N]
//  [--threads T] [--corpus F]`: one worker process of a live run, normally started by mpirun (rank and
// size from OMPI_COMM_WORLD_* or PMI_*; coordinator endpoint and run directory also from
// GREENTRAIN_COORDINATOR / GREENTRAIN_RUN_DIR).
#include <cstdlib>
#include <memory>

#include "coordinator/protocol.h"
#include "launch/command.h"
#ifdef GREENTRAIN_HAVE_WORKER
#include "worker/runtime.h"
#endif

namespace gt::cli {
namespace {

struct WorkerArgs {
  std::string config, coordinator, run_dir, bind_host = "127.0.0.1", advertise_host, hostname, corpus, keys;
  int rank = -1, size = -1, threads = 1;
};

int RunWorkerCmd(const WorkerArgs& a) {
#ifndef GREENTRAIN_HAVE_WORKER
  (void)a;
  return Fail("worker", Unavailable("this greentrain was built without libtorch (GREENTRAIN_WITH_TORCH=OFF)"));
#else
  worker::WorkerOptions o;
  o.config_path = a.config.empty() ? DefaultConfigPath() : a.config;
  auto env = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
  o.coordinator_endpoint = a.coordinator.empty() ? env(live::kEnvCoordinator) : a.coordinator;
  o.run_dir = a.run_dir.empty() ? env(live::kEnvRunDir) : a.run_dir;
  if (o.coordinator_endpoint.empty())
    return Fail("worker", InvalidArgument("--coordinator (or GREENTRAIN_COORDINATOR) is required"));
  if (o.run_dir.empty()) return Fail("worker", InvalidArgument("--run-dir (or GREENTRAIN_RUN_DIR) is required"));
  o.bind_host = a.bind_host;
  o.advertise_host = a.advertise_host;
  o.hostname = a.hostname;
  o.corpus = a.corpus;
  o.keys_dir = a.keys;
  o.rank = a.rank;
  o.size = a.size;
  o.threads = a.threads;
  if ((o.rank < 0) != (o.size < 0)) return Fail("worker", InvalidArgument("give both --rank and --size, or neither"));
  Status s = worker::RunWorker(o);
  if (!s.ok()) return Fail("worker", s);
  return 0;
#endif
}

}  // namespace

GT_REGISTER_COMMAND(worker_cmd, "worker", "one live worker process (started by mpirun through 'greentrain run')",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<WorkerArgs>();
                      AddConfigArg(app, &a->config);
                      app.add_option("--coordinator", a->coordinator, "the coordinator's control endpoint (or GREENTRAIN_COORDINATOR)");
                      app.add_option("--run-dir", a->run_dir, "the run directory (or GREENTRAIN_RUN_DIR)");
                      app.add_option("--keys", a->keys,
                                     "keys directory with worker-RANK.key and coordinator.pub (`greentrain keys generate`); "
                                     "default: GREENTRAIN_WORKER_KEY / GREENTRAIN_COORDINATOR_KEY, else RUN_DIR/keys");
                      app.add_option("--bind-host", a->bind_host, "address this worker listens on (0.0.0.0: every interface)")
                          ->capture_default_str();
                      app.add_option("--advertise-host", a->advertise_host,
                                     "address its peers reach it at (default: --bind-host, or the host name for 0.0.0.0)");
                      app.add_option("--hostname", a->hostname, "host name for sites[].hosts (default: gethostname)");
                      app.add_option("--rank", a->rank, "this worker's rank (default: OMPI_COMM_WORLD_RANK or PMI_RANK)")
                          ->check(WholeNumberIn(0, 1 << 30));
                      app.add_option("--size", a->size, "the number of workers (default: OMPI_COMM_WORLD_SIZE or PMI_SIZE)")
                          ->check(WholeNumberIn(1, 1 << 30));
                      app.add_option("--threads", a->threads, "compute threads")->check(WholeNumberIn(1, 1024))->capture_default_str();
                      app.add_option("--corpus", a->corpus, "training text (default: the bundled corpus)");
                      return [a] { return RunWorkerCmd(*a); };
                    });

}  // namespace gt::cli
