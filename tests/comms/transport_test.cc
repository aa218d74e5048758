// Transport: CURVE accepted and refused, plaintext only on request, tensors and control messages,
// malformed and oversized frames from raw sockets, timeouts, the queued-bytes bound, and heartbeats
// detecting a peer that stopped answering (a SIGSTOPped child process).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "comms/transport.h"

extern char** environ;

namespace gt {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

CurveKeyPair Keys() {
  auto k = GenerateCurveKeyPair();
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return *k;
}

TransportOptions Base(const std::string& name, const CurveKeyPair& keys) {
  TransportOptions o;
  o.name = name;
  o.keys = keys;
  o.send_timeout = milliseconds(2000);
  o.heartbeat_interval = milliseconds(100);
  o.heartbeat_timeout = milliseconds(500);
  o.linger = milliseconds(0);
  return o;
}

std::unique_ptr<Transport> Make(const TransportOptions& o) {
  auto t = Transport::Create(o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : nullptr;
}

std::vector<float> Ramp(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

TEST(Keys, GenerateAndDerive) {
  CurveKeyPair k = Keys();
  EXPECT_EQ(k.public_key.size(), 40u);
  EXPECT_EQ(k.secret_key.size(), 40u);
  auto pub = CurvePublicKey(k.secret_key);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, k.public_key);
  EXPECT_FALSE(CurvePublicKey("too short").ok());
  EXPECT_NE(Keys().public_key, k.public_key);
}

TEST(Transport, OptionsAreValidated) {
  TransportOptions o;
  o.name = "x";
  o.bind_endpoint = "tcp://127.0.0.1:*";
  auto t = Transport::Create(o);  // no keys and no explicit plaintext
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("plaintext"), std::string::npos);
  o.keys = Keys();
  o.keys.public_key = Keys().public_key;  // does not match the secret key
  EXPECT_FALSE(Transport::Create(o).ok());
  o.keys = Keys();
  o.allowed_peers["not-a-key"] = "b";
  EXPECT_FALSE(Transport::Create(o).ok());
  o.allowed_peers.clear();
  o.recv_hwm = 1;
  EXPECT_FALSE(Transport::Create(o).ok());
  o.recv_hwm = 1000;
  o.bind_endpoint = "bogus://nowhere";
  auto bad = Transport::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bogus://nowhere"), std::string::npos);
}

TEST(Transport, CurveTensorAndControlRoundTripOverTcp) {
  CurveKeyPair ka = Keys(), kb = Keys();
  TransportOptions oa = Base("site-a", ka);
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  oa.allowed_peers[kb.public_key] = "site-b";
  auto a = Make(oa);
  auto b = Make(Base("site-b", kb));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->endpoint().rfind("tcp://127.0.0.1:", 0), 0u) << a->endpoint();
  ASSERT_TRUE(b->Connect("site-a", a->endpoint(), ka.public_key).ok());
  ASSERT_TRUE(b->WaitConnected("site-a", milliseconds(5000)).ok());
  EXPECT_TRUE(b->GetPeerState("site-a").connected);

  // Zero-copy tensor: the buffer is released exactly once, after the send.
  auto data = std::make_shared<std::vector<float>>(Ramp(6 * 1000, 0.5f));
  std::atomic<int> released{0};
  TensorTag tag{77, 3, 2, 9};
  ASSERT_TRUE(b->SendTensor("site-a", tag, DType::kFloat32, {6, 1000}, data->data(), data->size() * 4,
                            [data, &released] { released++; })
                  .ok());
  auto m = a->Receive(milliseconds(5000));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kind, FrameKind::kTensor);
  EXPECT_EQ(m->peer, "site-b");  // authenticated identity from the allow-list, not a claim
  EXPECT_TRUE(m->tag == tag);
  EXPECT_EQ(m->dtype, DType::kFloat32);
  EXPECT_EQ(m->shape, (std::vector<int64_t>{6, 1000}));
  ASSERT_EQ(m->size(), data->size() * 4);
  EXPECT_EQ(std::memcmp(m->data(), data->data(), m->size()), 0);
  for (int i = 0; i < 100 && released.load() == 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(released.load(), 1);

  // bfloat16 copy-send and a control message, in order.
  std::vector<uint16_t> bf = {FloatToBFloat16(1.5f), FloatToBFloat16(-2)};
  ASSERT_TRUE(b->SendTensorCopy("site-a", {1, 0, 0, 0}, DType::kBFloat16, {2}, bf.data(), 4).ok());
  ASSERT_TRUE(b->SendControl("site-a", {{"type", "pause"}, {"stage", 4}}, {1, 2, 0, 0}).ok());
  auto t2 = a->Receive(milliseconds(5000));
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->dtype, DType::kBFloat16);
  EXPECT_EQ(std::memcmp(t2->data(), bf.data(), 4), 0);
  auto c = a->Receive(milliseconds(5000));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, FrameKind::kControl);
  EXPECT_EQ(c->control["type"], "pause");
  EXPECT_EQ(c->control["stage"], 4);
  EXPECT_EQ(c->control["v"], kControlVersion);
  EXPECT_EQ(c->tag.generation, 2u);

  // Bad arguments are refused at the sender, and the release callback still runs.
  std::atomic<int> rel2{0};
  Status bad = b->SendTensor("site-a", tag, DType::kFloat32, {7}, data->data(), 8, [&] { rel2++; });
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_EQ(rel2.load(), 1);
  EXPECT_EQ(b->SendTensorCopy("nobody", tag, DType::kUInt8, {1}, "x", 1).code(), Code::kNotFound);
  EXPECT_EQ(b->SendControl("site-a", nlohmann::json::array()).code(), Code::kInvalidArgument);

  auto none = a->Receive(milliseconds(50));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kTimeout);
  TransportStats st = a->stats();
  EXPECT_EQ(st.messages_received, 3u);
  EXPECT_EQ(st.dropped_malformed, 0u);
}

