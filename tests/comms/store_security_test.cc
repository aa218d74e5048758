// The rendezvous store's security and limits (comms/zmq_store.h) and the key files
// (comms/keyring.h): only allow-listed CURVE clients are served; plaintext and unknown keys are
// refused; oversized, malformed and over-limit requests are refused while the server keeps serving.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "comms/keyring.h"
#include "comms/zmq_store.h"

namespace gt {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

class StoreSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = GenerateKeyring(2);
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    keys_ = *k;
  }
  ZmqStoreServerOptions ServerOptions() const {
    ZmqStoreServerOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.keys = keys_.coordinator;
    o.allowed_clients[keys_.workers[0].public_key] = "rank0";
    return o;
  }
  ZmqStoreCredentials Client(const CurveKeyPair& pair) const {
    ZmqStoreCredentials c;
    c.keys = pair;
    c.server_public_key = keys_.coordinator.public_key;
    return c;
  }
  Keyring keys_;
};

TEST_F(StoreSecurityTest, AnAllowedClientSetsAndGets) {
  auto server = ZmqStoreServer::Start(ServerOptions());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto store = ZmqStore::Connect((*server)->endpoint(), Client(keys_.workers[0]));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Set("addr/0", "10.0.0.1:7000").ok());
  auto v = (*store)->Get("addr/0", milliseconds(3000));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "10.0.0.1:7000");
  EXPECT_EQ((*server)->stats().keys, 1u);
}

TEST_F(StoreSecurityTest, PlaintextAndUnknownKeysAreRefused) {
  auto server = ZmqStoreServer::Start(ServerOptions());
  ASSERT_TRUE(server.ok());
  auto good = ZmqStore::Connect((*server)->endpoint(), Client(keys_.workers[0]));
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE((*good)->Set("secret", "gloo address record").ok());

  ZmqStoreCredentials plain;
  plain.plaintext = true;
  auto probe = ZmqStore::Connect((*server)->endpoint(), plain);
  ASSERT_TRUE(probe.ok());
  EXPECT_FALSE((*probe)->Get("secret", milliseconds(1500)).ok()) << "a plaintext client must not read the store";

  // A valid CURVE key that is not on the allow-list (rank 1's).
  auto stranger = ZmqStore::Connect((*server)->endpoint(), Client(keys_.workers[1]));
  ASSERT_TRUE(stranger.ok());
  EXPECT_FALSE((*stranger)->Get("secret", milliseconds(1500)).ok()) << "an unknown key must not read the store";
  EXPECT_GE((*server)->stats().refused_clients, 1u);
  // The legitimate client is still served.
  auto v = (*good)->Get("secret", milliseconds(3000));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*server)->stats().keys, 1u) << "nothing was written by the refused clients";
}

TEST_F(StoreSecurityTest, PlaintextMustBeChosenExplicitly) {
  ZmqStoreServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  auto server = ZmqStoreServer::Start(o);
  EXPECT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("secret key"), std::string::npos) << server.status().ToString();
  EXPECT_FALSE(ZmqStore::Connect("tcp://127.0.0.1:1", ZmqStoreCredentials{}).ok());
}

// Speaks the store protocol directly (an allowed CURVE client), to send what ZmqStore never would.
class RawClient {
 public:
  RawClient(const std::string& endpoint, const CurveKeyPair& pair, const std::string& server_key)
      : sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::curve_serverkey, server_key);
    sock_.set(zmq::sockopt::curve_publickey, pair.public_key);
    sock_.set(zmq::sockopt::curve_secretkey, pair.secret_key);
    sock_.connect(endpoint);
  }
  // Sends `frames` after a request id; returns the reply's status frame ("" when none in `wait`).
  std::string Call(const std::vector<std::string>& frames, milliseconds wait = milliseconds(3000)) {
    std::vector<zmq::message_t> req;
    const uint64_t id = ++id_;
    req.emplace_back(&id, sizeof id);
    for (const auto& f : frames) req.emplace_back(f.data(), f.size());
    zmq::send_multipart(sock_, req);
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) <= 0) return "";
    std::vector<zmq::message_t> rep;
    (void)zmq::recv_multipart(sock_, std::back_inserter(rep));
    return rep.size() >= 2 ? rep[1].to_string() : "";
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  uint64_t id_ = 0;
};

