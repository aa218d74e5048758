// Collective backends, one parameterised suite for every backend that is built: ranks as threads,
// ranks as processes (this binary re-executed), a rank killed or stalled in the middle of a stream of
// allreduces, elastic re-forming from subsets. Results are checked against buffers computed here.
// nccl instances skip without enough GPUs; mpi instances skip here (MPI ranks are neither threads nor
// forked processes) and run in MpiUnderMpirun, which re-launches this binary with mpirun.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "comms/collective.h"
#include "comms/keyring.h"
#include "comms/zmq_store.h"
#include "test_buffers.h"

extern char** environ;

namespace gt {
namespace {

using std::chrono::milliseconds;
using testing_comms::MakeTestBuffer;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Values and expectations.

// Rank r's i-th input: small integers, exactly representable in every dtype, as are all partial
// sums and averages for up to 4 ranks.
double InputValue(int rank, size_t i) { return static_cast<double>((rank + 1) * static_cast<int>(i % 13) - 6); }

std::vector<uint8_t> Encode(DType t, const std::vector<double>& v) {
  std::vector<uint8_t> out(v.size() * DTypeSize(t));
  for (size_t i = 0; i < v.size(); ++i) {
    float f = static_cast<float>(v[i]);
    if (t == DType::kFloat32) {
      std::memcpy(&out[4 * i], &f, 4);
    } else {
      uint16_t h = t == DType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

std::vector<double> Decode(DType t, const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / DTypeSize(t));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::kFloat32) {
      float f;
      std::memcpy(&f, &b[4 * i], 4);
      v[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, &b[2 * i], 2);
      v[i] = t == DType::kFloat16 ? HalfToFloat(h) : BFloat16ToFloat(h);
    }
  }
  return v;
}

// Returns "" when a == b within tol, else a description of the first mismatch.
std::string Compare(const std::vector<double>& got, const std::vector<double>& want, double tol, const std::string& what) {
  if (got.size() != want.size()) return what + ": size " + std::to_string(got.size()) + " != " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      std::ostringstream os;
      os << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
      return os.str();
    }
  }
  return "";
}

