#include "worker/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <nlohmann/json.hpp>

namespace gt::worker {
namespace {

constexpr char kMagic[8] = {'G', 'T', 'C', 'K', 'P', 'T', '1', '\n'};
constexpr size_t kHeaderBytes = 24;

struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t;
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};
const CrcTables& Tables() {
  static const CrcTables tables;
  return tables;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

Status ReadAll(int fd, void* data, size_t n, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError(Errno("checkpoint: cannot read", path));
    }
    if (r == 0) return ParseError("checkpoint " + path + " is truncated (unexpected end of file)");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status Corrupt(const std::string& path, const std::string& what) {
  return ParseError("checkpoint " + path + " is corrupt: " + what +
                    "; it cannot be used (restore from an earlier checkpoint)");
}

}  // namespace

uint32_t Crc32cSoftware(const void* data, size_t n, uint32_t crc) {
  const auto& t = Tables().t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

#if defined(__x86_64__)
namespace {
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const void* data, size_t n, uint32_t crc) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
}  // namespace
#endif

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
#if defined(__x86_64__)
  if (kHaveSse42) return Crc32cSse42(data, n, crc);
#endif
  return Crc32cSoftware(data, n, crc);
}

const CheckpointSection* CheckpointContents::Find(const std::string& name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

Status WriteCheckpointFile(const std::string& path, const std::string& meta_json,
                           const std::vector<SectionView>& sections, ckpt::FileEntry* written,
                           bool fsync_dir) {
  nlohmann::json manifest;
  try {
    manifest["meta"] = nlohmann::json::parse(meta_json);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument("checkpoint " + path + ": meta is not valid JSON: " + e.what());
  }
  if (!manifest["meta"].is_object())
    return InvalidArgument("checkpoint " + path + ": meta must be a JSON object");
  manifest["format"] = "greentrain-checkpoint";
  manifest["version"] = 1;
  std::set<std::string> names;
  uint64_t offset = 0;
  nlohmann::json secs = nlohmann::json::array();
  for (const auto& s : sections) {
    if (!names.insert(s.name).second)
      return InvalidArgument("checkpoint " + path + ": duplicate section name '" + s.name + "'");
    if (s.count < 0 || (s.count > 0 && s.data == nullptr))
      return InvalidArgument("checkpoint " + path + ": section '" + s.name + "' has no data");
    const size_t bytes = static_cast<size_t>(s.count) * sizeof(float);
    const uint32_t crc = Crc32c(s.data, bytes);
    secs.push_back({{"name", s.name}, {"offset", offset}, {"count", s.count}, {"crc32c", crc}});
    offset += bytes;
  }
  manifest["sections"] = secs;
  manifest["payload_bytes"] = offset;
  const std::string m = manifest.dump();

  char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  const uint64_t mlen = m.size();
  const uint32_t mcrc = Crc32c(m.data(), m.size());
  std::memcpy(header + 8, &mlen, 8);
  std::memcpy(header + 16, &mcrc, 4);

  ASSIGN_OR_RETURN(ckpt::DurableWriter w, ckpt::DurableWriter::Create(path));
  RETURN_IF_ERROR(w.Write(header, kHeaderBytes));
  RETURN_IF_ERROR(w.Write(m.data(), m.size()));
  for (const auto& s : sections)
    RETURN_IF_ERROR(w.Write(s.data, static_cast<size_t>(s.count) * sizeof(float)));
  ASSIGN_OR_RETURN(ckpt::FileEntry entry, w.Commit(fsync_dir));
  if (written) *written = std::move(entry);
  return Status::Ok();
}

Result<CheckpointContents> ReadCheckpointFile(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT) return NotFound("checkpoint " + path + " does not exist");
    return IoError(Errno("checkpoint: cannot open", path));
  }
  struct stat sb;
  if (::fstat(f.fd, &sb) != 0) return IoError(Errno("checkpoint: cannot stat", path));
  const uint64_t file_size = static_cast<uint64_t>(sb.st_size);
  if (file_size < kHeaderBytes)
    return ParseError("checkpoint " + path + " is truncated: " + std::to_string(file_size) +
                      " bytes, shorter than the 24-byte header; it was not completely written");
  char header[kHeaderBytes];
  RETURN_IF_ERROR(ReadAll(f.fd, header, kHeaderBytes, path));
  if (std::memcmp(header, kMagic, 8) != 0)
    return ParseError("checkpoint " + path + " is not a greentrain checkpoint (bad magic bytes)");
  uint64_t mlen;
  uint32_t mcrc;
  std::memcpy(&mlen, header + 8, 8);
  std::memcpy(&mcrc, header + 16, 4);
  if (mlen > file_size - kHeaderBytes)
    return ParseError("checkpoint " + path + " is truncated: manifest of " + std::to_string(mlen) +
                      " bytes announced, only " + std::to_string(file_size - kHeaderBytes) +
                      " bytes follow the header");
  std::string m(mlen, '\0');
  RETURN_IF_ERROR(ReadAll(f.fd, m.data(), mlen, path));
  if (Crc32c(m.data(), m.size()) != mcrc) return Corrupt(path, "manifest checksum mismatch");

  CheckpointContents out;
  uint64_t payload_bytes = 0;
  struct Sec {
    std::string name;
    uint64_t offset, count;
    uint32_t crc;
  };
  std::vector<Sec> secs;
  try {
    nlohmann::json j = nlohmann::json::parse(m);
    if (j.at("format").get<std::string>() != "greentrain-checkpoint" ||
        j.at("version").get<int>() != 1)
      return ParseError("checkpoint " + path + ": unsupported format/version " +
                        j.at("format").dump() + "/" + j.at("version").dump());
    out.meta_json = j.at("meta").dump();
    payload_bytes = j.at("payload_bytes").get<uint64_t>();
    for (const auto& s : j.at("sections"))
      secs.push_back({s.at("name").get<std::string>(), s.at("offset").get<uint64_t>(),
                      s.at("count").get<uint64_t>(), s.at("crc32c").get<uint32_t>()});
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(path, std::string("manifest is not valid: ") + e.what());
  }
  const uint64_t have = file_size - kHeaderBytes - mlen;
  if (have < payload_bytes)
    return ParseError("checkpoint " + path + " is truncated: payload has " + std::to_string(have) +
                      " of " + std::to_string(payload_bytes) +
                      " bytes; it was not completely written (restore from an earlier checkpoint)");
  if (have > payload_bytes)
    return Corrupt(path,
                   std::to_string(have - payload_bytes) + " unexpected bytes after the payload");

  uint64_t expect_offset = 0;
  for (const auto& s : secs) {
    if (s.offset != expect_offset || s.count > (payload_bytes - s.offset) / sizeof(float))
      return Corrupt(path, "section '" + s.name + "' lies outside the payload");
    expect_offset += s.count * sizeof(float);
  }
  if (expect_offset != payload_bytes) return Corrupt(path, "sections do not cover the payload");

  for (const auto& s : secs) {
    CheckpointSection cs;
    cs.name = s.name;
    cs.data.resize(s.count);
    RETURN_IF_ERROR(ReadAll(f.fd, cs.data.data(), s.count * sizeof(float), path));
    const size_t bytes = s.count * sizeof(float);
    if (Crc32c(cs.data.data(), bytes) != s.crc)
      return Corrupt(path, "checksum mismatch in section '" + s.name + "'");
    out.sections.push_back(std::move(cs));
  }
  return out;
}

}  // namespace gt::worker
