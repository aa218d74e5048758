// `greentrain run [CONFIG] [options]`: a live run on one box: the coordinator in this process and
// `mpirun -np N greentrain worker ...` as a child (N = sum of sites[].ranks; one compute thread each).
//
// Process hygiene: mpirun runs in its own process group and gets SIGTERM if this process dies
// (PR_SET_PDEATHSIG); on error, timeout or Ctrl-C the group is sent SIGTERM, then SIGKILL after 5 s.
// The run's keys directory is removed at the end; the report, ledger and checkpoints stay in the run
// directory (default: runtime.checkpoint_dir/<run name>, or ./greentrain-runs/<run name>).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/log.h"
#include "coordinator/live.h"
#include "coordinator/policy.h"
#include "coordinator/protocol.h"
#include "launch/command.h"
#include "launch/live_args.h"

extern char** environ;

namespace gt::cli {

namespace {
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_status = 0;
void OnSignal(int) { g_interrupted = 1; }
void OnStatusSignal(int) { g_status = 1; }
}  // namespace

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  struct sigaction su {};
  su.sa_handler = OnStatusSignal;
  sigemptyset(&su.sa_mask);
  sigaction(SIGUSR1, &su, nullptr);
}

bool StatusRequested() {
  if (!g_status) return false;
  g_status = 0;
  return true;
}

bool Interrupted() { return g_interrupted != 0; }

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("greentrain") : p.string();
}

void AddLiveOptions(CLI::App& app, LiveArgs* a) {
  AddConfigArg(app, &a->config);
  app.add_option("--steps", a->steps, "train until this step (default: runtime.live_steps)")
      ->check(WholeNumberIn(1, 1000000000000));
  app.add_flag("--resume", a->resume, "continue from the newest valid checkpoint in the run directory");
  app.add_option("--sites", a->sites, "plan: the pipeline follows the policy's plan; all: a fixed stage on every site")
      ->check(CLI::IsMember({"plan", "all"}))
      ->capture_default_str();
  app.add_option("--policy", a->policy, "policy (default: the config's policy.name)")->check(CLI::IsMember(PolicyNames()));
  app.add_option("--run-dir", a->run_dir, "run directory (default: runtime.checkpoint_dir/RUN_NAME)");
  app.add_option("--run-name", a->run_name, "run name under runtime.checkpoint_dir (default: the config's name)");
  app.add_option("--seed", a->seed, "model initialisation and data order seed")->capture_default_str();
  app.add_option("--checkpoint-every", a->checkpoint_every, "also checkpoint every N steps (0: only the energy, plan and periodic triggers)")
      ->check(WholeNumberIn(0, 1000000000000));
  app.add_option("--ack-timeout", a->ack_timeout_s, "seconds a worker has to acknowledge a command before it is treated as failed")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--timeout", a->timeout_s, "wall seconds the whole run may take (0: no limit; a run without progress for 180 s fails anyway)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--workers", a->workers, "workers to wait for (default: the sum of sites[].ranks)")
      ->check(WholeNumberIn(1, 100000));
  app.add_option("--bind-host", a->bind_host, "address the coordinator listens on")->capture_default_str();
  app.add_option("--metrics-port", a->metrics_port,
                 "serve Prometheus metrics at http://BIND_HOST:PORT/metrics (0: any free port; default: off)")
      ->check(WholeNumberIn(0, 65535));
}

Result<LiveOptions> LiveOptionsFromArgs(const LiveArgs& a, const Config& config) {
  LiveOptions o;
  o.config = config;
  const std::string name = a.run_name.empty() ? config.name : a.run_name;
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return InvalidArgument("--run-name must be a plain name, got '" + name + "'");
  namespace fs = std::filesystem;
  const std::string runs = config.runtime.checkpoint_dir.empty() ? "greentrain-runs" : config.runtime.checkpoint_dir;
  o.run_dir = a.run_dir.empty() ? (fs::path(runs) / name).string() : a.run_dir;
  o.run_dir = fs::absolute(o.run_dir).lexically_normal().string();
  o.keep_checkpoints = config.runtime.keep_checkpoints;
  o.bind_host = a.bind_host;
  o.resume = a.resume;
  o.policy = a.policy;
  o.sites = a.sites;
  o.steps = a.steps;
  o.checkpoint_every = a.checkpoint_every;
  o.seed = a.seed;
  o.timeout_seconds = a.timeout_s;
  o.ack_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::llround(1000 * a.ack_timeout_s)));
  o.workers = a.workers > 0 ? a.workers : live::TotalRanks(config);
  o.metrics_port = a.metrics_port;
  if (o.workers < 1) return InvalidArgument("no workers: sites[].ranks sum to 0 and --workers is not given");
  return o;
}