#define CHECK_OK(expr)                                                              \
  do {                                                                              \
    ::gt::Status s_ = (expr);                                                       \
    if (!s_.ok()) return std::string(#expr) + " failed: " + s_.ToString();          \
  } while (0)
#define CHECK_EMPTY(expr)            \
  do {                               \
    std::string e_ = (expr);         \
    if (!e_.empty()) return e_;      \
  } while (0)

int DeviceFor(const std::string& backend, int rank) {
  int n = testing_comms::CudaDeviceCount();
  return backend == "nccl" && n > 0 ? rank % n : -1;
}

// Allreduce (sum and average, three dtypes, several sizes incl. multi-segment), broadcast,
// allgather, barrier and asynchronous ops, all checked. Every member runs the same sequence.
std::string RunBasicChecks(Collective& c, const std::string& backend) {
  const int n = c.size(), r = c.rank();
  const int dev = DeviceFor(backend, r);
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (size_t numel : {size_t{1}, size_t{7}, size_t{70001}, size_t{300001}}) {
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
        std::vector<double> in(numel), want(numel);
        for (size_t i = 0; i < numel; ++i) {
          in[i] = InputValue(r, i);
          double s = 0;
          for (int k = 0; k < n; ++k) s += InputValue(k, i);
          want[i] = op == ReduceOp::kSum ? s : s / n;
        }
        auto buf = MakeTestBuffer(backend, t, numel, dev);
        buf->Upload(Encode(t, in));
        CHECK_OK(c.AllReduceSync(buf->view(), op));
        CHECK_EMPTY(Compare(Decode(t, buf->Download()), want, 0.0,
                            "allreduce " + DTypeName(t) + (op == ReduceOp::kSum ? " sum" : " avg") + " numel " +
                                std::to_string(numel)));
      }
    }
  }
  // Non-integer bfloat16 values: each of the n-1 additions rounds once, so the error stays within
  // (n-1) half-ulps of the largest partial sum.
  {
    const size_t numel = 4099;
    std::vector<std::vector<double>> all(n, std::vector<double>(numel));
    for (int k = 0; k < n; ++k) {
      std::mt19937 rng(100 + k);
      std::uniform_real_distribution<double> u(-1, 1);
      for (auto& x : all[k]) x = BFloat16ToFloat(FloatToBFloat16(static_cast<float>(u(rng))));
    }
    std::vector<double> want(numel, 0);
    for (int k = 0; k < n; ++k)
      for (size_t i = 0; i < numel; ++i) want[i] += all[k][i];
    auto buf = MakeTestBuffer(backend, DType::kBFloat16, numel, dev);
    buf->Upload(Encode(DType::kBFloat16, all[r]));
    CHECK_OK(c.AllReduceSync(buf->view(), ReduceOp::kSum));
    CHECK_EMPTY(Compare(Decode(DType::kBFloat16, buf->Download()), want, (n - 1) * n * std::ldexp(1.0, -8),
                        "allreduce bfloat16 random"));
  }
  // Broadcast from the last rank.
  {
    const int root = n - 1;
    std::vector<double> mine(1000), want(1000);
    for (size_t i = 0; i < mine.size(); ++i) {
      mine[i] = r * 1000.0 + static_cast<double>(i);
      want[i] = root * 1000.0 + static_cast<double>(i);
    }
    auto buf = MakeTestBuffer(backend, DType::kFloat32, mine.size(), dev);
    buf->Upload(Encode(DType::kFloat32, mine));
    CHECK_OK(c.BroadcastSync(buf->view(), root));
    CHECK_EMPTY(Compare(Decode(DType::kFloat32, buf->Download()), want, 0.0, "broadcast"));
  }
  // Allgather.
  {
    const size_t per = 513;
    std::vector<double> mine(per), want(per * n);
    for (size_t i = 0; i < per; ++i) mine[i] = r * 10000.0 + static_cast<double>(i);
    for (int k = 0; k < n; ++k)
      for (size_t i = 0; i < per; ++i) want[k * per + i] = k * 10000.0 + static_cast<double>(i);
    auto in = MakeTestBuffer(backend, DType::kFloat32, per, dev);
    auto out = MakeTestBuffer(backend, DType::kFloat32, per * n, dev);
    in->Upload(Encode(DType::kFloat32, mine));
    CHECK_OK(c.AllGatherSync(in->view(), out->view()));
    CHECK_EMPTY(Compare(Decode(DType::kFloat32, out->Download()), want, 0.0, "allgather"));
  }
  // Several asynchronous ops in flight; each completes with its own correct result.
  {
    std::vector<std::unique_ptr<testing_comms::TestBuffer>> bufs;
    std::vector<std::shared_ptr<Work>> works;
    for (int j = 0; j < 4; ++j) {
      bufs.push_back(MakeTestBuffer(backend, DType::kFloat32, 10000, dev));
      bufs.back()->Upload(Encode(DType::kFloat32, std::vector<double>(10000, (r + 1) * (j + 1))));
      works.push_back(c.AllReduce(bufs.back()->view(), ReduceOp::kSum));
    }
    CHECK_OK(c.BarrierSync());
    for (int j = 0; j < 4; ++j) {
      CHECK_OK(works[j]->Wait(milliseconds(10000)));
      if (!works[j]->IsCompleted()) return "async op " + std::to_string(j) + " not completed after Wait OK";
      double want = (j + 1) * n * (n + 1) / 2.0;
      CHECK_EMPTY(Compare(Decode(DType::kFloat32, bufs[j]->Download()), std::vector<double>(10000, want), 0.0,
                          "async allreduce " + std::to_string(j)));
    }
  }
  return "";
}

CollectiveOptions Options(std::shared_ptr<Store> store, uint64_t gen, std::vector<int> members, int self,
                          milliseconds timeout, const std::string& backend) {
  CollectiveOptions o;
  o.store = std::move(store);
  o.job = "test";
  o.generation = gen;
  o.members = std::move(members);
  o.self = self;
  o.timeout = timeout;
  o.cuda_device = -1;
  (void)backend;
  return o;
}

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Runs body(worker) on n threads; returns the per-worker error strings ("" = fine).
std::vector<std::string> RunThreads(int n, const std::function<std::string(int)>& body) {
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (int w = 0; w < n; ++w) threads.emplace_back([&, w] { errors[w] = body(w); });
  for (auto& t : threads) t.join();
  return errors;
}

void ExpectAllEmpty(const std::vector<std::string>& errors) {
  for (size_t i = 0; i < errors.size(); ++i) EXPECT_EQ(errors[i], "") << "worker " << i;
}

// ---------------------------------------------------------------------------------------------
// Child processes: this binary re-executed with GT_COMMS_CHILD="scenario backend worker n dir".

std::string ChildScenario(const std::string& scenario, const std::string& backend, int worker, int n,
                          const std::string& dir);