TEST(Transport, LargePayloadsTravelAsSeveralFrames) {
  TransportOptions oa;
  oa.name = "a";
  oa.plaintext = true;
  oa.bind_endpoint = "inproc://gt-test-chunks";
  auto a = Make(oa);
  TransportOptions ob;
  ob.name = "b";
  ob.plaintext = true;
  ob.frame_bytes = 4096;
  auto b = Make(ob);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->Connect("a", oa.bind_endpoint, "").ok());
  std::vector<float> v = Ramp(2500, -7);  // 10000 bytes: frames of 4096, 4096, 1808
  std::atomic<int> released{0};
  ASSERT_TRUE(b->SendTensor("a", {}, DType::kFloat32, {50, 50}, v.data(), 10000, [&] { released++; }).ok());
  {
    auto m = a->Receive(milliseconds(5000));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_EQ(m->chunks().size(), 3u);
    EXPECT_EQ(m->chunks()[0].size, 4096u);
    EXPECT_EQ(m->chunks()[2].size, 1808u);
    EXPECT_EQ(m->size(), 10000u);
    std::vector<float> copy(2500);
    m->CopyTo(copy.data());
    EXPECT_EQ(copy, v);
    EXPECT_EQ(std::memcmp(m->data(), v.data(), 10000), 0);
  }
  // inproc passes the frames by reference: the sender's buffer is released once the receiver
  // dropped the message.
  for (int i = 0; i < 100 && released.load() == 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(released.load(), 1);  // once, after all three frames were freed
  // An empty tensor is one empty frame.
  ASSERT_TRUE(b->SendTensor("a", {}, DType::kFloat32, {0, 3}, nullptr, 0, nullptr).ok());
  auto e = a->Receive(milliseconds(5000));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size(), 0u);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{0, 3}));
}

TEST(Transport, KeyNotOnAllowListIsRefused) {
  CurveKeyPair ka = Keys(), kb = Keys(), kc = Keys();
  TransportOptions oa = Base("site-a", ka);
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  oa.allowed_peers[kb.public_key] = "site-b";
  auto a = Make(oa);
  TransportOptions oc = Base("intruder", kc);
  oc.send_timeout = milliseconds(300);
  auto c = Make(oc);
  ASSERT_TRUE(a && c);
  ASSERT_TRUE(c->Connect("site-a", a->endpoint(), ka.public_key).ok());
  Status w = c->WaitConnected("site-a", milliseconds(5000));
  EXPECT_EQ(w.code(), Code::kUnavailable) << w.ToString();
  EXPECT_TRUE(c->GetPeerState("site-a").auth_failed);
  Status s = c->SendTensorCopy("site-a", {}, DType::kUInt8, {3}, "abc", 3);
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("refused"), std::string::npos) << s.message();
  EXPECT_FALSE(a->Receive(milliseconds(100)).ok());
  EXPECT_GE(a->stats().refused_peers, 1u);

  // A sender with the wrong server key never gets through either.
  CurveKeyPair kb_keys = kb;
  TransportOptions ob = Base("site-b", kb_keys);
  ob.handshake_timeout = milliseconds(300);
  auto b = Make(ob);
  ASSERT_TRUE(b->Connect("site-a", a->endpoint(), Keys().public_key).ok());
  EXPECT_FALSE(b->WaitConnected("site-a", milliseconds(700)).ok());
  // ...while the right key works from the same sender.
  ASSERT_TRUE(b->Connect("site-a", a->endpoint(), ka.public_key).ok());
  ASSERT_TRUE(b->WaitConnected("site-a", milliseconds(5000)).ok());
  ASSERT_TRUE(b->SendTensorCopy("site-a", {}, DType::kUInt8, {3}, "abc", 3).ok());
  auto m = a->Receive(milliseconds(5000));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->peer, "site-b");
}