namespace {

// The mpirun child: started in its own process group; Stop() terminates the whole group.
class WorkerLauncher {
 public:
  Status Start(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return IoError("fork failed");
    if (pid_ == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      execvpe(cargv[0], cargv.data(), cenv.data());
      std::perror("greentrain run: cannot exec mpirun");
      _exit(127);
    }
    setpgid(pid_, pid_);
    waiter_ = std::thread([this] {
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
      exited_ = true;
    });
    return Status::Ok();
  }
  bool exited() const { return exited_; }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_); }
  // Waits up to `grace` for a normal exit, then SIGTERM, then SIGKILL to the process group.
  void Stop(std::chrono::seconds grace) {
    if (pid_ <= 0) return;
    auto wait_for = [this](std::chrono::milliseconds d) {
      auto end = std::chrono::steady_clock::now() + d;
      while (!exited_ && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return exited_.load();
    };
    if (!wait_for(grace)) {
      kill(-pid_, SIGTERM);
      if (!wait_for(std::chrono::milliseconds(5000))) kill(-pid_, SIGKILL);
    }
    // Stray workers of the group (mpirun gone first) get the same treatment.
    if (kill(-pid_, 0) == 0) {
      kill(-pid_, SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      kill(-pid_, SIGKILL);
    }
    if (waiter_.joinable()) waiter_.join();
    pid_ = -1;
  }
  ~WorkerLauncher() { Stop(std::chrono::seconds(0)); }

 private:
  pid_t pid_ = -1;
  std::atomic<bool> exited_{false};
  int status_ = 0;
  std::thread waiter_;
};

bool HaveMpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

}  // namespace

// `run` and `demo`.
int RunLiveCommand(const std::string& cmd, const LiveArgs& args) {
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail(cmd, cfg.status());
  auto opts = LiveOptionsFromArgs(args, *cfg);
  if (!opts.ok()) return Fail(cmd, opts.status());
  if (!HaveMpirun()) return Fail(cmd, Unavailable("mpirun not found in PATH; install Open MPI (launch/setup.sh)"));
  const int np = opts->workers;

  InstallInterruptHandler();
  WorkerLauncher launcher;
  opts->cancelled = [&launcher] { return Interrupted() || launcher.exited(); };
  opts->status_requested = [] { return StatusRequested(); };
  auto coord = LiveCoordinator::Create(*opts);
  if (!coord.ok()) return Fail(cmd, coord.status());
  const std::string config_path = cfg->path.empty() ? DefaultConfigPath() : cfg->path;

  std::vector<std::string> argv = {"mpirun", "-np", std::to_string(np)};
  if (geteuid() == 0) {
    argv.push_back("--allow-run-as-root");
  }
  argv.push_back("--oversubscribe");
  for (const char* a : {"--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca",
                        "oob_tcp_if_include", "lo", "-x", "OMP_NUM_THREADS", "-x", "GREENTRAIN_LOG"})
    argv.push_back(a);
  argv.insert(argv.end(), {SelfExe(), "worker", config_path, "--coordinator", (*coord)->control_endpoint(),
                           "--run-dir", opts->run_dir, "--bind-host", opts->bind_host, "--threads", "1"});
  // The workers' environment: ours, one OpenMP thread, and warnings only unless GREENTRAIN_LOG is set.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string v = *e;
    if (v.rfind("OMP_NUM_THREADS=", 0) == 0) continue;
    env.push_back(v);
  }
  env.push_back("OMP_NUM_THREADS=1");
  if (!std::getenv("GREENTRAIN_LOG")) env.push_back("GREENTRAIN_LOG=warn");
  GT_INFO("run", "starting " << np << " workers: mpirun -np " << np << " ... worker (run dir " << opts->run_dir << ")");
  Status s = launcher.Start(argv, env);
  if (!s.ok()) return Fail(cmd, s);

  auto report = (*coord)->Run();
  if (!report.ok()) {
    Status err = report.status();
    if (launcher.exited() && !Interrupted())
      err = err.WithContext("the workers (mpirun) exited with code " + std::to_string(launcher.exit_code()));
    launcher.Stop(std::chrono::seconds(3));
    coord->reset();
    return Fail(cmd, err);
  }
  launcher.Stop(std::chrono::seconds(20));
  coord->reset();  // removes the keys directory
  std::cout << FormatLiveReport(*report) << "report: " << opts->run_dir << "/report.json\n";
  if (launcher.exit_code() != 0)
    std::cerr << "greentrain " << cmd << ": warning: mpirun exited with code " << launcher.exit_code() << "\n";
  if (!report->value("deadline_met", true)) {
    std::cerr << "greentrain " << cmd << ": the job missed its deadline " << report->value("deadline", "")
              << " (last step at " << report->value("finished_at", "") << " trace time)\n";
    // The demo shows the system on whatever box it runs on; only `run` reports it in its exit code.
    if (cmd == "run") return kExitDeadlineMissed;
  }
  return 0;
}

GT_REGISTER_COMMAND(run_cmd, "run", "live training on one box following the policy's plan: coordinator + mpirun workers",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<LiveArgs>();
                      AddLiveOptions(app, a.get());
                      return [a] { return RunLiveCommand("run", *a); };
                    });

}  // namespace gt::cli
