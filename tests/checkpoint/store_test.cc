// The checkpoint directory format: durable writes, manifest, verification of every kind of damage,
// listing, the newest-valid choice, retention and clean-up of interrupted writes.
#include "checkpoint/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace gt::ckpt {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gt_ckpt_store_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A committed checkpoint at `step` with two files.
  std::string Commit(int64_t step) {
    const std::string dir = (root_ / StepDirName(step)).string();
    fs::create_directories(dir);
    Manifest m;
    m.step = step;
    for (const char* name : {"layer-0000.gtck", "coordinator.json"}) {
      auto e = WriteFileDurably(dir + "/" + name, std::string(1000 + step, static_cast<char>('a' + step % 20)));
      EXPECT_TRUE(e.ok()) << e.status().ToString();
      m.files.push_back(*e);
    }
    EXPECT_TRUE(WriteManifest(dir, m).ok());
    return dir;
  }
  static std::string Read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static void Write(const std::string& p, const std::string& s) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
  }
  fs::path root_;
};

TEST_F(StoreTest, Sha256MatchesKnownVectors) {
  Sha256 a;
  EXPECT_EQ(a.HexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 b;
  b.Update("ab", 2);
  b.Update("c", 1);
  EXPECT_EQ(b.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(StoreTest, DurableWriterCommitsOrLeavesNothing) {
  const std::string p = (root_ / "f.bin").string();
  {
    auto w = DurableWriter::Create(p);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Write("hello", 5).ok());
    // Destroyed without Commit: neither the file nor its temporary remains.
  }
  EXPECT_TRUE(fs::is_empty(root_));
  auto w = DurableWriter::Create(p);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Write("abc", 3).ok());
  auto e = w->Commit();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->name, "f.bin");
  EXPECT_EQ(e->bytes, 3u);
  EXPECT_EQ(e->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Read(p), "abc");
  auto h = HashFile(p);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->sha256, e->sha256);
  EXPECT_EQ(DurableWriter::Create((root_ / "no" / "such" / "dir").string()).status().code(), Code::kIoError);
}

TEST_F(StoreTest, StepNames) {
  EXPECT_EQ(StepDirName(400), "step-000400");
  EXPECT_EQ(StepDirName(12345678), "step-12345678");
  EXPECT_EQ(ParseStepDirName("step-000400").value(), 400);
  EXPECT_FALSE(ParseStepDirName("step-").ok());
  EXPECT_FALSE(ParseStepDirName("step-12a").ok());
  EXPECT_FALSE(ParseStepDirName("stage0-of-1.ckpt").ok());
}

TEST_F(StoreTest, VerifyNamesTheFileAndWhatIsWrongForEveryKindOfDamage) {
  const std::string dir = Commit(10);
  ASSERT_TRUE(VerifyCheckpoint(dir).ok());
  const std::string layer = dir + "/layer-0000.gtck", good = Read(layer);

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  Write(layer, flipped);
  Status s = VerifyCheckpoint(dir);
  EXPECT_EQ(s.code(), Code::kParseError);
  EXPECT_NE(s.message().find("layer-0000.gtck"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("SHA-256"), std::string::npos) << s.message();
  EXPECT_TRUE(VerifyCheckpoint(dir, /*hash=*/false).ok()) << "a flipped byte keeps the size";

  Write(layer, good.substr(0, good.size() - 7));
  s = VerifyCheckpoint(dir, false);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("layer-0000.gtck"), std::string::npos) << s.message();

  Write(layer, good + "x");
  EXPECT_NE(VerifyCheckpoint(dir).message().find("grown"), std::string::npos);

  fs::remove(layer);
  s = VerifyCheckpoint(dir);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("layer-0000.gtck is missing"), std::string::npos) << s.message();
  Write(layer, good);
  ASSERT_TRUE(VerifyCheckpoint(dir).ok());

  const std::string manifest = dir + "/manifest.json", m = Read(manifest);
  Write(manifest, m.substr(0, m.size() / 2));
  s = VerifyCheckpoint(dir);
  EXPECT_EQ(s.code(), Code::kParseError);
  EXPECT_NE(s.message().find("manifest.json is damaged"), std::string::npos) << s.message();
  Write(manifest, R"({"format":"greentrain-checkpoint-dir","version":1,"step":10,"created":"x",)"
                  R"("files":[{"name":"../../etc/passwd","bytes":1,"sha256":"00"}]})");
  EXPECT_NE(VerifyCheckpoint(dir).message().find("not a plain name"), std::string::npos);
  fs::remove(manifest);
  s = VerifyCheckpoint(dir);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("not a complete checkpoint"), std::string::npos) << s.message();
}

