// libFuzzer target: checkpoint manifests (checkpoint/store.h): ParseManifest on arbitrary text, then
// the same text as <root>/step-000007/manifest.json next to two real files, through
// VerifyCheckpoint (sizes, and SHA-256 for a quarter of the inputs) and ListCheckpoints (step check,
// sizes), as `greentrain checkpoint verify|list` and a resuming coordinator read it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint/store.h"
#include "fuzz_util.h"

namespace {

namespace fs = std::filesystem;

struct TempRoot {
  std::string root, step_dir;
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "gt-fuzz-manifest-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    root = tmpl;
    step_dir = root + "/" + gt::ckpt::StepDirName(7);
    fs::create_directories(step_dir);
    // Two files a manifest can name: "layer-0.bin" (5 bytes, "hello") and an empty "state.json".
    std::ofstream(step_dir + "/layer-0.bin", std::ios::binary) << "hello";
    std::ofstream(step_dir + "/state.json", std::ios::binary);
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

TempRoot* g_root = nullptr;

void RemoveRoot() {
  delete g_root;
  g_root = nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_root = new TempRoot();
  std::atexit(RemoveRoot);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  GtFuzzNoThrow("checkpoint manifest", [&] {
    auto m = gt::ckpt::ParseManifest(text, "fuzz/manifest.json");
    if (m.ok()) {
      for (const auto& f : m->files) {
        GT_FUZZ_CHECK(!f.name.empty() && f.name.find('/') == std::string::npos && f.name != "." && f.name != "..",
                      "listed names are plain file names");
      }
      (void)m->total_bytes();
    } else {
      GT_FUZZ_CHECK(m.status().code() == gt::Code::kParseError, "a bad manifest is a ParseError");
    }
    {
      std::ofstream out(g_root->step_dir + "/" + gt::ckpt::kManifestName, std::ios::binary | std::ios::trunc);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
    }
    auto read = gt::ckpt::ReadManifest(g_root->step_dir);
    GT_FUZZ_CHECK(read.ok() == m.ok(), "reading the file agrees with parsing the text");
    // Hashing allocates HashFile's 4 MiB buffer per file, a slow fresh mapping under ASan: only inputs
    // whose size is a multiple of 4 (a deterministic quarter) verify checksums too.
    const bool hash = (size & 3) == 0;
    const gt::Status verified = gt::ckpt::VerifyCheckpoint(g_root->step_dir, hash);
    if (!m.ok()) GT_FUZZ_CHECK(!verified.ok(), "an unparsable manifest does not verify");
    const auto list = gt::ckpt::ListCheckpoints(g_root->root, /*hash=*/false);
    GT_FUZZ_CHECK(list.size() == 1 && list[0].step == 7, "the one step directory is listed");
    GT_FUZZ_CHECK(list[0].committed == m.ok(), "committed exactly when the manifest parses");
    if (list[0].status.ok()) GT_FUZZ_CHECK(m.ok() && m->step == 7, "a listed-valid checkpoint names its step");
    if (verified.ok() && m->step == 7) GT_FUZZ_CHECK(list[0].status.ok(), "a verified checkpoint is listed valid");
    if (!hash && list[0].status.ok()) GT_FUZZ_CHECK(verified.ok(), "both check the same sizes");
  });
  return 0;
}