std::string SelfExe() {
  char buf[4096];
  ssize_t len = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return len > 0 ? std::string(buf, len) : std::string();
}

pid_t SpawnChild(const std::string& scenario, const std::string& backend, int worker, int n, const std::string& dir) {
  std::string exe = SelfExe();
  std::string spec = "GT_COMMS_CHILD=" + scenario + " " + backend + " " + std::to_string(worker) + " " +
                     std::to_string(n) + " " + dir;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "GT_COMMS_CHILD=", 15) != 0) env_strings.push_back(*e);
  }
  env_strings.push_back(spec);
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
    envp.push_back(nullptr);
    std::string filter = "--gtest_filter=ChildEntry.Run";
    char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(filter.c_str()), nullptr};
    execve(exe.c_str(), argv, envp.data());
    _exit(127);
  }
  return pid;
}

TEST(ChildEntry, Run) {
  const char* spec = std::getenv("GT_COMMS_CHILD");
  if (spec == nullptr) GTEST_SKIP() << "entry point for child processes spawned by the process tests";
  std::istringstream in(spec);
  std::string scenario, backend, dir;
  int worker = -1, n = 0;
  in >> scenario >> backend >> worker >> n >> dir;
  std::string err = ChildScenario(scenario, backend, worker, n, dir);
  std::ofstream(dir + "/result." + std::to_string(worker)) << (err.empty() ? "ok" : err);
  std::fflush(stderr);
  _exit(err.empty() ? 0 : 1);
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = std::string(::testing::TempDir()) + "gt_comms_" + tag + "_XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* d = mkdtemp(buf.data());
  return d ? std::string(d) : std::string();
}

// Waits for all children until the deadline; kills stragglers. Returns each exit status (or -signal).
std::vector<int> ReapAll(const std::vector<pid_t>& pids, milliseconds limit) {
  std::vector<int> codes(pids.size(), INT32_MIN);
  const auto deadline = Clock::now() + limit;
  size_t left = pids.size();
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (codes[i] != INT32_MIN) continue;
      int st = 0;
      pid_t r = waitpid(pids[i], &st, WNOHANG);
      if (r == pids[i]) {
        codes[i] = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        --left;
      }
    }
    if (left == 0) break;
    if (Clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (codes[i] == INT32_MIN) {
          kill(pids[i], SIGKILL);
          int st = 0;
          waitpid(pids[i], &st, 0);
          codes[i] = -1000;  // timed out
        }
      }
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return codes;
}

constexpr milliseconds kChildTimeout{2000};

std::string ChildScenario(const std::string& scenario, const std::string& backend, int worker, int n,
                          const std::string& dir) {
  auto fs = FileStore::Open(dir + "/store");
  if (!fs.ok()) return fs.status().ToString();
  std::shared_ptr<Store> store = *fs;
  if (scenario == "basic") {
    auto c = MakeCollective(backend, Options(store, 0, Iota(n), worker, milliseconds(10000), backend));
    if (!c.ok()) return "forming: " + c.status().ToString();
    return RunBasicChecks(**c, backend);
  }
  if (scenario == "kill" || scenario == "stall") {
    // Everyone loops allreduces; the parent kills (or stops) the last worker after all are in the loop.
    auto c = MakeCollective(backend, Options(store, 0, Iota(n), worker, kChildTimeout, backend));
    if (!c.ok()) return "forming g0: " + c.status().ToString();
    const size_t numel = 1 << 18;
    const int dev = DeviceFor(backend, worker);
    auto buf = MakeTestBuffer(backend, DType::kFloat32, numel, dev);
    const auto loop_deadline = Clock::now() + std::chrono::seconds(15);
    bool failed = false;
    for (int iter = 0; Clock::now() < loop_deadline; ++iter) {
      buf->Upload(Encode(DType::kFloat32, std::vector<double>(numel, worker + 1)));
      const auto t0 = Clock::now();
      auto w = (*c)->AllReduce(buf->view(), ReduceOp::kSum);
      Status s = w->Wait(kChildTimeout * 3);
      const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
      if (s.ok()) {
        auto got = Decode(DType::kFloat32, buf->Download());
        if (got[0] != n * (n + 1) / 2.0 || got[numel - 1] != got[0]) return "g0 allreduce result wrong";
        if (iter == 0) std::ofstream(dir + "/ready." + std::to_string(worker)) << "1";
        continue;
      }
      // The failure must come within the timeout (plus scheduling slack), not hang.
      if (took > kChildTimeout + milliseconds(3000)) {
        return "failure took " + std::to_string(took.count()) + " ms, timeout is " +
               std::to_string(kChildTimeout.count()) + " ms: " + s.ToString();
      }
      std::ofstream(dir + "/failed." + std::to_string(worker)) << s.ToString() << " after " << took.count() << " ms";
      // A broken group refuses further work.
      auto again = (*c)->AllReduce(buf->view(), ReduceOp::kSum)->Wait(milliseconds(5000));
      if (again.ok()) return "a broken group accepted another allreduce";
      failed = true;
      break;
    }
    if (!failed) return "no failure observed within 15 s of the peer being killed/stopped";
    c->reset();
    // New generation without the lost worker (ids 0..n-2).
    auto c1 = MakeCollective(backend, Options(store, 1, Iota(n - 1), worker, milliseconds(10000), backend));
    if (!c1.ok()) return "forming g1: " + c1.status().ToString();
    buf->Upload(Encode(DType::kFloat32, std::vector<double>(numel, worker + 1)));
    CHECK_OK((*c1)->AllReduceSync(buf->view(), ReduceOp::kSum));
    auto got = Decode(DType::kFloat32, buf->Download());
    double want = (n - 1) * n / 2.0;
    CHECK_EMPTY(Compare({got[0], got[numel / 2], got[numel - 1]}, {want, want, want}, 0.0, "g1 allreduce"));
    return "";
  }
  return "unknown scenario " + scenario;
}

