#include "comms/keyring.h"

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <zmq.h>

namespace gt {
namespace {

namespace fs = std::filesystem;

bool IsZ85Key(const std::string& k) {
  if (k.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, k.c_str()) != nullptr;
}

Status WriteKeyFile(const std::string& path, const std::string& key, mode_t mode) {
  std::error_code ec;
  fs::remove(path, ec);
  {
    std::ofstream out(path);
    if (!out) return IoError("cannot write '" + path + "'");
    if (chmod(path.c_str(), mode) != 0) return IoError("cannot chmod '" + path + "'");
    out << key << "\n";
    out.close();
    if (!out) return IoError("cannot write '" + path + "'");
  }
  return Status::Ok();
}

// One key from `path`: trailing whitespace dropped; `secret` files must not be readable by others.
Result<std::string> ReadKeyFile(const std::string& path, bool secret) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return NotFound("key file '" + path + "' does not exist (make the keys with `greentrain keys generate`)");
  if (secret && (st.st_mode & 077) != 0)
  {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    return InvalidArgument("secret key file '" + path + "' may be read by others (mode " + mode.str() +
                           "); chmod 600 it");
  }
  std::ifstream in(path);
  if (!in) return IoError("cannot read key file '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > 256) return ParseError("key file '" + path + "' is not a key (" + std::to_string(text.size()) + " bytes)");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (!IsZ85Key(text)) return ParseError("key file '" + path + "' does not hold a 40-character Z85 CURVE key");
  return text;
}

}  // namespace

Result<Keyring> GenerateKeyring(int workers) {
  if (workers < 1) return InvalidArgument("a keyring needs at least one worker, got " + std::to_string(workers));
  Keyring k;
  ASSIGN_OR_RETURN(k.coordinator, GenerateCurveKeyPair());
  k.workers.reserve(static_cast<size_t>(workers));
  for (int r = 0; r < workers; ++r) {
    ASSIGN_OR_RETURN(CurveKeyPair p, GenerateCurveKeyPair());
    k.workers.push_back(std::move(p));
  }
  return k;
}

std::string CoordinatorPublicKeyFile(const std::string& dir) { return dir + "/coordinator.pub"; }
std::string CoordinatorSecretKeyFile(const std::string& dir) { return dir + "/coordinator.key"; }
std::string WorkerPublicKeyFile(const std::string& dir, int rank) { return dir + "/worker-" + std::to_string(rank) + ".pub"; }
std::string WorkerSecretKeyFile(const std::string& dir, int rank) { return dir + "/worker-" + std::to_string(rank) + ".key"; }

Status WriteKeyring(const Keyring& keys, const std::string& dir, bool with_coordinator_secret, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::exists(CoordinatorPublicKeyFile(dir), ec))
    return InvalidArgument("'" + dir + "' already holds keys; remove it or choose another directory");
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create keys directory '" + dir + "': " + ec.message());
  if (chmod(dir.c_str(), 0700) != 0) return IoError("cannot chmod 700 '" + dir + "'");
  // Keys of an earlier, larger keyring in the same directory would be listed and accepted: gone.
  for (int r = static_cast<int>(keys.workers.size()); fs::exists(WorkerPublicKeyFile(dir, r), ec); ++r) {
    fs::remove(WorkerPublicKeyFile(dir, r), ec);
    fs::remove(WorkerSecretKeyFile(dir, r), ec);
  }
  if (!with_coordinator_secret) fs::remove(CoordinatorSecretKeyFile(dir), ec);
  RETURN_IF_ERROR(WriteKeyFile(CoordinatorPublicKeyFile(dir), keys.coordinator.public_key, 0644));
  if (with_coordinator_secret)
    RETURN_IF_ERROR(WriteKeyFile(CoordinatorSecretKeyFile(dir), keys.coordinator.secret_key, 0600));
  for (size_t r = 0; r < keys.workers.size(); ++r) {
    RETURN_IF_ERROR(WriteKeyFile(WorkerPublicKeyFile(dir, static_cast<int>(r)), keys.workers[r].public_key, 0644));
    RETURN_IF_ERROR(WriteKeyFile(WorkerSecretKeyFile(dir, static_cast<int>(r)), keys.workers[r].secret_key, 0600));
  }
  return Status::Ok();
}

Result<std::string> ReadPublicKeyFile(const std::string& path) { return ReadKeyFile(path, false); }

Result<Keyring> LoadCoordinatorKeys(const std::string& dir, int workers) {
  Keyring k;
  ASSIGN_OR_RETURN(k.coordinator.secret_key, ReadKeyFile(CoordinatorSecretKeyFile(dir), true));
  ASSIGN_OR_RETURN(k.coordinator.public_key, CurvePublicKey(k.coordinator.secret_key));
  for (int r = 0; r < workers; ++r) {
    CurveKeyPair p;
    ASSIGN_OR_RETURN(p.public_key, ReadKeyFile(WorkerPublicKeyFile(dir, r), false));
    k.workers.push_back(std::move(p));
  }
  return k;
}

Result<CurveKeyPair> LoadWorkerKeys(const std::string& dir, int rank, std::string* coordinator_public) {
  CurveKeyPair p;
  ASSIGN_OR_RETURN(p.secret_key, ReadKeyFile(WorkerSecretKeyFile(dir, rank), true));
  ASSIGN_OR_RETURN(p.public_key, CurvePublicKey(p.secret_key));
  ASSIGN_OR_RETURN(*coordinator_public, ReadKeyFile(CoordinatorPublicKeyFile(dir), false));
  return p;
}

}  // namespace gt
