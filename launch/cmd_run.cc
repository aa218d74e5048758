// `greentrain run [CONFIG] [options]`: a live run on one box: the coordinator in this process and N
// worker processes `greentrain worker --rank R --size N ...` (N = sum of sites[].ranks; one compute
// thread each), started here.
//
// Why not mpirun: the workers use MPI for nothing but their rank (Gloo rendezvous through the
// coordinator's store), while mpirun ends every rank when one dies, which is exactly the failure
// the coordinator is built to survive (heartbeats, recovery without the rank). Started here, a
// worker that dies is only one process gone; the coordinator notices it within the heartbeat
// timeout and carries on. runtime.collective "mpi" still needs mpirun (--launcher mpirun is then
// chosen; a rank's death then ends the job). Each worker gets its own secret key in its environment
// (comms/keyring.h): no key is written to disk.
//
// Process hygiene: the workers form one process group and get SIGTERM if this process dies
// (PR_SET_PDEATHSIG); on error, timeout or Ctrl-C the group is sent SIGTERM, then SIGKILL after 5 s.
// The report, ledger and checkpoints stay in the run directory (default:
// runtime.checkpoint_dir/<run name>, or ./greentrain-runs/<run name>).
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
#include <mutex>
#include <thread>

#include "common/log.h"
#include "comms/wan_emulation.h"
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
  app.add_option("--pace", a->pace,
                 "plan: the job advances at the plan's modelled speed (the trace clock waits for a slow box); box: "
                 "as fast as the box trains (default: runtime.pace; demo: plan)")
      ->check(CLI::IsMember({"plan", "box"}));
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
  app.add_option("--bind-host", a->bind_host, "address the coordinator listens on (0.0.0.0: every interface)")
      ->capture_default_str();
  app.add_option("--advertise-host", a->advertise_host,
                 "address the workers reach the coordinator at (default: --bind-host, or this machine's host name "
                 "when that is 0.0.0.0)");
  app.add_option("--heartbeat-timeout", a->heartbeat_timeout_s,
                 "seconds without any message (workers send a heartbeat each second) before a worker is treated as failed")
      ->check(CLI::Range(2.0, 3600.0))
      ->capture_default_str();
  app.add_option("--port", a->port,
                 "control port (the rendezvous store uses the next one; 0: any free port; default: "
                 "runtime.base_port for `coordinator`, any for run and demo)")
      ->check(WholeNumberIn(0, 65534));
  app.add_option("--keys", a->keys_dir,
                 "keys directory from `greentrain keys generate` (default: fresh keys for this run)");
  app.add_option("--metrics-port", a->metrics_port,
                 "serve Prometheus metrics at http://BIND_HOST:PORT/metrics (0: any free port; default: off)")
      ->check(WholeNumberIn(0, 65535));
}

Result<LiveOptions> LiveOptionsFromArgs(const LiveArgs& a, const Config& config) {
  LiveOptions o;
  o.config = config;
  if (!a.pace.empty()) o.config.runtime.pace = a.pace;
  const std::string name = a.run_name.empty() ? config.name : a.run_name;
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return InvalidArgument("--run-name must be a plain name, got '" + name + "'");
  namespace fs = std::filesystem;
  const std::string runs = config.runtime.checkpoint_dir.empty() ? "greentrain-runs" : config.runtime.checkpoint_dir;
  o.run_dir = a.run_dir.empty() ? (fs::path(runs) / name).string() : a.run_dir;
  o.run_dir = fs::absolute(o.run_dir).lexically_normal().string();
  o.keep_checkpoints = config.runtime.keep_checkpoints;
  o.bind_host = a.bind_host;
  o.advertise_host = a.advertise_host;
  o.resume = a.resume;
  o.policy = a.policy;
  o.sites = a.sites;
  o.steps = a.steps;
  o.checkpoint_every = a.checkpoint_every;
  o.seed = a.seed;
  o.timeout_seconds = a.timeout_s;
  o.ack_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::llround(1000 * a.ack_timeout_s)));
  o.heartbeat_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::llround(1000 * a.heartbeat_timeout_s)));
  o.keys_dir = a.keys_dir;
  o.control_port = a.port > 0 ? a.port : 0;
  o.workers = a.workers > 0 ? a.workers : live::TotalRanks(config);
  o.metrics_port = a.metrics_port;
  if (o.workers < 1) return InvalidArgument("no workers: sites[].ranks sum to 0 and --workers is not given");
  return o;
}