// Numbers a manifest may not hold (found while fuzzing it): each refused with the field named,
// never converted out of range.
TEST_F(StoreTest, ManifestNumbersOutOfRangeAreRefused) {
  auto manifest = [](const std::string& step, const std::string& bytes) {
    return "{\"format\": \"greentrain-checkpoint-dir\", \"version\": 1, \"step\": " + step +
           ", \"created\": \"2026-01-01T00:00:00Z\", \"files\": [{\"name\": \"a\", \"bytes\": " + bytes +
           ", \"sha256\": \"00\"}]}";
  };
  ASSERT_TRUE(ckpt::ParseManifest(manifest("4", "10"), "m.json").ok());
  for (const char* step : {"1e300", "-1e300", "1.5", "18446744073709551615"}) {
    auto m = ckpt::ParseManifest(manifest(step, "10"), "m.json");
    ASSERT_FALSE(m.ok()) << step;
    EXPECT_NE(m.status().message().find("step"), std::string::npos) << m.status().ToString();
  }
  for (const char* bytes : {"-1", "1e300", "-1.5"}) {
    auto m = ckpt::ParseManifest(manifest("4", bytes), "m.json");
    ASSERT_FALSE(m.ok()) << bytes;
    EXPECT_NE(m.status().message().find("bytes"), std::string::npos) << m.status().ToString();
  }
}

TEST_F(StoreTest, SiteEntriesRoundTripAndAreVerifiedOnlyWhereTheyAreKept) {
  const std::string dir = (root_ / StepDirName(5)).string();
  fs::create_directories(dir);
  Manifest m;
  m.step = 5;
  auto local = WriteFileDurably(dir + "/coordinator.json", "{}\n");
  ASSERT_TRUE(local.ok());
  m.files.push_back(*local);
  // The same layer file kept by two sites, neither in this directory.
  m.files.push_back({"layer-0000.gtck", 10, "ab", "west"});
  m.files.push_back({"layer-0000.gtck", 10, "ab", "east"});
  ASSERT_TRUE(WriteManifest(dir, m).ok());
  auto back = ReadManifest(dir);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->files.size(), 3u);
  EXPECT_EQ(back->files[0].site, "");
  EXPECT_EQ(back->files[1].site, "west");
  EXPECT_EQ(back->files[2].site, "east");
  EXPECT_TRUE(VerifyCheckpoint(dir).ok()) << "files kept by sites are not looked for here";
  EXPECT_EQ(Read(dir + "/" + kManifestName).find("\"site\": \"\""), std::string::npos)
      << "a local file carries no site";
  // Listed twice for one site is refused; the local file still verifies and can be damaged.
  m.files.push_back({"layer-0000.gtck", 10, "ab", "east"});
  auto twice = WriteManifest(dir, m);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.message().find("of site east listed twice"), std::string::npos) << twice.ToString();
  Write(dir + "/coordinator.json", "{}");
  EXPECT_FALSE(VerifyCheckpoint(dir).ok());
  EXPECT_EQ(SiteCheckpointsDir("/runs/r1", "east"), "/runs/r1/sites/east/checkpoints");
}

TEST_F(StoreTest, NewestValidFallsBackPastDamagedAndIncompleteOnes) {
  Commit(10);
  Commit(20);
  const std::string d30 = Commit(30);
  fs::create_directories(root_ / StepDirName(40));  // an interrupted write: no manifest
  std::vector<CheckpointEntry> rejected;
  auto best = NewestValid(root_.string(), &rejected);
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->step, 30);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].step, 40);

  std::string f = Read(d30 + "/coordinator.json");
  f[3] ^= 1;
  Write(d30 + "/coordinator.json", f);
  rejected.clear();
  best = NewestValid(root_.string(), &rejected);
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->step, 20);
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(rejected[1].step, 30);
  EXPECT_NE(rejected[1].status.message().find("coordinator.json"), std::string::npos);

  auto list = ListCheckpoints(root_.string(), true);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_TRUE(list[0].status.ok() && list[0].committed);
  EXPECT_FALSE(list[2].status.ok());
  EXPECT_FALSE(list[3].committed);
  EXPECT_TRUE(HasCheckpoints(root_.string()));
  EXPECT_FALSE(HasCheckpoints((root_ / "nothing").string()));
  EXPECT_EQ(NewestValid((root_ / "nothing").string(), nullptr).status().code(), Code::kNotFound);
}

TEST_F(StoreTest, PruneKeepsTheNewestKAndRemoveIncompleteCleansUp) {
  for (int s : {10, 20, 30, 40}) Commit(s);
  fs::create_directories(root_ / StepDirName(15));  // abandoned, older than the newest commit
  fs::create_directories(root_ / StepDirName(50));  // possibly in progress: kept by Prune
  Write((root_ / StepDirName(40) / "layer-0001.gtck.tmp.123").string(), "partial");
  std::vector<std::string> removed;
  ASSERT_TRUE(Prune(root_.string(), 3, &removed).ok());
  EXPECT_EQ(removed.size(), 2u);  // step 10 and the abandoned 15
  EXPECT_FALSE(fs::exists(root_ / StepDirName(10)));
  EXPECT_FALSE(fs::exists(root_ / StepDirName(15)));
  EXPECT_TRUE(fs::exists(root_ / StepDirName(20)));
  EXPECT_TRUE(fs::exists(root_ / StepDirName(50)));
  EXPECT_FALSE(Prune(root_.string(), 0).ok());

  removed.clear();
  ASSERT_TRUE(RemoveIncomplete(root_.string(), &removed).ok());
  EXPECT_FALSE(fs::exists(root_ / StepDirName(50)));
  EXPECT_FALSE(fs::exists(root_ / StepDirName(40) / "layer-0001.gtck.tmp.123"));
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_TRUE(VerifyCheckpoint((root_ / StepDirName(40)).string()).ok());
}

}  // namespace
}  // namespace gt::ckpt
