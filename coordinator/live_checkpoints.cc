#include "coordinator/live_checkpoints.h"

#include <filesystem>

#include "common/log.h"
#include "common/strict_json.h"
#include "coordinator/protocol.h"

namespace gt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<json> LiveCheckpoints::Open(int64_t step, const std::string& kind, const std::string& reason,
                                   const std::string& trace_time, const std::set<int>& writers) {
  if (open_.count(step)) return InvalidArgument("a checkpoint at step " + std::to_string(step) + " is already open");
  const std::string dir = (fs::path(root_) / ckpt::StepDirName(step)).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create checkpoint directory '" + dir + "': " + ec.message());
  Request r;
  r.step = step;
  r.kind = kind;
  r.reason = reason;
  r.trace_time = trace_time;
  r.waiting = writers;
  r.requested = std::chrono::steady_clock::now();
  open_[step] = std::move(r);
  return json{{"type", live::kCheckpoint}, {"step", step}, {"dir", site_storage_ ? std::string() : dir}, {"reason", reason}};
}

bool LiveCheckpoints::BusyExcept(const std::set<int64_t>& except_steps) const {
  for (const auto& [step, r] : open_)
    if (!except_steps.count(step)) return true;
  return false;
}

std::vector<int64_t> LiveCheckpoints::AwaitingState() const {
  std::vector<int64_t> out;
  for (const auto& [step, r] : open_)
    if (!r.state) out.push_back(step);
  return out;
}

Result<std::optional<json>> LiveCheckpoints::SetState(int64_t step, json state) {
  auto it = open_.find(step);
  if (it == open_.end()) return std::optional<json>();
  it->second.state = std::move(state);
  return MaybeCommit(step);
}

Result<std::optional<json>> LiveCheckpoints::OnWritten(int rank, const json& msg, const std::string& site) {
  int64_t step = 0;
  std::vector<ckpt::FileEntry> files;
  double snapshot_s = 0, write_s = 0;
  try {
    const std::optional<int64_t> s = WholeNumberAs<int64_t>(msg.at("step"));
    if (!s) return InvalidArgument("checkpoint_written from rank " + std::to_string(rank) + ": step " + msg.at("step").dump());
    step = *s;
    for (const auto& f : msg.at("files")) {
      const std::optional<uint64_t> bytes = WholeNumberAs<uint64_t>(f.at("bytes"));
      if (!bytes)
        return InvalidArgument("checkpoint_written from rank " + std::to_string(rank) + ": file size " +
                               f.at("bytes").dump());
      files.push_back({f.at("name").get<std::string>(), *bytes, f.at("sha256").get<std::string>(),
                       site_storage_ ? site : std::string()});
    }
    snapshot_s = msg.value("snapshot_s", 0.0);
    write_s = msg.value("write_s", 0.0);
  } catch (const json::exception& e) {
    return InvalidArgument("malformed checkpoint_written from rank " + std::to_string(rank) + ": " + e.what());
  }
  auto it = open_.find(step);
  if (it == open_.end() || !it->second.waiting.erase(rank)) return std::optional<json>();  // abandoned or stale
  Request& r = it->second;
  r.files.insert(r.files.end(), files.begin(), files.end());
  r.snapshot_s = std::max(r.snapshot_s, snapshot_s);
  r.write_s = std::max(r.write_s, write_s);
  return MaybeCommit(step);
}

std::optional<LiveCheckpoints::Request> LiveCheckpoints::OnFailed(int rank, const json& msg) {
  const int64_t step = msg.value("step", int64_t{-1});
  auto it = open_.find(step);
  if (it == open_.end()) return std::nullopt;
  GT_WARN("live", "checkpoint at step " << step << " abandoned: rank " << rank << ": "
                                        << msg.value("message", std::string()));
  Request r = std::move(it->second);
  Cancel(step);
  return r;
}

void LiveCheckpoints::Cancel(int64_t step) {
  if (!open_.erase(step)) return;
  std::error_code ec;
  fs::remove_all(fs::path(root_) / ckpt::StepDirName(step), ec);
}

void LiveCheckpoints::CancelAll() {
  std::vector<int64_t> steps;
  for (const auto& [step, r] : open_) steps.push_back(step);
  for (int64_t s : steps) Cancel(s);
}