namespace {

// The worker processes (or the one mpirun): children in one process group of their own; Stop()
// terminates the whole group. Thread-safe queries; a waiter thread reaps the children and logs an
// early exit.
class WorkerGroup {
 public:
  Status Start(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& name) {
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t group = pgid_;
    const pid_t pid = fork();
    if (pid < 0) return IoError("fork failed");
    if (pid == 0) {
      setpgid(0, group > 0 ? group : 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      execvpe(cargv[0], cargv.data(), cenv.data());
      std::perror(("greentrain run: cannot exec " + argv[0]).c_str());
      _exit(127);
    }
    setpgid(pid, group > 0 ? group : pid);
    if (pgid_ <= 0) pgid_ = pid;
    std::lock_guard<std::mutex> lock(mu_);
    children_.push_back({pid, name, false, 0});
    if (!waiter_.joinable()) waiter_ = std::thread([this] { Reap(); });
    return Status::Ok();
  }
  bool all_exited() const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : children_)
      if (!c.exited) return false;
    return !children_.empty();
  }
  // The first non-zero exit code (0 when every child that exited did so cleanly).
  int exit_code() const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : children_)
      if (c.exited && c.code != 0) return c.code;
    return 0;
  }
  // Waits up to `grace` for every child to exit, then SIGTERM, then SIGKILL to the process group.
  void Stop(std::chrono::seconds grace) {
    if (pgid_ <= 0) return;
    auto wait_for = [this](std::chrono::milliseconds d) {
      auto end = std::chrono::steady_clock::now() + d;
      while (!all_exited() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return all_exited();
    };
    if (!wait_for(grace)) {
      kill(-pgid_, SIGTERM);
      if (!wait_for(std::chrono::milliseconds(5000))) kill(-pgid_, SIGKILL);
    }
    // Strays of the group (grandchildren of mpirun) get the same treatment.
    if (kill(-pgid_, 0) == 0) {
      kill(-pgid_, SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      kill(-pgid_, SIGKILL);
    }
    wait_for(std::chrono::milliseconds(2000));
    stop_ = true;
    if (waiter_.joinable()) waiter_.join();
    pgid_ = -1;
  }
  ~WorkerGroup() { Stop(std::chrono::seconds(0)); }

 private:
  struct Child {
    pid_t pid;
    std::string name;
    bool exited;
    int code;
  };
  void Reap() {
    while (!stop_) {
      std::vector<std::pair<pid_t, std::string>> live;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& c : children_)
          if (!c.exited) live.emplace_back(c.pid, c.name);
      }
      for (const auto& [pid, name] : live) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) != pid) continue;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code != 0 && !stop_)
          GT_WARN("run", name << " (pid " << pid << ") "
                              << (WIFEXITED(status) ? "exited with code " + std::to_string(code)
                                                    : std::string("was killed by signal ") + std::to_string(WTERMSIG(status))));
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& c : children_)
          if (c.pid == pid) c.exited = true, c.code = code;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  pid_t pgid_ = -1;
  mutable std::mutex mu_;
  std::vector<Child> children_;
  std::atomic<bool> stop_{false};
  std::thread waiter_;
};

// The config's links as WAN emulation links (site indices).
std::vector<WanLink> WanLinks(const Config& cfg) {
  std::vector<WanLink> out;
  for (const auto& l : cfg.links) {
    WanLink w;
    w.a = cfg.SiteIndex(l.from);
    w.b = cfg.SiteIndex(l.to);
    w.gbps = l.bandwidth_gbps;
    w.latency_ms = l.latency_ms;
    w.loss_pct = l.loss_pct;
    if (w.a >= 0 && w.b >= 0) out.push_back(w);
  }
  return out;
}

bool HaveMpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

}  // namespace