// ---------------------------------------------------------------------------------------------
// The parameterised suite.

class CollectiveTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = GetParam();
    Status usable = BackendUsable(backend_);
    if (!usable.ok()) GTEST_SKIP() << usable.ToString();
    if (backend_ == "mpi") GTEST_SKIP() << "MPI ranks are mpirun processes; see MpiUnderMpirun";
  }
  void RequireDevices(int n) {
    if (backend_ == "nccl" && testing_comms::CudaDeviceCount() < n) {
      GTEST_SKIP() << "nccl needs one GPU per rank: " << n << " ranks, " << testing_comms::CudaDeviceCount() << " GPUs";
    }
  }
  std::string backend_;
};

TEST_P(CollectiveTest, ThreadsBasic) {
  for (int n : {2, 3}) {
    RequireDevices(n);
    if (IsSkipped()) return;
    auto store = std::make_shared<MemoryStore>();
    ExpectAllEmpty(RunThreads(n, [&](int w) -> std::string {
      auto c = MakeCollective(backend_, Options(store, 0, Iota(n), w, milliseconds(10000), backend_));
      if (!c.ok()) return c.status().ToString();
      if ((*c)->rank() != w || (*c)->size() != n || (*c)->backend() != backend_) return "wrong rank/size/backend";
      return RunBasicChecks(**c, backend_);
    }));
  }
}

TEST_P(CollectiveTest, ThreadsBarrierSynchronises) {
  const int n = 3;
  RequireDevices(n);
  if (IsSkipped()) return;
  auto store = std::make_shared<MemoryStore>();
  std::atomic<int> arrived{0};
  ExpectAllEmpty(RunThreads(n, [&](int w) -> std::string {
    auto c = MakeCollective(backend_, Options(store, 0, Iota(n), w, milliseconds(10000), backend_));
    if (!c.ok()) return c.status().ToString();
    for (int round = 1; round <= 5; ++round) {
      if (w == round % n) std::this_thread::sleep_for(milliseconds(20));  // one late arrival per round
      arrived++;
      CHECK_OK((*c)->BarrierSync());
      if (arrived.load() < round * n) return "left barrier " + std::to_string(round) + " before all arrived";
      CHECK_OK((*c)->BarrierSync());  // nobody starts the next round before everyone checked
    }
    return "";
  }));
}

TEST_P(CollectiveTest, ThreadsMissingMemberTimesOut) {
  const int n = 3;
  RequireDevices(n);
  if (IsSkipped()) return;
  auto store = std::make_shared<MemoryStore>();
  // Worker 2 never shows up: the others fail (Timeout) within their timeout instead of hanging.
  auto errors = RunThreads(n - 1, [&](int w) -> std::string {
    const auto t0 = Clock::now();
    auto c = MakeCollective(backend_, Options(store, 0, Iota(n), w, milliseconds(500), backend_));
    const auto took = Clock::now() - t0;
    if (c.ok()) return "formed a group with a missing member";
    if (c.status().code() != Code::kTimeout) return "expected Timeout, got " + c.status().ToString();
    if (took > milliseconds(5000)) return "took too long to time out";
    return "";
  });
  ExpectAllEmpty(errors);
}

