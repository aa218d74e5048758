// Scratch directories for tests that a killed test does not leave behind for good.
//
// A test killed at its time limit (ctest sends SIGKILL) cannot remove its own directory. Each
// directory is named /tmp/<prefix>-<pid>-XXXXXX after the process that made it; making one first
// removes the directories of that prefix whose process no longer exists (never a running
// process's, so parallel tests are safe; a reused pid only delays the removal).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

namespace gt {
namespace testing {

// The pid in a name "<prefix>-<pid>-XXXXXX", or -1 when it is not one of those.
inline pid_t ScratchDirOwner(const std::string& name, const std::string& prefix) {
  const std::string head = prefix + "-";
  if (name.compare(0, head.size(), head) != 0) return -1;
  const size_t dash = name.find('-', head.size());
  if (dash == std::string::npos || dash == head.size()) return -1;
  const std::string digits = name.substr(head.size(), dash - head.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return -1;
  return static_cast<pid_t>(std::stol(digits));
}

// Creates /tmp/<prefix>-<pid>-XXXXXX and returns its path ("" on failure), after removing the
// leftovers of dead processes.
inline std::string MakeScratchDir(const std::string& prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator("/tmp", ec)) {
    const pid_t owner = ScratchDirOwner(e.path().filename().string(), prefix);
    if (owner > 0 && owner != getpid() && ::kill(owner, 0) != 0 && errno == ESRCH) stale.push_back(e.path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
  std::string tmpl = "/tmp/" + prefix + "-" + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

}  // namespace testing
}  // namespace gt
