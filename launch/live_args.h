// The live-run options shared by `run`, `demo` and `coordinator` (launch/cmd_run.cc).
#pragma once

#include <cstdint>
#include <string>

#include "coordinator/live.h"
#include "launch/command.h"

namespace gt::cli {

struct LiveArgs {
  std::string config;
  int64_t steps = 0;  // 0 = runtime.live_steps
  bool resume = false;
  std::string sites = "plan", policy, run_dir, run_name, bind_host = "127.0.0.1";
  std::string pace;  // --pace: "" = runtime.pace
  uint64_t seed = 1;
  int64_t checkpoint_every = 0;
  double ack_timeout_s = 30, timeout_s = 0;  // 0: no limit
  double heartbeat_timeout_s = 10;
  std::string keys_dir;                      // --keys: a keys directory (comms/keyring.h)
  std::string advertise_host;                // --advertise-host
  std::string launcher = "spawn";            // run/demo: spawn (worker processes) or mpirun
  bool emulate_wan = false;                  // run: sites in network namespaces, links shaped (comms/wan_emulation.h)
  int workers = 0;  // 0 = the sum of sites[].ranks
  int metrics_port = -1;  // -1 = off
  int port = -1;          // control port; -1: runtime.base_port for `coordinator`, any for run/demo
};

void AddLiveOptions(CLI::App& app, LiveArgs* args);
Result<LiveOptions> LiveOptionsFromArgs(const LiveArgs& args, const Config& config);
// `run` and `demo`: the coordinator here and the worker processes started here (or under mpirun).
int RunLiveCommand(const std::string& cmd, const LiveArgs& args);
// SIGINT/SIGTERM/SIGHUP end the run; SIGUSR1 asks for the status line (StatusRequested, once).
void InstallInterruptHandler();
bool Interrupted();
bool StatusRequested();
std::string SelfExe();

}  // namespace gt::cli
