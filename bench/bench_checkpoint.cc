// bench_checkpoint: what a checkpoint costs training, and how fast it writes, each against a
// baseline measured in the same run. Two models: the demo's live model (launch/configs/default.json
// runtime.live_model) and one of more than 500 MB of state (weights + both AdamW moments).
//
//   checkpoint_lost_time     training time lost per checkpoint, as a share of the training time of
//                            50 steps (a checkpoint every 50 steps; target <= 0.01). Measured as
//                            (K steps with one asynchronous checkpoint taken at the first step
//                            boundary) - (K steps without), K chosen so the background write ends
//                            within them; medians over interleaved repetitions.
//   checkpoint_write_throughput  bytes of the layer files / time of the background write (fsync of
//                            every file and the directory, SHA-256 of every byte), against writing
//                            and fsyncing the same bytes to one file (target ratio >= 0.8).
// Both sides run on 1 compute thread (torch and OpenBLAS), as a live worker does. JSON lines.
//
//   bench_checkpoint [--reps R] [--big-only|--demo-only]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/config.h"
#include "worker/async_checkpoint.h"
#include "worker/model.h"

namespace {

namespace fs = std::filesystem;
using gt::ModelConfig;
using Clock = std::chrono::steady_clock;

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
int Fail(const gt::Status& s) {
  std::fprintf(stderr, "bench_checkpoint: %s\n", s.ToString().c_str());
  return 1;
}

// Writes `bytes` bytes to one file in 8 MiB writes, then fsync: the disk's durable sequential rate.
double RawWriteSeconds(const std::string& path, const std::vector<char>& block, uint64_t bytes) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  for (uint64_t done = 0; done < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), bytes - done));
    if (::write(fd, block.data(), n) != static_cast<ssize_t>(n)) {
      ::close(fd);
      return -1;
    }
    done += n;
  }
  ::fsync(fd);
  ::close(fd);
  const double s = Secs(Clock::now() - t0);
  ::unlink(path.c_str());
  return s;
}

struct Trainer {
  std::unique_ptr<gt::worker::Stage> stage;
  gt::worker::Sampler* sampler;
  int64_t step = 0;
  gt::Status Step() {
    auto loss = gt::worker::ComputeGradients(*stage, *sampler, step++);
    if (!loss.ok()) return loss.status();
    return stage->OptimizerStep();
  }
};

