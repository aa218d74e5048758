// The on-disk form of a run's checkpoints, shared by the worker (writes layer files), the coordinator
// (commits a step with its manifest, resumes from the newest valid one) and `greentrain checkpoint`.
//
// Layout: <run_dir>/checkpoints/step-<NNNNNN>/ per checkpoint, holding any plain files (the worker's
// layer files, the coordinator's state) and, written last, manifest.json:
//   {"format": "greentrain-checkpoint-dir", "version": 1, "step": N, "created": ISO time,
//    "files": [{"name", "bytes", "sha256"[, "site"]}, ...]}
// A directory without a manifest that parses is not a checkpoint (an interrupted write). A checkpoint
// is valid when every listed file exists with exactly its listed size and SHA-256.
//
// Per-site storage (runtime.checkpoint_storage "site"): the coordinator's manifest also lists the
// layer files each site keeps in its own storage, <run_dir>/sites/<site>/checkpoints/step-N/, with
// their "site"; such entries are not in the coordinator's directory and are not verified there (the
// site's own manifest, written by one of its ranks after the commit, lists them for verification).
// The same file name may then appear once per site.
//
// Crash safety: every file is written under "<name>.tmp.<pid>", fsynced, renamed into place, and the
// directory fsynced (DurableWriter); the manifest the same way, after every file it lists is durable.
// After a crash a step directory holds either a complete checkpoint or no manifest.
//
// Threads: free functions and DurableWriter are not shared between threads; distinct directories may
// be used concurrently. Nothing read from disk throws: errors are Status values naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gt::ckpt {

// SHA-256 over a byte stream (OpenSSL). HexDigest finalises; call it once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  std::string HexDigest();  // 64 lower-case hex digits

 private:
  void* ctx_;
};

// One file of a checkpoint as the manifest lists it. `name` is a plain file name (no '/'). `site`:
// empty for a file in the manifest's directory, else the site whose storage holds it.
struct FileEntry {
  std::string name;
  uint64_t bytes = 0;
  std::string sha256;
  std::string site;
};

// Writes one file crash-safely: bytes go to "<path>.tmp.<pid>" (hashed on the way); Commit fsyncs it,
// renames it to `path` and fsyncs the directory. Destroying an uncommitted writer removes the
// temporary file. Errors name the path and suggest the cause (disk full, permissions).
class DurableWriter {
 public:
  static Result<DurableWriter> Create(const std::string& path);
  DurableWriter(DurableWriter&& other) noexcept;
  DurableWriter& operator=(DurableWriter&&) = delete;
  ~DurableWriter();
  // Appends; buffers of 256 KiB or more are hashed on a helper thread while they are written.
  Status Write(const void* data, size_t n);
  // The entry (basename, size, SHA-256) of the file now at `path`. With fsync_dir false the caller
  // fsyncs the directory itself (once for many files) before relying on the file being there.
  Result<FileEntry> Commit(bool fsync_dir = true);

 private:
  DurableWriter(std::string path, std::string tmp, int fd);
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  Sha256 hash_;
};

// DurableWriter in one call.
Result<FileEntry> WriteFileDurably(const std::string& path, const std::string& bytes);
// fsync of a directory (after creating or renaming entries in it).
Status FsyncDir(const std::string& dir);
// Size and SHA-256 of an existing file.
Result<FileEntry> HashFile(const std::string& path);

constexpr const char* kManifestName = "manifest.json";

// <run_dir>/checkpoints.
std::string CheckpointsDir(const std::string& run_dir);
// <run_dir>/sites/<site>/checkpoints: a site's own storage under runtime.checkpoint_storage "site".
std::string SiteCheckpointsDir(const std::string& run_dir, const std::string& site);
// "step-000400" (six digits at least, so that names sort by step).
std::string StepDirName(int64_t step);
// The step of a "step-N" name; an error for anything else.
Result<int64_t> ParseStepDirName(const std::string& name);
// "layer-0003.gtck": the file of one model layer (worker/layer_state.h writes it).
std::string LayerFileName(int layer);
// The layer of such a name, or -1 for any other name.
int ParseLayerFileName(const std::string& name);

struct Manifest {
  int64_t step = 0;
  std::string created;  // ISO-8601 wall-clock time of the commit
  std::vector<FileEntry> files;
  uint64_t total_bytes() const;
};

// Commits `dir`: writes manifest.json (atomically, last). Every listed file must be a plain name.
Status WriteManifest(const std::string& dir, const Manifest& manifest);
// Parses `dir`/manifest.json; NotFound when it is missing, ParseError when malformed.
Result<Manifest> ReadManifest(const std::string& dir);
// ReadManifest on the manifest's text already in memory; `path` names it in errors.
Result<Manifest> ParseManifest(const std::string& text, const std::string& path);

// OK when `dir` holds a manifest and every listed file kept there (no site) matches its size and (when `hash`) SHA-256.
// Otherwise the error names the file and what is wrong (missing, size, checksum, manifest).
Status VerifyCheckpoint(const std::string& dir, bool hash = true);

struct CheckpointEntry {
  std::string dir;    // full path
  std::string name;   // step-NNNNNN
  int64_t step = -1;
  bool committed = false;  // has a manifest that parses
  Status status;           // VerifyCheckpoint's verdict (OK, or what is wrong)
  uint64_t bytes = 0;      // from the manifest
  size_t files = 0;
};

// Every step-* directory under `root`, ascending by step (an absent root gives an empty list).
// `hash`: verify SHA-256 (slow for big checkpoints) or only presence and sizes.
std::vector<CheckpointEntry> ListCheckpoints(const std::string& root, bool hash);
// True if `root` holds any committed checkpoint.
bool HasCheckpoints(const std::string& root);
// The newest checkpoint that verifies; newer damaged or uncommitted ones go to `rejected` (may be
// null) with their status. NotFound when there is none.
Result<CheckpointEntry> NewestValid(const std::string& root, std::vector<CheckpointEntry>* rejected);
// Retention, called after a commit: keeps the newest `keep` (>= 1) committed checkpoints, removes
// older committed ones and any uncommitted directory older than the newest committed one.
Status Prune(const std::string& root, int keep, std::vector<std::string>* removed = nullptr);
// Start-up clean-up: removes uncommitted step directories and orphaned temporary files ("*.tmp.*")
// left by an interrupted writer. Call only when no writer is active.
Status RemoveIncomplete(const std::string& root, std::vector<std::string>* removed = nullptr);

}  // namespace gt::ckpt
