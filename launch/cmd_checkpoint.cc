// `greentrain checkpoint list RUN_DIR` and `greentrain checkpoint verify DIR`: the checkpoints of a
// live run (checkpoint/store.h) as an operator sees them.
//
// list: one line per step directory under RUN_DIR/checkpoints (or DIR itself when it holds step-*
//       directories): step, state (ok, or what is wrong), files, bytes, and the reason and trace time
//       from the coordinator's state. Exit 0.
// verify: DIR is one step directory, or a run directory / checkpoints directory (then every
//       checkpoint in it). Exit 0 only when every file matches its manifest; otherwise each problem
//       is printed with the file at fault, and the exit code is 1.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "checkpoint/store.h"
#include "coordinator/live_checkpoints.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

namespace fs = std::filesystem;

// RUN_DIR -> RUN_DIR/checkpoints when that exists; a checkpoints directory stays as it is.
std::string CheckpointRoot(const std::string& dir) {
  const std::string nested = ckpt::CheckpointsDir(dir);
  return fs::is_directory(nested) ? nested : dir;
}

nlohmann::json CoordinatorState(const std::string& step_dir) {
  std::ifstream in((fs::path(step_dir) / kCoordinatorStateFile).string());
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

int List(const std::string& dir) {
  const std::string root = CheckpointRoot(dir);
  if (!fs::is_directory(root)) return Fail("checkpoint list", NotFound("'" + dir + "' is not a directory"));
  const auto all = ckpt::ListCheckpoints(root, /*hash=*/false);
  if (all.empty()) {
    std::cout << "no checkpoints in " << root << "\n";
    return 0;
  }
  std::printf("%-14s %-8s %6s %14s  %-20s  %s\n", "checkpoint", "state", "files", "bytes", "trace time", "reason");
  for (const auto& e : all) {
    const auto state = CoordinatorState(e.dir);
    const auto why = state.value("checkpoint", nlohmann::json::object());
    std::printf("%-14s %-8s %6zu %14llu  %-20s  %s\n", e.name.c_str(),
                e.status.ok() ? "ok" : (e.committed ? "DAMAGED" : "partial"), e.files,
                static_cast<unsigned long long>(e.bytes), why.value("trace_time", std::string("-")).c_str(),
                e.status.ok() ? why.value("reason", std::string("-")).c_str() : e.status.message().c_str());
  }
  std::cout << "(sizes checked; `greentrain checkpoint verify " << dir << "` also checks every SHA-256)\n";
  return 0;
}

int Verify(const std::string& dir) {
  if (!fs::is_directory(dir)) return Fail("checkpoint verify", NotFound("'" + dir + "' is not a directory"));
  std::vector<std::pair<std::string, Status>> results;
  if (ckpt::ParseStepDirName(fs::path(dir).lexically_normal().filename().string()).ok() ||
      fs::exists(fs::path(dir) / ckpt::kManifestName)) {
    results.emplace_back(dir, ckpt::VerifyCheckpoint(dir, /*hash=*/true));
  } else {
    for (const auto& e : ckpt::ListCheckpoints(CheckpointRoot(dir), /*hash=*/true)) results.emplace_back(e.dir, e.status);
    if (results.empty()) return Fail("checkpoint verify", NotFound("no checkpoints in " + dir));
  }
  int bad = 0;
  for (const auto& [d, s] : results) {
    if (s.ok()) {
      std::cout << d << ": OK (every file matches its manifest)\n";
    } else {
      ++bad;
      std::cout << d << ": FAILED: " << s.message() << "\n";
    }
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

GT_REGISTER_COMMAND(checkpoint_cmd, "checkpoint",
                    "list a run's checkpoints, or verify every file of one (or all) against its manifest",
                    [](CLI::App& app) -> std::function<int()> {
                      auto dir = std::make_shared<std::string>();
                      app.require_subcommand(1);
                      auto* list = app.add_subcommand("list", "list the checkpoints of a run directory");
                      list->add_option("RUN_DIR", *dir, "the run directory")->required();
                      auto* verify = app.add_subcommand(
                          "verify", "check every file of a checkpoint (or of every one in a run) against its manifest");
                      verify->add_option("DIR", *dir, "a step directory, or a run directory (all of its checkpoints)")
                          ->required();
                      return [dir, list] { return list->parsed() ? List(*dir) : Verify(*dir); };
                    });

}  // namespace gt::cli