int BenchModel(const std::string& label, const ModelConfig& m, int reps, const std::string& tmp) {
  using namespace gt::worker;
  auto sampler = Sampler::FromFile(DefaultCorpusPath(), {m.seq_len, m.micro_batch, m.global_batch, 1});
  if (!sampler.ok()) return Fail(sampler.status());
  auto stage = Stage::Create(m, 0, NumLayers(m), 1);
  if (!stage.ok()) return Fail(stage.status());
  Trainer tr{std::move(stage).value(), &*sampler};
  const int L = NumLayers(m);
  std::vector<int> all_layers;
  for (int l = 0; l < L; ++l) all_layers.push_back(l);
  const uint64_t state_bytes = 3ull * sizeof(float) * tr.stage->num_params();

  // Step time and write time first (one warm-up each), to choose K.
  for (int i = 0; i < 2; ++i)
    if (auto s = tr.Step(); !s.ok()) return Fail(s);
  auto t0 = Clock::now();
  if (auto s = tr.Step(); !s.ok()) return Fail(s);
  const double step_s = Secs(Clock::now() - t0);

  AsyncCheckpointWriter writer;
  std::vector<double> write_s, raw_s, snapshot_s, with_s, without_s;
  uint64_t file_bytes = 0;
  std::vector<char> block(size_t{8} << 20, 'x');
  int ck = 0;
  auto checkpoint = [&](bool wait) -> gt::Status {
    const auto a = Clock::now();
    LayerState* buf = writer.AcquireBuffer();
    RETURN_IF_ERROR(tr.stage->Snapshot(buf));
    snapshot_s.push_back(Secs(Clock::now() - a));
    const std::string dir = tmp + "/" + label + "-ck" + std::to_string(ck++);
    writer.Submit({tr.step, dir, all_layers});
    if (!wait) return gt::Status::Ok();
    auto f = writer.WaitFinished();
    if (!f || !f->status.ok()) return f ? f->status : gt::Internal("no write finished");
    write_s.push_back(f->write_seconds);
    file_bytes = f->bytes;
    fs::remove_all(dir);
    return gt::Status::Ok();
  };
  // Write throughput: our write vs raw write+fsync of the same bytes, interleaved.
  for (int r = 0; r < reps; ++r) {
    if (auto s = checkpoint(/*wait=*/true); !s.ok()) return Fail(s);
    const double raw = RawWriteSeconds(tmp + "/raw.bin", block, file_bytes);
    if (raw < 0) return Fail(gt::IoError("raw write to " + tmp + " failed"));
    raw_s.push_back(raw);
  }
  const double write_med = Median(write_s), raw_med = Median(raw_s);
  const int K = std::max(3, static_cast<int>(std::ceil(1.5 * write_med / std::max(step_s, 1e-4))) + 1);

  // Lost time: K steps with a checkpoint at the first boundary vs K steps without, interleaved.
  snapshot_s.clear();
  for (int r = 0; r < reps; ++r) {
    auto a = Clock::now();
    for (int i = 0; i < K; ++i)
      if (auto s = tr.Step(); !s.ok()) return Fail(s);
    without_s.push_back(Secs(Clock::now() - a));
    a = Clock::now();
    if (auto s = checkpoint(/*wait=*/false); !s.ok()) return Fail(s);
    for (int i = 0; i < K; ++i)
      if (auto s = tr.Step(); !s.ok()) return Fail(s);
    auto f = writer.WaitFinished();  // normally finished already (K covers the write)
    with_s.push_back(Secs(Clock::now() - a));
    if (!f || !f->status.ok()) return Fail(f ? f->status : gt::Internal("no write finished"));
    fs::remove_all(f->job.dir);
  }
  const double base = Median(without_s) / K;  // seconds per step without checkpoints
  double lost = Median(with_s) - Median(without_s);
  const double share = std::max(0.0, lost) / (50 * base);
  std::printf(
      "{\"bench\":\"checkpoint_lost_time\",\"model\":\"%s\",\"state_bytes\":%llu,\"steps_measured\":%d,\"reps\":%d,"
      "\"value\":%.5f,\"unit\":\"share of 50 steps' training time lost per checkpoint\","
      "\"lost_s\":%.4f,\"snapshot_s\":%.4f,\"baseline\":\"the same steps without a checkpoint\","
      "\"baseline_value\":%.4f,\"baseline_unit\":\"s/step\",\"target\":0.01,\"meets_target\":%s}\n",
      label.c_str(), static_cast<unsigned long long>(state_bytes), K, reps, share, lost, Median(snapshot_s), base,
      share <= 0.01 ? "true" : "false");
  const double ours = file_bytes / write_med / 1e6, raw = file_bytes / raw_med / 1e6;
  std::printf(
      "{\"bench\":\"checkpoint_write_throughput\",\"model\":\"%s\",\"bytes\":%llu,\"files\":%d,\"reps\":%d,"
      "\"value\":%.1f,\"unit\":\"MB/s\",\"baseline\":\"write+fsync of the same bytes to one file\","
      "\"baseline_value\":%.1f,\"ratio\":%.3f,\"target\":0.8,\"meets_target\":%s}\n",
      label.c_str(), static_cast<unsigned long long>(file_bytes), L, reps, ours, raw, ours / raw,
      ours / raw >= 0.8 ? "true" : "false");
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  bool big = true, demo = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--big-only") demo = false;
    else if (a == "--demo-only") big = false;
    else {
      std::fprintf(stderr, "usage: bench_checkpoint [--reps R] [--big-only|--demo-only]\n");
      return 2;
    }
  }
  if (auto s = gt::worker::SetComputeThreads(1); !s.ok()) return Fail(s);
  char tmpl[] = "/tmp/gt_bench_ckpt_XXXXXX";
  if (!mkdtemp(tmpl)) return Fail(gt::IoError("cannot create a temporary directory in /tmp"));
  const std::string tmp = tmpl;
  int rc = 0;
  if (demo) {
    auto cfg = gt::LoadConfig(gt::DefaultConfigPath());
    if (!cfg.ok()) return Fail(cfg.status());
    rc |= BenchModel("demo", cfg->runtime.live_model, reps, tmp);
  }
  if (big) {
    ModelConfig m;  // 4 blocks of hidden 1024: 50.9 M parameters, 611 MB of weights + AdamW moments
    m.name = "big";
    m.layers = 4;
    m.hidden = 1024;
    m.heads = 16;
    m.seq_len = 32;
    m.vocab = 256;
    m.micro_batch = 2;
    m.global_batch = 2;
    rc |= BenchModel("big-611MB", m, std::max(3, reps / 2), tmp);
  }
  fs::remove_all(tmp);
  return rc;
}
