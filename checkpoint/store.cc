#include "checkpoint/store.h"
#include "common/strict_json.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/time.h"

namespace gt::ckpt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Errno(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

std::string DirOf(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

bool PlainName(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos && n.find('\0') == std::string::npos;
}

bool IsTemporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

}  // namespace

// ---- Sha256 ----

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(const void* data, size_t n) {
  if (n > 0) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

// ---- DurableWriter ----

DurableWriter::DurableWriter(std::string path, std::string tmp, int fd)
    : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}

DurableWriter::DurableWriter(DurableWriter&& o) noexcept
    : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(o.fd_), bytes_(o.bytes_) {
  // The hash state cannot move; a writer is moved only before its first Write (from Create).
  o.fd_ = -1;
  o.tmp_.clear();
}

DurableWriter::~DurableWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

Result<DurableWriter> DurableWriter::Create(const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(Errno("cannot create", tmp) + " (does the directory exist and is it writable?)");
  return DurableWriter(path, tmp, fd);
}

Status DurableWriter::Write(const void* data, size_t n) {
  if (fd_ < 0) return Internal("DurableWriter: write to '" + path_ + "' after commit or failure");
  // A large buffer is hashed on a second thread while this one writes it (SHA-256 runs at about the
  // disk's rate, so doing both in turn would halve the throughput).
  std::thread hasher;
  if (n >= (size_t{1} << 18))
    hasher = std::thread([this, data, n] { hash_.Update(data, n); });
  else
    hash_.Update(data, n);
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{hasher};
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(Errno("cannot write", tmp_) + " (disk full?)");
    }
    p += w;
    n -= static_cast<size_t>(w);
    bytes_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Result<FileEntry> DurableWriter::Commit(bool fsync_dir) {
  if (fd_ < 0) return Internal("DurableWriter: '" + path_ + "' committed twice");
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    ::close(fd);
    return IoError(Errno("fsync failed on", tmp_));
  }
  if (::close(fd) != 0) return IoError(Errno("close failed on", tmp_));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return IoError(Errno("cannot rename " + tmp_ + " to", path_));
  tmp_.clear();
  if (fsync_dir) RETURN_IF_ERROR(FsyncDir(DirOf(path_)));
  return FileEntry{fs::path(path_).filename().string(), bytes_, hash_.HexDigest(), std::string()};
}

Result<FileEntry> WriteFileDurably(const std::string& path, const std::string& bytes) {
  ASSIGN_OR_RETURN(DurableWriter w, DurableWriter::Create(path));
  RETURN_IF_ERROR(w.Write(bytes.data(), bytes.size()));
  return w.Commit();
}

Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(Errno("cannot open directory", dir) + " to fsync it");
  const int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return IoError(Errno("fsync failed on directory", dir));
  return Status::Ok();
}

Result<FileEntry> HashFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("'" + path + "' is missing");
    return IoError(Errno("cannot open", path));
  }
  Sha256 h;
  std::vector<char> buf(size_t{4} << 20);
  uint64_t total = 0;
  while (true) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return IoError(Errno("cannot read", path));
    }
    if (r == 0) break;
    h.Update(buf.data(), static_cast<size_t>(r));
    total += static_cast<uint64_t>(r);
  }
  ::close(fd);
  return FileEntry{fs::path(path).filename().string(), total, h.HexDigest(), std::string()};
}

// ---- names ----

std::string CheckpointsDir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }
std::string SiteCheckpointsDir(const std::string& run_dir, const std::string& site) {
  return (fs::path(run_dir) / "sites" / site / "checkpoints").string();
}

std::string LayerFileName(int layer) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "layer-%04d.gtck", layer);
  return buf;
}

int ParseLayerFileName(const std::string& name) {
  int layer = -1, used = 0;
  if (std::sscanf(name.c_str(), "layer-%d.gtck%n", &layer, &used) != 1 || used != static_cast<int>(name.size()) ||
      layer < 0)
    return -1;
  return layer;
}

std::string StepDirName(int64_t step) {
  std::string digits = std::to_string(step);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return "step-" + digits;
}

Result<int64_t> ParseStepDirName(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() < 6 || name.size() > 24)
    return InvalidArgument("'" + name + "' is not a step-N checkpoint directory name");
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return InvalidArgument("'" + name + "' is not a step-N checkpoint directory name");
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

// ---- manifest ----

uint64_t Manifest::total_bytes() const {
  uint64_t t = 0;
  for (const auto& f : files) t += f.bytes;
  return t;
}

Status WriteManifest(const std::string& dir, const Manifest& m) {
  json files = json::array();
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& f : m.files) {
    if (!PlainName(f.name) || f.name == kManifestName)
      return InvalidArgument("checkpoint " + dir + ": file name '" + f.name + "' cannot be listed in a manifest");
    if (!names.insert({f.site, f.name}).second)
      return InvalidArgument("checkpoint " + dir + ": file '" + f.name + "'" +
                             (f.site.empty() ? std::string() : " of site " + f.site) + " listed twice");
    json e = {{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}};
    if (!f.site.empty()) e["site"] = f.site;
    files.push_back(std::move(e));
  }
  json j = {{"format", "greentrain-checkpoint-dir"}, {"version", 1}, {"step", m.step},
            {"created", m.created.empty() ? FormatIsoTime(std::time(nullptr)) : m.created}, {"files", files}};
  ASSIGN_OR_RETURN(FileEntry e, WriteFileDurably((fs::path(dir) / kManifestName).string(), j.dump(1) + "\n"));
  (void)e;
  return Status::Ok();
}

Result<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return NotFound(path + " is missing: not a complete checkpoint (the write was interrupted before its commit)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseManifest(ss.str(), path);
}

