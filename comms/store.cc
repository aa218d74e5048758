#include "comms/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace gt {

Status MemoryStore::Set(const std::string& key, const std::string& value) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    map_[key] = value;
  }
  cv_.notify_all();
  return Status::Ok();
}

Result<std::string> MemoryStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  bool found = cv_.wait_for(lock, timeout, [&] { return map_.count(key) > 0; });
  if (!found) {
    return Timeout("store key '" + key + "' was not set within " + std::to_string(timeout.count()) +
                   " ms; a group member did not arrive (check that all members use the same generation)");
  }
  return map_[key];
}

namespace {

Status MakeDirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return IoError("cannot create store directory '" + cur + "': " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<FileStore>> FileStore::Open(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("file store directory is empty");
  RETURN_IF_ERROR(MakeDirs(dir));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return IoError("file store path '" + dir + "' is not a directory");
  }
  return std::shared_ptr<FileStore>(new FileStore(dir));
}

std::string FileStore::PathFor(const std::string& key) const {
  static const char* kHex = "0123456789abcdef";
  std::string name;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      name += static_cast<char>(c);
    } else {
      name += '%';
      name += kHex[c >> 4];
      name += kHex[c & 15];
    }
  }
  return dir_ + "/" + name;
}

Status FileStore::Set(const std::string& key, const std::string& value) {
  static std::atomic<uint64_t> counter{0};
  const std::string path = PathFor(key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError("cannot write store file '" + tmp + "': " + std::strerror(errno));
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    if (!out) return IoError("short write to store file '" + tmp + "'");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("cannot rename store file to '" + path + "': " + std::strerror(err));
  }
  return Status::Ok();
}

Result<std::string> FileStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  const std::string path = PathFor(key);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  while (true) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Timeout("store key '" + key + "' (file '" + path + "') was not set within " +
                     std::to_string(timeout.count()) +
                     " ms; a group member did not arrive (check that all members use the same generation)");
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(5)) pause *= 2;
  }
}

}  // namespace gt