TEST_F(StoreSecurityTest, OversizedMalformedAndOverLimitRequestsAreRefused) {
  ZmqStoreServerOptions o = ServerOptions();
  o.max_request_bytes = 4096;
  o.max_keys = 2;
  o.max_total_bytes = 2000;
  auto server = ZmqStoreServer::Start(o);
  ASSERT_TRUE(server.ok());
  const std::string ep = (*server)->endpoint();
  {
    RawClient raw(ep, keys_.workers[0], keys_.coordinator.public_key);
    EXPECT_EQ(raw.Call({"set", "k"}), "bad") << "a set without a value is malformed";
    EXPECT_EQ(raw.Call({"drop", "k"}), "bad");
  }
  {
    // A frame above the limit: ZeroMQ drops it and the connection; nothing is stored or answered.
    RawClient raw(ep, keys_.workers[0], keys_.coordinator.public_key);
    EXPECT_EQ(raw.Call({"set", "big", std::string(64 << 10, 'x')}, milliseconds(1500)), "");
  }
  auto store = ZmqStore::Connect(ep, Client(keys_.workers[0]));
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->Set("a", std::string(900, 'a')).ok());
  Status full = (*store)->Set("b", std::string(1500, 'b'));  // above max_total_bytes
  EXPECT_EQ(full.code(), Code::kUnavailable) << full.ToString();
  EXPECT_NE(full.message().find("full"), std::string::npos) << full.ToString();
  EXPECT_TRUE((*store)->Set("b", "small").ok());
  EXPECT_FALSE((*store)->Set("c", "x").ok()) << "a third key is above max_keys";
  EXPECT_TRUE((*store)->Set("a", "replaced").ok()) << "replacing a key is within the limits";
  const ZmqStoreServerStats st = (*server)->stats();
  EXPECT_EQ(st.keys, 2u);
  EXPECT_EQ(st.bytes, std::string("a").size() + 8 + 1 + 5);
  EXPECT_GE(st.refused_malformed, 2u);
  EXPECT_GE(st.refused_full, 2u);
  auto v = (*store)->Get("a", milliseconds(2000));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "replaced");
}

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gt-keyring-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(KeyringTest, WritesAndLoadsEachSidesKeys) {
  auto k = GenerateKeyring(3);
  ASSERT_TRUE(k.ok());
  const std::string keys = dir_ + "/keys";
  ASSERT_TRUE(WriteKeyring(*k, keys, true, false).ok());
  struct stat st {};
  ASSERT_EQ(stat(keys.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(WorkerSecretKeyFile(keys, 2).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto coord = LoadCoordinatorKeys(keys, 3);
  ASSERT_TRUE(coord.ok()) << coord.status().ToString();
  EXPECT_EQ(coord->coordinator.public_key, k->coordinator.public_key);
  ASSERT_EQ(coord->workers.size(), 3u);
  EXPECT_EQ(coord->workers[1].public_key, k->workers[1].public_key);
  std::string coord_pub;
  auto w = LoadWorkerKeys(keys, 1, &coord_pub);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->public_key, k->workers[1].public_key);
  EXPECT_EQ(w->secret_key, k->workers[1].secret_key);
  EXPECT_EQ(coord_pub, k->coordinator.public_key);
  EXPECT_FALSE(WriteKeyring(*k, keys, true, false).ok()) << "existing keys are not overwritten by default";
  // Four ranks asked of a three-rank keyring: the missing file is named.
  auto missing = LoadCoordinatorKeys(keys, 4);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("worker-3.pub"), std::string::npos) << missing.status().ToString();
}

TEST_F(KeyringTest, RefusesReadableSecretsAndMalformedKeys) {
  auto k = GenerateKeyring(1);
  ASSERT_TRUE(k.ok());
  const std::string keys = dir_ + "/keys";
  ASSERT_TRUE(WriteKeyring(*k, keys, true, false).ok());
  std::string pub;
  chmod(WorkerSecretKeyFile(keys, 0).c_str(), 0644);
  auto loose = LoadWorkerKeys(keys, 0, &pub);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos) << loose.status().ToString();
  chmod(WorkerSecretKeyFile(keys, 0).c_str(), 0600);
  std::ofstream(CoordinatorPublicKeyFile(keys)) << "not a key\n";
  auto bad = LoadWorkerKeys(keys, 0, &pub);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("coordinator.pub"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace gt
