// `greentrain worker [CONFIG] --coordinator EP --run-dir DIR [--bind-host H] [--rank R --size N]
//  [--threads T] [--corpus F]`: one worker process of a live run, normally started by mpirun (rank and
// size from OMPI_COMM_WORLD_* or PMI_*; coordinator endpoint and run directory also from
// GREENTRAIN_COORDINATOR / GREENTRAIN_RUN_DIR).
#include <cstdlib>

#include "coordinator/protocol.h"
#include "launch/command.h"
#ifdef GREENTRAIN_HAVE_WORKER
#include "worker/runtime.h"
#endif

namespace gt::cli {
namespace {

int RunWorkerCmd(const Args& args) {
#ifndef GREENTRAIN_HAVE_WORKER
  return Fail("worker", Unavailable("this greentrain was built without libtorch (GREENTRAIN_WITH_TORCH=OFF)"));
#else
  auto flags = Flags::Parse(args, {"--coordinator", "--run-dir", "--bind-host", "--rank", "--size", "--threads",
                                   "--corpus", "--hostname"});
  if (!flags.ok()) return Fail("worker", flags.status());
  worker::WorkerOptions o;
  o.config_path = flags->positional().empty() ? DefaultConfigPath() : flags->positional()[0];
  auto env = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
  o.coordinator_endpoint = flags->Get("--coordinator", env(live::kEnvCoordinator));
  o.run_dir = flags->Get("--run-dir", env(live::kEnvRunDir));
  if (o.coordinator_endpoint.empty())
    return Fail("worker", InvalidArgument("--coordinator (or GREENTRAIN_COORDINATOR) is required"));
  if (o.run_dir.empty()) return Fail("worker", InvalidArgument("--run-dir (or GREENTRAIN_RUN_DIR) is required"));
  o.bind_host = flags->Get("--bind-host", o.bind_host);
  o.hostname = flags->Get("--hostname", "");
  o.corpus = flags->Get("--corpus", "");
  try {
    if (flags->Has("--rank")) o.rank = std::stoi(flags->Get("--rank"));
    if (flags->Has("--size")) o.size = std::stoi(flags->Get("--size"));
    if (flags->Has("--threads")) o.threads = std::stoi(flags->Get("--threads"));
  } catch (const std::exception&) {
    return Fail("worker", InvalidArgument("--rank, --size and --threads take integers"));
  }
  if ((o.rank < 0) != (o.size < 0)) return Fail("worker", InvalidArgument("give both --rank and --size, or neither"));
  Status s = worker::RunWorker(o);
  if (!s.ok()) return Fail("worker", s);
  return 0;
#endif
}

}  // namespace

GT_REGISTER_COMMAND(worker_cmd, "worker",
                    "worker [CONFIG] --coordinator EP --run-dir DIR [--bind-host H] [--rank R --size N] [--threads T]",
                    "one live worker process (started by mpirun through 'greentrain run')", RunWorkerCmd);

}  // namespace gt::cli
