#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "comms/collective.h"
#include "comms/store.h"

namespace gt {
namespace {

using std::chrono::milliseconds;

std::string TempDir(const std::string& tag) {
  std::string t = std::string(::testing::TempDir()) + "gt_comms_" + tag + "_" + std::to_string(::getpid());
  return t;
}

void ExerciseStore(Store& s) {
  ASSERT_TRUE(s.Set("job/g0/a", "alpha").ok());
  auto a = s.Get("job/g0/a", milliseconds(100));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, "alpha");
  ASSERT_TRUE(s.Set("job/g0/a", std::string("bin\0ary", 7)).ok());  // overwrite, binary-safe
  EXPECT_EQ(*s.Get("job/g0/a", milliseconds(100)), std::string("bin\0ary", 7));
  auto missing = s.Get("job/g0/missing", milliseconds(30));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kTimeout);
  EXPECT_NE(missing.status().message().find("job/g0/missing"), std::string::npos);
  // A reader blocked in Get sees a value set later by another thread.
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(20));
    ASSERT_TRUE(s.Set("late key/with:odd chars", "v").ok());
  });
  auto late = s.Get("late key/with:odd chars", milliseconds(5000));
  writer.join();
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_EQ(*late, "v");
}

TEST(Store, Memory) {
  MemoryStore s;
  ExerciseStore(s);
}

TEST(Store, File) {
  auto s = FileStore::Open(TempDir("filestore") + "/nested/dir");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ExerciseStore(**s);
  // Keys with '/' must not escape the directory: the same key from a second handle is visible.
  auto again = FileStore::Open((*s)->dir());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->Get("job/g0/a", milliseconds(10)), std::string("bin\0ary", 7));
  std::system(("rm -rf " + TempDir("filestore")).c_str());
}

TEST(Store, FileOpenErrorsNameThePath) {
  auto s = FileStore::Open("/proc/self/no/such/dir");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/proc/self/no"), std::string::npos);
}

TEST(Store, Prefix) {
  auto base = std::make_shared<MemoryStore>();
  PrefixStore p(base, "job/g7");
  ASSERT_TRUE(p.Set("k", "v").ok());
  EXPECT_EQ(*base->Get("job/g7/k", milliseconds(10)), "v");
  EXPECT_EQ(*p.Get("k", milliseconds(10)), "v");
}

TEST(Factory, UnknownAndUncompiledBackends) {
  CollectiveOptions o;
  o.store = std::make_shared<MemoryStore>();
  o.members = {0};
  o.self = 0;
  auto r = MakeCollective("carrier-pigeon", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  for (const std::string b : {"nccl", "mpi"}) {
    auto c = MakeCollective(b, o);
    if (BackendCompiled(b)) {
      // Compiled here, but this unit test has no GPU / no mpirun: a clear Unavailable, never a crash.
      if (!BackendUsable(b).ok()) {
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();
      }
    } else {
      ASSERT_FALSE(c.ok());
      EXPECT_EQ(c.status().code(), Code::kUnavailable);
      EXPECT_NE(c.status().message().find("was not compiled in"), std::string::npos) << c.status().message();
    }
  }
  EXPECT_TRUE(BackendCompiled("gloo"));
  EXPECT_TRUE(BackendUsable("gloo").ok());
  EXPECT_EQ(CompiledBackends().front(), "gloo");
}

TEST(Factory, ValidatesMembership) {
  CollectiveOptions o;
  o.store = std::make_shared<MemoryStore>();
  o.members = {4, 9, 2};
  o.self = 2;
  EXPECT_EQ(*RankOf(o), 2);
  o.self = 5;
  auto r = MakeCollective("gloo", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not in members"), std::string::npos);
  o.members = {1, 1};
  o.self = 1;
  EXPECT_FALSE(RankOf(o).ok());
  o.members = {};
  EXPECT_FALSE(RankOf(o).ok());
  o.members = {0};
  o.self = 0;
  o.store = nullptr;
  r = MakeCollective("gloo", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("store"), std::string::npos);
}

// A group of one needs no peers: every operation is local and exact.
TEST(Factory, SingleMemberGlooGroup) {
  CollectiveOptions o;
  o.store = std::make_shared<MemoryStore>();
  o.members = {3};
  o.self = 3;
  auto c = MakeCollective("gloo", o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->rank(), 0);
  EXPECT_EQ((*c)->size(), 1);
  std::vector<float> v = {1, 2, 3};
  ASSERT_TRUE((*c)->AllReduceSync(CpuView(v.data(), 3), ReduceOp::kAvg).ok());
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3}));
  std::vector<float> out(3);
  ASSERT_TRUE((*c)->AllGatherSync(CpuView(v.data(), 3), CpuView(out.data(), 3)).ok());
  EXPECT_EQ(out, v);
  ASSERT_TRUE((*c)->BarrierSync().ok());
  auto bad = (*c)->Broadcast(CpuView(v.data(), 3), 1);
  EXPECT_EQ(bad->Wait(milliseconds(10)).code(), Code::kInvalidArgument);
  TensorView gpu = CpuView(v.data(), 3);
  gpu.memory = MemoryKind::kCuda;
  EXPECT_EQ((*c)->AllReduce(gpu, ReduceOp::kSum)->Wait(milliseconds(10)).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gt