TEST(Transport, PlaintextOnlyWhenAskedOverIpc) {
  std::string path = std::string(::testing::TempDir()) + "gt_comms_ipc_" + std::to_string(getpid());
  TransportOptions oa;
  oa.name = "a";
  oa.plaintext = true;
  oa.bind_endpoint = "ipc://" + path;
  auto a = Make(oa);
  TransportOptions ob;
  ob.name = "b";
  ob.plaintext = true;
  auto b = Make(ob);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->Connect("a", a->endpoint(), "").ok());
  ASSERT_TRUE(b->WaitConnected("a", milliseconds(5000)).ok());
  std::vector<int64_t> v = {1, -2, 3};
  ASSERT_TRUE(b->SendTensorCopy("a", {5, 1, 0, 0}, DType::kInt64, {3}, v.data(), 24).ok());
  auto m = a->Receive(milliseconds(5000));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->peer, "unauthenticated");
  EXPECT_EQ(std::memcmp(m->data(), v.data(), 24), 0);
  a.reset();
  ::unlink(path.c_str());
}

TEST(Transport, InprocBetweenTransportsOfOneProcess) {
  // All Transports of a process share one ZeroMQ context, so inproc:// connects them (without CURVE:
  // nothing outside the process can reach an inproc endpoint).
  CurveKeyPair ka = Keys(), kb = Keys();
  TransportOptions oa = Base("a", ka);
  oa.bind_endpoint = "inproc://gt-test-a";
  auto a = Make(oa);
  auto b = Make(Base("b", kb));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->endpoint(), "inproc://gt-test-a");
  ASSERT_TRUE(b->Connect("a", "inproc://gt-test-a", ka.public_key).ok());
  ASSERT_TRUE(b->WaitConnected("a", milliseconds(1000)).ok());
  std::vector<float> v = Ramp(1 << 16, 1);
  ASSERT_TRUE(b->SendTensorCopy("a", {9, 9, 9, 9}, DType::kFloat32, {1 << 16}, v.data(), v.size() * 4).ok());
  auto m = a->Receive(milliseconds(5000));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->peer, "in-process");
  ASSERT_EQ(m->size(), v.size() * 4);
  EXPECT_EQ(std::memcmp(m->data(), v.data(), m->size()), 0);
}

// Raw ZeroMQ and raw TCP senders: every malformed message is dropped with a reason, and a valid
// message sent afterwards is still delivered.
TEST(Transport, MalformedFramesAreDroppedAndLogged) {
  TransportOptions oa;
  oa.name = "a";
  oa.plaintext = true;
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  oa.max_message_bytes = 1 << 20;
  auto a = Make(oa);
  ASSERT_TRUE(a);

  // Raw TCP garbage (not even ZMTP): the connection is dropped by ZeroMQ.
  {
    std::string ep = a->endpoint();
    int port = std::stoi(ep.substr(ep.rfind(':') + 1));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string junk(4096, '\xff');
    ASSERT_GT(write(fd, junk.data(), junk.size()), 0);
    close(fd);
  }

  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::push);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(a->endpoint());
  auto send = [&](std::vector<std::string> frames) {
    std::vector<zmq::message_t> msgs;
    for (auto& f : frames) msgs.emplace_back(f.data(), f.size());
    ASSERT_TRUE(zmq::send_multipart(raw, msgs));
  };
  auto header = [](FrameKind kind, DType dt, std::vector<int64_t> shape, uint64_t bytes) {
    FrameHeader h;
    h.kind = kind;
    h.dtype = dt;
    h.shape = std::move(shape);
    h.payload_bytes = bytes;
    std::string s(kFrameHeaderBytes, '\0');
    EncodeHeader(h, reinterpret_cast<uint8_t*>(&s[0]));
    return s;
  };
  std::string good_header = header(FrameKind::kTensor, DType::kUInt8, {4}, 4);
  send({"just one frame"});                                          // 1: part count
  send({good_header, "ab", "cdx"});                                  // 2: frames carry 5 bytes, not 4
  std::string bad_magic = good_header;
  bad_magic[0] = 'Z';
  send({bad_magic, "abcd"});                                         // 3: magic
  send({good_header, "abcdef"});                                     // 4: size mismatch
  send({header(FrameKind::kTensor, DType::kFloat32, {2}, 4), "abcd"});  // 5: shape vs bytes
  send({header(FrameKind::kControl, DType::kUInt8, {5}, 5), "{not "});  // 6: bad JSON
  std::string no_v = R"({"type":"x"})";
  send({header(FrameKind::kControl, DType::kUInt8, {int64_t(no_v.size())}, no_v.size()), no_v});  // 7: no "v"
  std::string v99 = R"({"v":99,"type":"x"})";
  send({header(FrameKind::kControl, DType::kUInt8, {int64_t(v99.size())}, v99.size()), v99});  // 8: version
  // 9: declares a payload above max_message_bytes (the frame itself is small).
  FrameHeader big;
  big.dtype = DType::kUInt8;
  big.shape = {2 << 20};
  big.payload_bytes = 2 << 20;
  std::string big_header(kFrameHeaderBytes, '\0');
  EncodeHeader(big, reinterpret_cast<uint8_t*>(&big_header[0]));
  send({big_header, "tiny"});
  send({good_header, "wxyz"});  // finally a valid one

  auto m = a->Receive(milliseconds(5000));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(std::string(static_cast<const char*>(m->data()), m->size()), "wxyz");
  TransportStats st = a->stats();
  EXPECT_EQ(st.dropped_malformed, 8u);
  EXPECT_EQ(st.dropped_oversized, 1u);
  EXPECT_EQ(st.messages_received, 1u);
}