// `run` and `demo`.
int RunLiveCommand(const std::string& cmd, const LiveArgs& args) {
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail(cmd, cfg.status());
  auto opts = LiveOptionsFromArgs(args, *cfg);
  if (!opts.ok()) return Fail(cmd, opts.status());
  const bool use_mpirun = args.launcher == "mpirun" || cfg->runtime.collective == "mpi";
  if (use_mpirun && !HaveMpirun())
    return Fail(cmd, Unavailable("mpirun not found in PATH; install Open MPI (launch/setup.sh)"));
  const int np = opts->workers;

  // --emulate-wan: the namespaces are made and entered before any thread starts (setns moves only
  // the calling thread); the coordinator then listens on its namespace's address.
  std::unique_ptr<WanEmulation> wan;
  if (args.emulate_wan) {
    if (use_mpirun) return Fail(cmd, InvalidArgument("--emulate-wan starts the workers itself: not with --launcher mpirun"));
    auto w = WanEmulation::Create(static_cast<int>(cfg->sites.size()), WanLinks(*cfg));
    if (!w.ok()) {
      std::cerr << "greentrain " << cmd << ": --emulate-wan: " << w.status().message()
                << "; running without WAN emulation\n";
    } else {
      wan = std::move(*w);
      Status entered = wan->EnterCoordinatorNamespace();
      if (!entered.ok()) return Fail(cmd, entered);
      for (const auto& n : wan->notes()) GT_INFO("run", "--emulate-wan: " << n);
      if (!wan->delay_emulated())
        std::cerr << "greentrain " << cmd << ": --emulate-wan: this kernel has no netem qdisc; link latency and loss "
                  << "are not emulated, only rates\n";
      opts->bind_host = "0.0.0.0";
      opts->advertise_host = wan->CoordinatorAddress();
    }
  }

  InstallInterruptHandler();
  WorkerGroup launcher;
  opts->cancelled = [&launcher] { return Interrupted() || launcher.all_exited(); };
  opts->status_requested = [] { return StatusRequested(); };
  // Workers started here get their keys in their environment; under mpirun (one environment for
  // every rank) they read them from <run_dir>/keys.
  opts->write_run_keys = use_mpirun;
  auto coord = LiveCoordinator::Create(*opts);
  if (!coord.ok()) return Fail(cmd, coord.status());
  const std::string config_path = cfg->path.empty() ? DefaultConfigPath() : cfg->path;
  std::vector<std::string> worker_args = {SelfExe(), "worker", config_path, "--coordinator",
                                          (*coord)->control_endpoint(), "--run-dir", opts->run_dir, "--threads", "1"};
  if (!wan) {
    worker_args.insert(worker_args.end(), {"--bind-host", opts->bind_host});
    if (!opts->advertise_host.empty()) worker_args.insert(worker_args.end(), {"--advertise-host", opts->advertise_host});
  }
  // The workers' environment: ours, one OpenMP thread, and warnings only unless GREENTRAIN_LOG is set.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string v = *e;
    if (v.rfind("OMP_NUM_THREADS=", 0) == 0) continue;
    env.push_back(v);
  }
  env.push_back("OMP_NUM_THREADS=1");
  if (!std::getenv("GREENTRAIN_LOG")) env.push_back("GREENTRAIN_LOG=warn");
  Status s;
  if (use_mpirun) {
    std::vector<std::string> argv = {"mpirun", "-np", std::to_string(np)};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
    argv.push_back("--oversubscribe");
    for (const char* a : {"--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca",
                          "oob_tcp_if_include", "lo", "-x", "OMP_NUM_THREADS", "-x", "GREENTRAIN_LOG"})
      argv.push_back(a);
    argv.insert(argv.end(), worker_args.begin(), worker_args.end());
    GT_INFO("run", "starting " << np << " workers: mpirun -np " << np << " ... worker (run dir " << opts->run_dir
                               << "); under mpirun one rank's death ends every rank");
    s = launcher.Start(argv, env, "mpirun");
  } else {
    GT_INFO("run", "starting " << np << " worker processes (run dir " << opts->run_dir << ")");
    for (int r = 0; r < np && s.ok(); ++r) {
      std::vector<std::string> argv = worker_args;
      argv.insert(argv.end(), {"--rank", std::to_string(r), "--size", std::to_string(np)});
      if (wan) {
        // In its site's namespace, listening on the site's address.
        auto site = live::SiteForRank(*cfg, r, "");
        if (!site.ok()) return Fail(cmd, site.status());
        argv.insert(argv.begin(), {"ip", "netns", "exec", wan->SiteNamespace(*site)});
        argv.insert(argv.end(), {"--bind-host", "0.0.0.0", "--advertise-host", wan->SiteAddress(*site)});
      }
      std::vector<std::string> wenv = env;
      for (auto& e : (*coord)->WorkerEnvironment(r)) wenv.push_back(std::move(e));
      s = launcher.Start(argv, wenv, "worker rank " + std::to_string(r));
    }
  }
  if (!s.ok()) return Fail(cmd, s);

  auto report = (*coord)->Run();
  if (!report.ok()) {
    Status err = report.status();
    if (launcher.all_exited() && !Interrupted())
      err = err.WithContext("every worker process exited (first non-zero code " +
                            std::to_string(launcher.exit_code()) + ")");
    launcher.Stop(std::chrono::seconds(3));
    coord->reset();
    return Fail(cmd, err);
  }
  launcher.Stop(std::chrono::seconds(20));
  coord->reset();  // removes the keys directory
  std::cout << FormatLiveReport(*report) << "report: " << opts->run_dir << "/report.json\n";
  if (launcher.exit_code() != 0)
    std::cerr << "greentrain " << cmd << ": warning: a worker process exited with code " << launcher.exit_code()
              << " (see the log above)\n";
  if (!report->value("deadline_met", true)) {
    std::cerr << "greentrain " << cmd << ": the job missed its deadline " << report->value("deadline", "")
              << " (last step at " << report->value("finished_at", "") << " trace time)\n";
    // The demo shows the system on whatever box it runs on; only `run` reports it in its exit code.
    if (cmd == "run") return kExitDeadlineMissed;
  }
  return 0;
}

GT_REGISTER_COMMAND(run_cmd, "run", "live training on one box following the policy's plan: coordinator + worker processes",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<LiveArgs>();
                      AddLiveOptions(app, a.get());
                      app.add_option("--launcher", a->launcher,
                                     "spawn: start the worker processes here (one rank's death is survived); "
                                     "mpirun: under mpirun (needed by runtime.collective mpi; one death ends all)")
                          ->check(CLI::IsMember({"spawn", "mpirun"}))
                          ->capture_default_str();
                      app.add_flag("--emulate-wan", a->emulate_wan,
                                   "each site's workers in their own network namespace, links shaped to the config's "
                                   "rate, latency and loss (needs root; without it the run says so and goes on unemulated)");
                      return [a] { return RunLiveCommand("run", *a); };
                    });

}  // namespace gt::cli
