// Checkpoint files: named float32 sections plus a small JSON manifest with checksums, written
// atomically. No torch. Stage::SaveCheckpoint/LoadCheckpoint (worker/model.h) build on this.
//
// File layout (little-endian):
//   bytes 0..7    magic "GTCKPT1\n"
//   bytes 8..15   uint64 manifest length M
//   bytes 16..19  uint32 CRC-32C of the manifest
//   bytes 20..23  zero
//   24..24+M      manifest JSON: {"format":"greentrain-checkpoint","version":1,"meta":{...},
//                 "payload_bytes":N,
//                 "sections":[{"name":..,"offset":..,"count":..,"crc32c":..}, ...]}
//                 (the sections tile the payload, so their checksums cover every byte)
//   then N bytes  payload: the sections' floats back to back (offsets relative to payload start)
//
// Contract:
// - WriteCheckpointFile is atomic (checkpoint/store.h DurableWriter): it writes "<path>.tmp.<pid>",
//   fsyncs it, renames it over `path` and fsyncs the directory. After a crash, `path` is either the
//   previous complete file or the new complete file, never a mix. On error the temporary file is
//   removed. `written` (optional) receives the file's size and SHA-256 for a manifest. With
//   fsync_dir false the caller fsyncs the directory once after writing several files.
// - ReadCheckpointFile verifies the magic, the manifest checksum, the payload length (truncation)
//   and every section's checksum, and returns a kParseError naming the file and what is wrong
//   otherwise. It never returns partially valid data.
// Thread-safety: free functions; distinct paths may be used concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/store.h"
#include "common/status.h"

namespace gt::worker {

// A section to write: `count` floats at `data` (borrowed for the duration of the call).
struct SectionView {
  std::string name;
  const float* data = nullptr;
  int64_t count = 0;
};

struct CheckpointSection {
  std::string name;
  std::vector<float> data;
};

struct CheckpointContents {
  std::string meta_json;  // the "meta" object, serialised
  std::vector<CheckpointSection> sections;
  // The section called `name`, or nullptr.
  const CheckpointSection* Find(const std::string& name) const;
};

// `meta_json` must be a JSON object (it is embedded in the manifest). Section names must be unique.
Status WriteCheckpointFile(const std::string& path, const std::string& meta_json,
                           const std::vector<SectionView>& sections, ckpt::FileEntry* written = nullptr,
                           bool fsync_dir = true);

Result<CheckpointContents> ReadCheckpointFile(const std::string& path);

// CRC-32C (Castagnoli); `crc` continues a previous value. Uses the SSE4.2 instruction when the CPU
// has it, else Crc32cSoftware (same results).
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t Crc32cSoftware(const void* data, size_t n, uint32_t crc = 0);

}  // namespace gt::worker