TEST(Transport, OversizedFrameIsRefusedAndTheReceiverKeepsWorking) {
  CurveKeyPair ka = Keys(), kb = Keys();
  TransportOptions oa = Base("a", ka);
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  oa.allowed_peers[kb.public_key] = "b";
  oa.max_message_bytes = 1 << 20;
  auto a = Make(oa);
  TransportOptions ob = Base("b", kb);
  ob.max_message_bytes = 8 << 20;  // the sender allows more than the receiver accepts
  auto b = Make(ob);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->Connect("a", a->endpoint(), ka.public_key).ok());
  ASSERT_TRUE(b->WaitConnected("a", milliseconds(5000)).ok());
  std::vector<uint8_t> huge(2 << 20, 7);
  Status s = b->SendTensorCopy("a", {}, DType::kUInt8, {int64_t(huge.size())}, huge.data(), huge.size());
  EXPECT_TRUE(s.ok()) << s.ToString();  // accepted locally; the receiver refuses it on the wire
  auto m = a->Receive(milliseconds(500));
  EXPECT_FALSE(m.ok()) << "an oversized frame was delivered";
  // The connection is re-made and later messages arrive.
  ASSERT_TRUE(b->WaitConnected("a", milliseconds(5000)).ok());
  bool got = false;
  for (int i = 0; i < 50 && !got; ++i) {
    if (!b->SendTensorCopy("a", {0, 0, 0, i}, DType::kUInt8, {2}, "ok", 2).ok()) continue;
    auto r = a->Receive(milliseconds(200));
    got = r.ok() && r->size() == 2;
  }
  EXPECT_TRUE(got);
  // The sender refuses what its own limit forbids.
  TransportOptions small = Base("c", Keys());
  small.max_message_bytes = 10;
  auto c = Make(small);
  ASSERT_TRUE(c->Connect("a", a->endpoint(), ka.public_key).ok());
  EXPECT_EQ(c->SendTensorCopy("a", {}, DType::kUInt8, {11}, "01234567890", 11).code(), Code::kInvalidArgument);
}

