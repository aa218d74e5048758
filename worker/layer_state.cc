#include "worker/layer_state.h"

#include <atomic>
#include <cstdio>
#include <thread>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "worker/checkpoint.h"
#include "worker/layout.h"

namespace gt::worker {
namespace {

using json = nlohmann::json;
constexpr const char* kParams = "params";
constexpr const char* kExpAvg = "adamw.exp_avg";
constexpr const char* kExpAvgSq = "adamw.exp_avg_sq";

json ModelJson(const ModelConfig& m) {
  return {{"layers", m.layers}, {"hidden", m.hidden}, {"heads", m.heads}, {"seq_len", m.seq_len}, {"vocab", m.vocab}};
}

}  // namespace

int64_t LayerState::LayerOffset(int layer) const { return RangeParamCount(model, first, layer); }

std::string LayerFileName(int layer) { return ckpt::LayerFileName(layer); }

std::vector<int> LayersWrittenBy(int first, int last, int replica, int replicas) {
  std::vector<int> out;
  if (replicas < 1) replicas = 1;
  for (int l = first + replica; l < last; l += replicas) out.push_back(l);
  return out;
}

namespace {

Result<ckpt::FileEntry> WriteLayerFile(const std::string& dir, const LayerState& s, int l) {
  const int64_t off = s.LayerOffset(l), count = LayerParamCount(s.model, l);
  json meta = {{"layer", l},
               {"model", ModelJson(s.model)},
               {"seed", s.seed},
               {"count", count},
               {"adamw_steps", s.adamw_steps},
               {"adamw", {{"lr", s.adamw.lr}, {"beta1", s.adamw.beta1}, {"beta2", s.adamw.beta2},
                          {"eps", s.adamw.eps}, {"weight_decay", s.adamw.weight_decay}}}};
  std::vector<SectionView> sections = {{kParams, s.params.data() + off, count},
                                       {kExpAvg, s.exp_avg.data() + off, count},
                                       {kExpAvgSq, s.exp_avg_sq.data() + off, count}};
  ckpt::FileEntry e;
  RETURN_IF_ERROR(WriteCheckpointFile((std::filesystem::path(dir) / LayerFileName(l)).string(), meta.dump(),
                                      sections, &e, /*fsync_dir=*/false));
  return e;
}

}  // namespace

Result<std::vector<ckpt::FileEntry>> WriteLayerFiles(const std::string& dir, const LayerState& s,
                                                     const std::vector<int>& layers, int threads) {
  const int64_t n = RangeParamCount(s.model, s.first, s.last);
  if (static_cast<int64_t>(s.params.size()) != n || static_cast<int64_t>(s.exp_avg.size()) != n ||
      static_cast<int64_t>(s.exp_avg_sq.size()) != n)
    return InvalidArgument("WriteLayerFiles: the state's buffers do not match layers [" + std::to_string(s.first) +
                           ", " + std::to_string(s.last) + ")");
  for (int l : layers)
    if (l < s.first || l >= s.last)
      return InvalidArgument("WriteLayerFiles: layer " + std::to_string(l) + " is outside the state's layers [" +
                             std::to_string(s.first) + ", " + std::to_string(s.last) + ")");
  std::vector<Result<ckpt::FileEntry>> got(layers.size(), Result<ckpt::FileEntry>(Internal("not written")));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < layers.size();) got[k] = WriteLayerFile(dir, s, layers[k]);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min<int>(std::max(1, threads), static_cast<int>(layers.size())); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::vector<ckpt::FileEntry> out;
  for (auto& r : got) {
    if (!r.ok()) return r.status();
    out.push_back(std::move(r).value());
  }
  RETURN_IF_ERROR(ckpt::FsyncDir(dir));  // once for all the renames above
  return out;
}

Status ReadLayerState(const std::string& dir, const ModelConfig& model, int first, int last, LayerState* out) {
  RETURN_IF_ERROR(ValidateRange(model, first, last));
  out->model = model;
  out->first = first;
  out->last = last;
  const int64_t n = RangeParamCount(model, first, last);
  out->params.resize(n);
  out->exp_avg.resize(n);
  out->exp_avg_sq.resize(n);
  for (int l = first; l < last; ++l) {
    const std::string path = (std::filesystem::path(dir) / LayerFileName(l)).string();
    ASSIGN_OR_RETURN(CheckpointContents c, ReadCheckpointFile(path));
    const int64_t off = out->LayerOffset(l), count = LayerParamCount(model, l);
    try {
      const json meta = json::parse(c.meta_json);
      if (meta.at("model") != ModelJson(model) || meta.at("layer").get<int>() != l ||
          meta.at("count").get<int64_t>() != count)
        return InvalidArgument(path + " holds layer " + meta.at("layer").dump() + " of model " +
                               meta.at("model").dump() + "; this run needs layer " + std::to_string(l) + " of " +
                               DescribeModel(model) + " (resume with the same live model)");
      const int64_t steps = meta.at("adamw_steps").get<int64_t>();
      if (l > first && steps != out->adamw_steps)
        return ParseError(path + " is at AdamW step " + std::to_string(steps) + ", layer " + std::to_string(first) +
                          " at " + std::to_string(out->adamw_steps) + ": the checkpoint mixes steps");
      out->adamw_steps = steps;
      out->seed = meta.at("seed").get<uint64_t>();
      const json& a = meta.at("adamw");
      out->adamw = {a.at("lr"), a.at("beta1"), a.at("beta2"), a.at("eps"), a.at("weight_decay")};
    } catch (const json::exception& e) {
      return ParseError(path + ": incomplete layer meta: " + e.what());
    }
    for (auto [name, dst] : {std::pair{kParams, &out->params}, {kExpAvg, &out->exp_avg}, {kExpAvgSq, &out->exp_avg_sq}}) {
      const CheckpointSection* sec = c.Find(name);
      if (sec == nullptr || static_cast<int64_t>(sec->data.size()) != count)
        return ParseError(path + ": section '" + name + "' is missing or has the wrong size");
      std::memcpy(dst->data() + off, sec->data.data(), sizeof(float) * count);
    }
  }
  return Status::Ok();
}

}  // namespace gt::worker