Result<Manifest> ParseManifest(const std::string& text, const std::string& path) {
  Manifest m;
  auto parsed = ParseStrictJson(text, "its text");
  if (!parsed.ok()) return ParseError(path + " is damaged (" + parsed.status().message() + ")");
  try {
    const json& j = *parsed;
    const std::optional<int> version = WholeNumberAs<int>(j.at("version"));
    if (j.at("format").get<std::string>() != "greentrain-checkpoint-dir" || version != 1)
      return ParseError(path + ": unsupported format " + j.at("format").dump() + " version " + j.at("version").dump());
    const std::optional<int64_t> step = WholeNumberAs<int64_t>(j.at("step"));
    if (!step) return ParseError(path + ": step " + j.at("step").dump() + " is not a whole number");
    m.step = *step;
    m.created = j.at("created").get<std::string>();
    for (const auto& f : j.at("files")) {
      const std::string name = f.at("name").get<std::string>();
      const std::optional<uint64_t> bytes = WholeNumberAs<uint64_t>(f.at("bytes"));
      if (!bytes)
        return ParseError(path + ": file '" + name + "' has a size of " + f.at("bytes").dump() +
                          " bytes, not a whole number of bytes");
      FileEntry e{name, *bytes, f.at("sha256").get<std::string>(), f.value("site", std::string())};
      if (!PlainName(e.name)) return ParseError(path + ": file name '" + e.name + "' is not a plain name");
      m.files.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    return ParseError(path + " is damaged (not a valid manifest: " + e.what() + ")");
  }
  return m;
}

Status VerifyCheckpoint(const std::string& dir, bool hash) {
  ASSIGN_OR_RETURN(Manifest m, ReadManifest(dir));
  for (const auto& f : m.files) {
    if (!f.site.empty()) continue;  // kept in that site's storage (its own manifest lists it)
    const std::string path = (fs::path(dir) / f.name).string();
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) return NotFound(path + " is missing (listed in the manifest with " + std::to_string(f.bytes) + " bytes)");
    if (size != f.bytes)
      return ParseError(path + " has " + std::to_string(size) + " bytes, the manifest lists " +
                        std::to_string(f.bytes) + (size < f.bytes ? " (truncated)" : " (grown)"));
    if (!hash) continue;
    ASSIGN_OR_RETURN(FileEntry got, HashFile(path));
    if (got.sha256 != f.sha256)
      return ParseError(path + " is damaged: SHA-256 " + got.sha256.substr(0, 16) + "... differs from the manifest's " +
                        f.sha256.substr(0, 16) + "...");
  }
  return Status::Ok();
}

// ---- listing and retention ----

std::vector<CheckpointEntry> ListCheckpoints(const std::string& root, bool hash) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    auto step = ParseStepDirName(name);
    if (!step.ok()) continue;
    CheckpointEntry e;
    e.dir = it->path().string();
    e.name = name;
    e.step = *step;
    auto m = ReadManifest(e.dir);
    e.committed = m.ok();
    if (m.ok()) {
      e.bytes = m->total_bytes();
      e.files = m->files.size();
      if (m->step != e.step)
        e.status = ParseError(e.dir + "/manifest.json names step " + std::to_string(m->step) + ", the directory step " +
                              std::to_string(e.step));
      else
        e.status = VerifyCheckpoint(e.dir, hash);
    } else {
      e.status = m.status();
    }
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

bool HasCheckpoints(const std::string& root) {
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (ParseStepDirName(it->path().filename().string()).ok() && fs::exists(it->path() / kManifestName, ec)) return true;
  return false;
}

Result<CheckpointEntry> NewestValid(const std::string& root, std::vector<CheckpointEntry>* rejected) {
  std::vector<CheckpointEntry> all = ListCheckpoints(root, /*hash=*/false);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->status.ok()) it->status = VerifyCheckpoint(it->dir, /*hash=*/true);
    if (it->status.ok()) return *it;
    if (rejected) rejected->push_back(*it);
  }
  return NotFound("no valid checkpoint under " + root);
}

Status Prune(const std::string& root, int keep, std::vector<std::string>* removed) {
  if (keep < 1) return InvalidArgument("Prune: keep must be >= 1");
  std::vector<CheckpointEntry> all = ListCheckpoints(root, /*hash=*/false);
  int committed_seen = 0;
  int64_t newest_committed = -1;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    bool drop = false;
    if (it->committed) {
      if (newest_committed < 0) newest_committed = it->step;
      drop = ++committed_seen > keep;
    } else {
      drop = newest_committed >= 0 && it->step < newest_committed;
    }
    if (!drop) continue;
    std::error_code ec;
    fs::remove_all(it->dir, ec);
    if (ec) return IoError("cannot remove old checkpoint " + it->dir + ": " + ec.message());
    if (removed) removed->push_back(it->dir);
  }
  return Status::Ok();
}

Status RemoveIncomplete(const std::string& root, std::vector<std::string>* removed) {
  std::vector<CheckpointEntry> all = ListCheckpoints(root, /*hash=*/false);
  std::error_code ec;
  for (const auto& e : all) {
    if (!e.committed) {
      fs::remove_all(e.dir, ec);
      if (ec) return IoError("cannot remove incomplete checkpoint " + e.dir + ": " + ec.message());
      if (removed) removed->push_back(e.dir);
      continue;
    }
    for (fs::directory_iterator it(e.dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!IsTemporary(it->path().filename().string())) continue;
      const std::string p = it->path().string();
      std::error_code ec2;
      fs::remove(p, ec2);
      if (removed && !ec2) removed->push_back(p);
    }
  }
  return Status::Ok();
}

}  // namespace gt::ckpt