TEST(Transport, QueuedBytesAreBounded) {
  CurveKeyPair ka = Keys(), kb = Keys();
  TransportOptions oa = Base("a", ka);
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  oa.allowed_peers[kb.public_key] = "b";
  oa.recv_hwm = 2;  // the receiver's application does not read yet
  TransportOptions ob = Base("b", kb);
  ob.max_queued_bytes = 4 << 20;
  ob.send_hwm = 1000;
  ob.send_timeout = milliseconds(300);
  // Heartbeats off: a receiver that never reads stops answering pings, and heartbeats would close
  // the connection (dropping the queue) - that behaviour is not what this test is about.
  oa.heartbeat_interval = ob.heartbeat_interval = milliseconds(0);
  auto a = Make(oa);
  auto b = Make(ob);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->Connect("a", a->endpoint(), ka.public_key).ok());
  ASSERT_TRUE(b->WaitConnected("a", milliseconds(5000)).ok());
  const size_t chunk = 1 << 20;
  auto buf = std::make_shared<std::vector<uint8_t>>(chunk, 1);
  std::atomic<int> released{0};
  Status last;
  int sent = 0;
  for (int i = 0; i < 200; ++i) {
    last = b->SendTensor("a", {}, DType::kUInt8, {int64_t(chunk)}, buf->data(), chunk, [buf, &released] { released++; });
    if (!last.ok()) break;
    ++sent;
    EXPECT_LE(b->stats().queued_bytes, ob.max_queued_bytes);
  }
  EXPECT_EQ(last.code(), Code::kUnavailable) << "200 MiB were accepted although nobody reads";
  EXPECT_NE(last.message().find("queued"), std::string::npos) << last.message();
  // Draining the receiver lets everything go and releases every buffer.
  int received = 0;
  while (received < sent) {
    auto m = a->Receive(milliseconds(5000));
    ASSERT_TRUE(m.ok()) << "received " << received << " of " << sent;
    ++received;
  }
  for (int i = 0; i < 200 && released.load() < sent + 1; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(released.load(), sent + 1);  // the refused one is released too
  EXPECT_EQ(b->stats().queued_bytes, 0u);
}

// ---- A receiver in another process, stopped with SIGSTOP: only heartbeats can notice. ----

std::string SelfExe() {
  char buf[4096];
  ssize_t len = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return len > 0 ? std::string(buf, len) : std::string();
}

TEST(TransportChild, Run) {
  const char* spec = std::getenv("GT_TRANSPORT_CHILD");
  if (spec == nullptr) GTEST_SKIP() << "entry point for the child process of the heartbeat test";
  std::istringstream in(spec);
  std::string secret, client_pub, file;
  in >> secret >> client_pub >> file;
  TransportOptions o;
  o.name = "child";
  o.keys = {*CurvePublicKey(secret), secret};
  o.bind_endpoint = "tcp://127.0.0.1:*";
  o.allowed_peers[client_pub] = "parent";
  o.heartbeat_interval = milliseconds(100);
  o.heartbeat_timeout = milliseconds(500);
  auto t = Transport::Create(o);
  if (!t.ok()) _exit(2);
  std::ofstream(file + ".tmp") << (*t)->endpoint();
  std::rename((file + ".tmp").c_str(), file.c_str());
  while (true) {
    auto m = (*t)->Receive(milliseconds(1000));
    (void)m;
  }
}

TEST(Transport, HeartbeatsDetectAStoppedPeer) {
  CurveKeyPair child = Keys(), parent = Keys();
  std::string file = std::string(::testing::TempDir()) + "gt_comms_hb_" + std::to_string(getpid());
  std::string exe = SelfExe();
  std::string spec = "GT_TRANSPORT_CHILD=" + child.secret_key + " " + parent.public_key + " " + file;
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(const_cast<char*>(spec.c_str()));
    envp.push_back(nullptr);
    std::string filter = "--gtest_filter=TransportChild.Run";
    char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(filter.c_str()), nullptr};
    execve(exe.c_str(), argv, envp.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string endpoint;
  for (int i = 0; i < 1000 && endpoint.empty(); ++i) {
    std::ifstream in(file);
    std::getline(in, endpoint);
    if (endpoint.empty()) std::this_thread::sleep_for(milliseconds(10));
  }
  TransportOptions o = Base("parent", parent);
  o.send_timeout = milliseconds(500);
  auto t = Make(o);
  bool connected = false;
  if (!endpoint.empty() && t) {
    ASSERT_TRUE(t->Connect("child", endpoint, child.public_key).ok());
    connected = t->WaitConnected("child", milliseconds(5000)).ok();
  }
  if (connected) {
    EXPECT_TRUE(t->SendTensorCopy("child", {}, DType::kUInt8, {2}, "hi", 2).ok());
    kill(pid, SIGSTOP);  // the socket stays open; only missing heartbeat replies reveal the problem
    const auto t0 = Clock::now();
    while (t->GetPeerState("child").connected && Clock::now() - t0 < std::chrono::seconds(10)) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
    EXPECT_FALSE(t->GetPeerState("child").connected) << "still connected after 10 s";
    EXPECT_LT(took.count(), 5000) << "heartbeat timeout is 500 ms";
    std::cerr << "stopped peer detected after " << took.count() << " ms ("
              << t->GetPeerState("child").last_event << ")\n";
    Status s = t->SendTensorCopy("child", {}, DType::kUInt8, {2}, "hi", 2);
    EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  }
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ::unlink(file.c_str());
  ASSERT_FALSE(endpoint.empty()) << "child never published its endpoint";
  ASSERT_TRUE(connected) << "could not connect to the child";
}

}  // namespace
}  // namespace gt