TEST_P(CollectiveTest, ThreadsElasticSubsetsFormWithoutTheOthers) {
  const int n = 4;
  RequireDevices(n);
  if (IsSkipped()) return;
  auto store = std::make_shared<MemoryStore>();
  ExpectAllEmpty(RunThreads(n, [&](int w) -> std::string {
    const int dev = DeviceFor(backend_, w);
    {
      auto c = MakeCollective(backend_, Options(store, 0, Iota(n), w, milliseconds(10000), backend_));
      if (!c.ok()) return "g0: " + c.status().ToString();
      auto buf = MakeTestBuffer(backend_, DType::kFloat32, 100, dev);
      buf->Upload(Encode(DType::kFloat32, std::vector<double>(100, w + 1)));
      CHECK_OK((*c)->AllReduceSync(buf->view(), ReduceOp::kSum));
      CHECK_EMPTY(Compare(Decode(DType::kFloat32, buf->Download()), std::vector<double>(100, 10), 0, "g0"));
    }
    // Two disjoint groups at once, in a new order: g1 = workers {3, 1}, g2 = workers {0, 2}.
    const bool in_g1 = (w == 3 || w == 1);
    std::vector<int> members = in_g1 ? std::vector<int>{3, 1} : std::vector<int>{0, 2};
    auto c = MakeCollective(backend_, Options(store, in_g1 ? 1 : 2, members, w, milliseconds(10000), backend_));
    if (!c.ok()) return "subset: " + c.status().ToString();
    int want_rank = w == 3 ? 0 : w == 1 ? 1 : w == 0 ? 0 : 1;
    if ((*c)->rank() != want_rank || (*c)->size() != 2) return "wrong rank in subset";
    auto buf = MakeTestBuffer(backend_, DType::kBFloat16, 33, dev);
    buf->Upload(Encode(DType::kBFloat16, std::vector<double>(33, w + 1)));
    CHECK_OK((*c)->AllReduceSync(buf->view(), ReduceOp::kAvg));
    double want = in_g1 ? (4 + 2) / 2.0 : (1 + 3) / 2.0;
    return Compare(Decode(DType::kBFloat16, buf->Download()), std::vector<double>(33, want), 0, "subset avg");
  }));
}

// The same group formed through the network store (as across machines) instead of memory.
TEST_P(CollectiveTest, ThreadsWithZmqStore) {
  const int n = 2;
  RequireDevices(n);
  if (IsSkipped()) return;
  auto keys = GenerateKeyring(n);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ZmqStoreServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.keys = keys->coordinator;
  for (int w = 0; w < n; ++w) so.allowed_clients[keys->workers[w].public_key] = "rank" + std::to_string(w);
  auto server = ZmqStoreServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ExpectAllEmpty(RunThreads(n, [&](int w) -> std::string {
    ZmqStoreCredentials cred;
    cred.keys = keys->workers[w];
    cred.server_public_key = keys->coordinator.public_key;
    auto store = ZmqStore::Connect((*server)->endpoint(), cred);
    if (!store.ok()) return store.status().ToString();
    auto c = MakeCollective(backend_, Options(*store, 5, Iota(n), w, milliseconds(10000), backend_));
    if (!c.ok()) return c.status().ToString();
    auto buf = MakeTestBuffer(backend_, DType::kFloat16, 1000, DeviceFor(backend_, w));
    buf->Upload(Encode(DType::kFloat16, std::vector<double>(1000, w + 0.5)));
    CHECK_OK((*c)->AllReduceSync(buf->view(), ReduceOp::kSum));
    return Compare(Decode(DType::kFloat16, buf->Download()), std::vector<double>(1000, 2.0), 0, "zmq store group");
  }));
}

