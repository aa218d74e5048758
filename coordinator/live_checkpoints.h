// The coordinator's side of live checkpoints (protocol in coordinator/protocol.h, format in
// checkpoint/store.h): it picks the step boundary, tells every stage rank, collects the files each
// rank wrote, adds its own state (coordinator.json) captured at that boundary, and commits the step
// directory with its manifest, then applies retention (keep the newest K).
//
// A request is committed when (a) every writer rank reported checkpoint_written and (b) the
// coordinator's state at the boundary was captured (SetState, once the pipeline completed the step
// before the boundary). A failed or missed request is abandoned (its directory removed) and reported
// back so that the caller can ask again at a later boundary.
//
// Site storage (runtime.checkpoint_storage "site"): the workers write into their site's own storage
// (the command's dir is empty); the manifest lists each written file with its site, and the commit
// record carries "site_files" ({site: [{name, bytes, sha256}]}) for the caller to tell each site.
//
// Threads: owned and used by the live coordinator's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/store.h"
#include "common/status.h"

namespace gt {

constexpr const char* kCoordinatorStateFile = "coordinator.json";

class LiveCheckpoints {
 public:
  LiveCheckpoints(std::string root, int keep, bool site_storage = false)
      : root_(std::move(root)), keep_(keep), site_storage_(site_storage) {}

  struct Request {
    int64_t step = 0;
    std::string kind, reason, trace_time;
    std::set<int> waiting;                 // writer ranks that have not reported yet
    std::vector<ckpt::FileEntry> files;
    std::optional<nlohmann::json> state;   // coordinator state at the boundary
    double snapshot_s = 0, write_s = 0;    // the slowest rank's
    std::chrono::steady_clock::time_point requested;
  };

  // Opens a request for the boundary before `step`, written by `writers`; returns the command to
  // send to every writer. Error if one for this step is already open.
  Result<nlohmann::json> Open(int64_t step, const std::string& kind, const std::string& reason,
                              const std::string& trace_time, const std::set<int>& writers);
  // True while a request other than those at `except_steps` is open.
  bool BusyExcept(const std::set<int64_t>& except_steps) const;
  bool IsOpen(int64_t step) const { return open_.count(step) > 0; }
  // Steps whose state is still to be captured (the caller captures when the step before completes).
  std::vector<int64_t> AwaitingState() const;
  // Records the coordinator's state for the request at `step`; may commit it.
  Result<std::optional<nlohmann::json>> SetState(int64_t step, nlohmann::json state);
  // A rank's checkpoint_written (the rank is at `site`); may commit. Returns the committed
  // checkpoint's record.
  Result<std::optional<nlohmann::json>> OnWritten(int rank, const nlohmann::json& msg, const std::string& site = "");
  // Withdraws the request at `step` if open (its directory is removed); for a request whose writers
  // changed (a new pipeline re-opens the final checkpoint).
  void Cancel(int64_t step);
  void CancelAll();
  // A rank's checkpoint_failed: abandons the request. Returns the abandoned request (to re-ask).
  std::optional<Request> OnFailed(int rank, const nlohmann::json& msg);

  // Records of every committed checkpoint, oldest first (also those restored from a resumed run):
  // {step, dir, kind, reason, trace_time, bytes, files, snapshot_s, write_s, commit_s, wall_s}.
  const nlohmann::json& records() const { return records_; }
  void RestoreRecords(const nlohmann::json& records) { records_ = records; }
  double last_wall_seconds() const { return last_wall_s_; }
  const std::string& root() const { return root_; }

 private:
  Result<std::optional<nlohmann::json>> MaybeCommit(int64_t step);
  std::string root_;
  int keep_;
  bool site_storage_;
  std::map<int64_t, Request> open_;
  nlohmann::json records_ = nlohmann::json::array();
  double last_wall_s_ = 0;
};

// Where a stage rank restoring from a site-storage checkpoint gets its layers: each layer from its
// own site when that site keeps it, else from the first site (in `site_order`) keeping it that has a
// live rank; consecutive layers from one site form one range. A range of its own site is `local`
// (read by the receiver itself); each remote range gets a distinct live rank of its site.
struct FetchRange {
  int rank = -1;
  int first = 0, last = 0;
  bool local = false;
};
// The sites keeping each layer file ("layer-NNNN.gtck") a manifest lists with a site.
std::map<int, std::set<std::string>> LayerHolders(const ckpt::Manifest& manifest);
// Errors name the layers that no live rank can provide and the sites keeping them.
Result<std::vector<FetchRange>> PlanCheckpointFetch(const std::map<int, std::set<std::string>>& holders,
                                                    const std::string& receiver_site, int receiver_rank, int first,
                                                    int last, const std::vector<std::string>& site_order,
                                                    const std::map<std::string, std::vector<int>>& live_ranks);

}  // namespace gt