Result<std::optional<json>> LiveCheckpoints::MaybeCommit(int64_t step) {
  auto it = open_.find(step);
  Request& r = it->second;
  if (!r.waiting.empty() || !r.state) return std::optional<json>();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = (fs::path(root_) / ckpt::StepDirName(step)).string();
  json state = *r.state;
  if (state.contains("trace_time") && state["trace_time"].is_string()) r.trace_time = state["trace_time"];
  state["checkpoint"] = {{"step", step}, {"kind", r.kind}, {"reason", r.reason}, {"trace_time", r.trace_time}};
  ASSIGN_OR_RETURN(ckpt::FileEntry coord, ckpt::WriteFileDurably((fs::path(dir) / kCoordinatorStateFile).string(),
                                                                 state.dump() + "\n"));
  ckpt::Manifest m;
  m.step = step;
  m.files = r.files;
  m.files.push_back(coord);
  RETURN_IF_ERROR(ckpt::WriteManifest(dir, m));
  std::vector<std::string> removed;
  RETURN_IF_ERROR(ckpt::Prune(root_, keep_, &removed));
  const double commit_s = Since(t0);
  last_wall_s_ = Since(r.requested);
  json rec = {{"step", step},           {"dir", dir},
              {"kind", r.kind},         {"reason", r.reason},
              {"trace_time", r.trace_time}, {"bytes", m.total_bytes()},
              {"files", m.files.size()}, {"snapshot_s", r.snapshot_s},
              {"write_s", r.write_s},   {"commit_s", commit_s},
              {"wall_s", last_wall_s_}};
  if (site_storage_) {
    json sites = json::object();
    for (const auto& f : r.files)
      sites[f.site].push_back({{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
    rec["site_files"] = sites;
  }
  records_.push_back(rec);
  GT_INFO("live", "checkpoint step " << step << " committed (" << r.reason << "), "
                                     << m.total_bytes() << " bytes, training paused " << r.snapshot_s << " s");
  open_.erase(it);
  return std::optional<json>(rec);
}

std::map<int, std::set<std::string>> LayerHolders(const ckpt::Manifest& manifest) {
  std::map<int, std::set<std::string>> out;
  for (const auto& f : manifest.files) {
    const int layer = ckpt::ParseLayerFileName(f.name);
    if (!f.site.empty() && layer >= 0) out[layer].insert(f.site);
  }
  return out;
}

Result<std::vector<FetchRange>> PlanCheckpointFetch(const std::map<int, std::set<std::string>>& holders,
                                                    const std::string& receiver_site, int receiver_rank, int first,
                                                    int last, const std::vector<std::string>& site_order,
                                                    const std::map<std::string, std::vector<int>>& live_ranks) {
  auto alive = [&](const std::string& site) {
    auto it = live_ranks.find(site);
    return it != live_ranks.end() && !it->second.empty();
  };
  std::vector<std::pair<std::string, std::pair<int, int>>> runs;  // site, [first, last)
  for (int l = first; l < last; ++l) {
    auto h = holders.find(l);
    if (h == holders.end() || h->second.empty())
      return NotFound("layer " + std::to_string(l) + " is not in the checkpoint (no site keeps its file)");
    std::string from;
    if (h->second.count(receiver_site)) from = receiver_site;
    for (size_t i = 0; i < site_order.size() && from.empty(); ++i)
      if (h->second.count(site_order[i]) && alive(site_order[i])) from = site_order[i];
    if (from.empty()) {
      std::string where;
      for (const auto& s : h->second) where += (where.empty() ? "" : ", ") + s;
      return Unavailable("layer " + std::to_string(l) + " of the checkpoint is kept only at site(s) " + where +
                         ", which have no live rank to read it; restart a worker there (its storage keeps the "
                         "files) and resume with --resume");
    }
    if (!runs.empty() && runs.back().first == from && runs.back().second.second == l) ++runs.back().second.second;
    else runs.push_back({from, {l, l + 1}});
  }
  std::vector<FetchRange> out;
  std::map<std::string, size_t> used;
  for (const auto& [site, range] : runs) {
    FetchRange f;
    f.first = range.first;
    f.last = range.second;
    if (site == receiver_site) {
      f.rank = receiver_rank;
      f.local = true;
    } else {
      const std::vector<int>& ranks = live_ranks.at(site);
      size_t& k = used[site];
      if (k >= ranks.size())
        return Unavailable("site " + site + " would have to send " + std::to_string(k + 1) +
                           " separate layer ranges of the checkpoint but has " + std::to_string(ranks.size()) +
                           " live rank(s)");
      f.rank = ranks[k++];
    }
    out.push_back(f);
  }
  return out;
}

}  // namespace gt