TEST_P(CollectiveTest, ProcessesBasic) {
  const int n = 3;
  RequireDevices(n);
  if (IsSkipped()) return;
  std::string dir = MakeTempDir("procs");
  ASSERT_FALSE(dir.empty());
  std::vector<pid_t> pids;
  for (int w = 0; w < n; ++w) pids.push_back(SpawnChild("basic", backend_, w, n, dir));
  auto codes = ReapAll(pids, milliseconds(60000));
  for (int w = 0; w < n; ++w) {
    EXPECT_EQ(codes[w], 0) << "worker " << w << ": " << ReadFile(dir + "/result." + std::to_string(w));
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

// One member is SIGKILLed (or SIGSTOPped) in the middle of a stream of allreduces. The others' ops
// fail within the timeout; they then form a new generation without it and allreduce correctly.
void RunLostMember(const std::string& backend, const std::string& scenario) {
  const int n = 3;
  std::string dir = MakeTempDir(scenario);
  ASSERT_FALSE(dir.empty());
  std::vector<pid_t> pids;
  for (int w = 0; w < n; ++w) pids.push_back(SpawnChild(scenario, backend, w, n, dir));
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  bool ready = false;
  while (Clock::now() < deadline && !ready) {
    ready = true;
    for (int w = 0; w < n; ++w) ready = ready && FileExists(dir + "/ready." + std::to_string(w));
    if (!ready) std::this_thread::sleep_for(milliseconds(5));
  }
  if (ready) {
    std::this_thread::sleep_for(milliseconds(30));
    kill(pids[n - 1], scenario == "kill" ? SIGKILL : SIGSTOP);
  }
  std::vector<pid_t> survivors(pids.begin(), pids.end() - 1);
  auto codes = ReapAll(survivors, milliseconds(40000));
  kill(pids[n - 1], SIGKILL);
  int st = 0;
  waitpid(pids[n - 1], &st, 0);
  ASSERT_TRUE(ready) << "workers never all entered the allreduce loop: " << ReadFile(dir + "/result.0");
  for (int w = 0; w < n - 1; ++w) {
    EXPECT_EQ(codes[w], 0) << "worker " << w << ": " << ReadFile(dir + "/result." + std::to_string(w));
    EXPECT_TRUE(FileExists(dir + "/failed." + std::to_string(w))) << "worker " << w << " never saw the failure";
    std::cerr << "worker " << w << " saw: " << ReadFile(dir + "/failed." + std::to_string(w)) << "\n";
  }
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST_P(CollectiveTest, ProcessesKilledRankFailsWithinTimeoutThenRegroup) {
  RequireDevices(3);
  if (IsSkipped()) return;
  RunLostMember(backend_, "kill");
}

TEST_P(CollectiveTest, ProcessesStalledRankFailsWithinTimeoutThenRegroup) {
  RequireDevices(3);
  if (IsSkipped()) return;
  RunLostMember(backend_, "stall");
}

INSTANTIATE_TEST_SUITE_P(Backends, CollectiveTest, ::testing::Values("gloo", "nccl", "mpi"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// ---------------------------------------------------------------------------------------------
// MPI: this binary re-launched under mpirun runs MpiRanks.* as 3 ranks.

bool UnderMpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr; }

TEST(MpiRanks, BasicAndSubgroups) {
  if (!UnderMpirun()) GTEST_SKIP() << "runs only under mpirun (MpiUnderMpirun launches it)";
  int world = std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE"));
  int me = std::atoi(std::getenv("OMPI_COMM_WORLD_RANK"));
  auto c = MakeCollective("mpi", Options(nullptr, 0, Iota(world), me, milliseconds(10000), "mpi"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(RunBasicChecks(**c, "mpi"), "");
  // A subgroup of the last two ranks; rank 0 does not take part.
  if (me >= world - 2) {
    auto sub = MakeCollective("mpi", Options(nullptr, 1, {world - 1, world - 2}, me, milliseconds(10000), "mpi"));
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    std::vector<float> v(10, static_cast<float>(me));
    ASSERT_TRUE((*sub)->AllReduceSync(CpuView(v.data(), v.size()), ReduceOp::kSum).ok());
    EXPECT_EQ(v[0], static_cast<float>(2 * world - 3));
  }
  ASSERT_TRUE((*c)->BarrierSync().ok());
}

TEST(MpiUnderMpirun, ThreeRanks) {
  if (!BackendCompiled("mpi")) GTEST_SKIP() << "mpi backend not compiled in";
  if (UnderMpirun()) GTEST_SKIP() << "already under mpirun";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not found";
  const std::string log = std::string(::testing::TempDir()) + "gt_comms_mpi_" + std::to_string(getpid()) + ".txt";
  std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp "
                    "OMPI_MCA_btl_tcp_if_include=lo timeout 60 mpirun -np 3 --oversubscribe '" +
                    SelfExe() + "' --gtest_color=no --gtest_filter='MpiRanks.*' > '" + log + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = ReadFile(log);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
  EXPECT_EQ(out.find("SKIPPED"), std::string::npos) << out;
  std::remove(log.c_str());
}

}  // namespace
}  // namespace gt
