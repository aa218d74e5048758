// Checkpoint files without torch: round trip, atomic replace, corruption and truncation rejected.
#include "worker/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace gt::worker {
namespace {

namespace fs = std::filesystem;

class CheckpointFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gt_ckpt_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string ReadBytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static void WriteBytes(const std::string& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  Status WriteSample(const std::string& path) {
    return WriteCheckpointFile(path, R"({"step":7})", {{"a", a_.data(), 3}, {"b", b_.data(), 2}});
  }

  fs::path dir_;
  std::vector<float> a_ = {1.5f, -2.0f, 3.25f};
  std::vector<float> b_ = {0.0f, 1e-3f};
};

TEST(Crc32cTest, KnownVector) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  // Continuation equals one pass.
  EXPECT_EQ(Crc32c("6789", 4, Crc32c("12345", 5)), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  EXPECT_EQ(Crc32cSoftware("123456789", 9), 0xE3069283u);
  // Hardware and software paths agree on every length and alignment.
  std::string buf(1000, '\0');
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 131 + 7);
  for (size_t off : {0, 1, 3})
    for (size_t len : {0, 1, 7, 8, 9, 63, 500, 997})
      EXPECT_EQ(Crc32c(buf.data() + off, len, 5), Crc32cSoftware(buf.data() + off, len, 5))
          << off << "/" << len;
}

TEST_F(CheckpointFileTest, RoundTrip) {
  const std::string p = Path("stage.ckpt");
  ASSERT_TRUE(WriteSample(p).ok());
  auto c = ReadCheckpointFile(p);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->meta_json, R"({"step":7})");
  ASSERT_EQ(c->sections.size(), 2u);
  ASSERT_NE(c->Find("a"), nullptr);
  EXPECT_EQ(c->Find("a")->data, a_);
  EXPECT_EQ(c->Find("b")->data, b_);
  EXPECT_EQ(c->Find("c"), nullptr);
  // Nothing but the checkpoint is left in the directory (no temporary files).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(CheckpointFileTest, ReplaceKeepsAValidFile) {
  const std::string p = Path("stage.ckpt");
  ASSERT_TRUE(WriteSample(p).ok());
  a_[0] = 99.f;
  ASSERT_TRUE(WriteSample(p).ok());
  auto c = ReadCheckpointFile(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Find("a")->data[0], 99.f);
}

TEST_F(CheckpointFileTest, TruncatedFilesAreRejectedAtEveryLength) {
  const std::string p = Path("stage.ckpt");
  ASSERT_TRUE(WriteSample(p).ok());
  const std::string full = ReadBytes(p);
  for (size_t len :
       {size_t{0}, size_t{10}, size_t{24}, size_t{40}, full.size() - 20, full.size() - 1}) {
    WriteBytes(p, full.substr(0, len));
    auto c = ReadCheckpointFile(p);
    ASSERT_FALSE(c.ok()) << "length " << len;
    EXPECT_EQ(c.status().code(), Code::kParseError) << len;
    const std::string& msg = c.status().message();
    EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                msg.find("corrupt") != std::string::npos || msg.find("magic") != std::string::npos)
        << msg;
    EXPECT_NE(msg.find(p), std::string::npos) << "message must name the file: " << msg;
  }
  // Cut inside the payload: explicitly reported as truncated.
  WriteBytes(p, full.substr(0, full.size() - 4));
  auto c = ReadCheckpointFile(p);
  EXPECT_NE(c.status().message().find("truncated"), std::string::npos) << c.status().message();
}

TEST_F(CheckpointFileTest, FlippedBytesAreRejected) {
  const std::string p = Path("stage.ckpt");
  ASSERT_TRUE(WriteSample(p).ok());
  const std::string full = ReadBytes(p);
  // In the payload (last byte), in the manifest (byte 30), in the magic (byte 0).
  for (size_t pos : {full.size() - 1, full.size() - 13, size_t{30}, size_t{0}}) {
    std::string bad = full;
    bad[pos] ^= 0x10;
    WriteBytes(p, bad);
    auto c = ReadCheckpointFile(p);
    ASSERT_FALSE(c.ok()) << "flip at " << pos;
    EXPECT_EQ(c.status().code(), Code::kParseError);
  }
  std::string bad = full;
  bad[full.size() - 1] ^= 0x10;
  WriteBytes(p, bad);
  EXPECT_NE(ReadCheckpointFile(p).status().message().find("checksum mismatch in section 'b'"),
            std::string::npos);
  WriteBytes(p, full + "x");
  EXPECT_FALSE(ReadCheckpointFile(p).ok());
}

TEST_F(CheckpointFileTest, ErrorsNameTheProblem) {
  EXPECT_EQ(ReadCheckpointFile(Path("missing.ckpt")).status().code(), Code::kNotFound);
  Status s = WriteCheckpointFile(Path("no/such/dir/x.ckpt"), "{}", {{"a", a_.data(), 3}});
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("no/such/dir"), std::string::npos) << s.message();
  EXPECT_EQ(WriteCheckpointFile(Path("x.ckpt"), "not json", {}).code(), Code::kInvalidArgument);
  EXPECT_EQ(WriteCheckpointFile(Path("x.ckpt"), "[1]", {}).code(), Code::kInvalidArgument);
  EXPECT_EQ(
      WriteCheckpointFile(Path("x.ckpt"), "{}", {{"a", a_.data(), 3}, {"a", b_.data(), 2}}).code(),
      Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(Path("x.ckpt")));
  WriteBytes(Path("junk.ckpt"), std::string(100, 'j'));
  EXPECT_NE(
      ReadCheckpointFile(Path("junk.ckpt")).status().message().find("not a greentrain checkpoint"),
      std::string::npos);
}

}  // namespace
}  // namespace gt::worker
