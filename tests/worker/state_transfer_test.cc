// State transfer between ranks (worker/state_transfer.h): fragments from two CURVE-authenticated
// senders assemble bit-exactly; a rank's own fragment comes from memory; every malformed or
// unexpected message is refused with a message naming what was wrong.
#include <gtest/gtest.h>

#include <chrono>

#include "comms/transport.h"
#include "worker/layout.h"
#include "worker/state_transfer.h"

namespace gt::worker {
namespace {

using std::chrono::milliseconds;

ModelConfig Tiny() {
  ModelConfig m;
  m.layers = 2;
  m.hidden = 8;
  m.heads = 2;
  m.seq_len = 4;
  m.vocab = 16;
  return m;
}

// A recognisable state of layers [first, last): every value encodes (part, global float index).
LayerState Held(const ModelConfig& m, int first, int last, int64_t adamw_steps) {
  LayerState s;
  s.model = m;
  s.first = first;
  s.last = last;
  s.adamw_steps = adamw_steps;
  const int64_t base = RangeParamCount(m, 0, first), n = RangeParamCount(m, first, last);
  for (int64_t i = 0; i < n; ++i) {
    s.params.push_back(static_cast<float>(base + i));
    s.exp_avg.push_back(0.5f + static_cast<float>(base + i));
    s.exp_avg_sq.push_back(0.25f + static_cast<float>(base + i));
  }
  return s;
}

CurveKeyPair Keys() {
  auto k = GenerateCurveKeyPair();
  EXPECT_TRUE(k.ok());
  return *k;
}

// A receiver bound on loopback that accepts the given senders' keys under the given names.
std::unique_ptr<Transport> Receiver(const CurveKeyPair& keys, const std::map<std::string, std::string>& allowed) {
  TransportOptions o;
  o.name = "receiver";
  o.bind_endpoint = "tcp://127.0.0.1:*";
  o.keys = keys;
  o.allowed_peers = allowed;
  o.linger = milliseconds(0);
  auto t = Transport::Create(o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(*t);
}

std::unique_ptr<Transport> Sender(const std::string& name, const CurveKeyPair& keys, const Transport& to,
                                  const std::string& to_key) {
  TransportOptions o;
  o.name = name;
  o.keys = keys;
  o.send_timeout = milliseconds(5000);
  o.linger = milliseconds(2000);
  auto t = Transport::Create(o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE((*t)->Connect("dst", to.endpoint(), to_key).ok());
  return std::move(*t);
}

// Feeds the assembler until complete or until a message is refused (returned).
Status Drain(Transport& rx, StateAssembler& a) {
  while (!a.complete()) {
    auto m = rx.Receive(milliseconds(5000));
    if (!m.ok()) return m.status();
    RETURN_IF_ERROR(a.Accept(*m));
  }
  return Status::Ok();
}

TEST(StateTransfer, TwoSendersAssembleExactly) {
  const ModelConfig m = Tiny();  // 4 layers
  const CurveKeyPair rk = Keys(), k1 = Keys(), k2 = Keys();
  auto rx = Receiver(rk, {{k1.public_key, "src1"}, {k2.public_key, "src2"}});
  // Rank 1 held layers [0, 2) of an old split, rank 2 held [1, 4); the new stage needs [1, 4).
  const LayerState h1 = Held(m, 0, 2, 7), h2 = Held(m, 1, 4, 7);
  StateAssembler a(m, 1, 4, 42, {{"src1", {1, 2}}, {"src2", {2, 4}}});
  ASSERT_TRUE(a.Validate().ok());
  auto s1 = Sender("s1", k1, *rx, rk.public_key);
  auto s2 = Sender("s2", k2, *rx, rk.public_key);
  auto b1 = SendLayers(*s1, "dst", h1, 1, 2, 42);
  auto b2 = SendLayers(*s2, "dst", h2, 2, 4, 42);
  ASSERT_TRUE(b1.ok() && b2.ok()) << b1.status().ToString() << b2.status().ToString();
  ASSERT_TRUE(Drain(*rx, a).ok());
  EXPECT_EQ(a.bytes_received(), *b1 + *b2);
  EXPECT_EQ(a.bytes_received(), 3 * RangeParamCount(m, 1, 4) * 4);
  const LayerState got = a.Take();
  const LayerState want = Held(m, 1, 4, 7);
  EXPECT_EQ(got.adamw_steps, 7);
  EXPECT_EQ(got.params, want.params);
  EXPECT_EQ(got.exp_avg, want.exp_avg);
  EXPECT_EQ(got.exp_avg_sq, want.exp_avg_sq);
}

TEST(StateTransfer, OwnFragmentFromMemory) {
  const ModelConfig m = Tiny();
  const CurveKeyPair rk = Keys(), k2 = Keys();
  auto rx = Receiver(rk, {{k2.public_key, "src2"}});
  const LayerState mine = Held(m, 0, 2, 3), other = Held(m, 2, 4, 3);
  StateAssembler a(m, 0, 4, 10, {{"src1", {0, 2}}, {"src2", {2, 4}}});
  ASSERT_TRUE(a.AcceptLocal("src1", mine, 10).ok());
  EXPECT_FALSE(a.complete());
  auto s2 = Sender("s2", k2, *rx, rk.public_key);
  ASSERT_TRUE(SendLayers(*s2, "dst", other, 2, 4, 10).ok());
  ASSERT_TRUE(Drain(*rx, a).ok());
  EXPECT_EQ(a.bytes_received(), 3 * RangeParamCount(m, 2, 4) * 4);  // only the other rank's layers travel
  EXPECT_EQ(a.Take().params, Held(m, 0, 4, 3).params);
  // Memory at another step cannot stand in.
  StateAssembler b(m, 0, 4, 11, {{"src1", {0, 2}}, {"src2", {2, 4}}});
  EXPECT_FALSE(b.AcceptLocal("src1", mine, 10).ok());
}

TEST(StateTransfer, RefusesWhatItDoesNotExpect) {
  const ModelConfig m = Tiny();
  const CurveKeyPair rk = Keys(), k1 = Keys(), k9 = Keys();
  auto rx = Receiver(rk, {{k1.public_key, "src1"}, {k9.public_key, "src9"}});
  const LayerState h = Held(m, 0, 4, 5);
  {  // an allowed key that is not a source of this state
    StateAssembler a(m, 0, 4, 1, {{"src1", {0, 4}}});
    auto s9 = Sender("s9", k9, *rx, rk.public_key);
    ASSERT_TRUE(SendLayers(*s9, "dst", h, 0, 1, 1).ok());
    Status st = Drain(*rx, a);
    EXPECT_NE(st.message().find("unexpected peer 'src9'"), std::string::npos) << st.ToString();
    while (rx->Receive(milliseconds(300)).ok()) {}
  }
  {  // the state of another step
    StateAssembler a(m, 0, 4, 2, {{"src1", {0, 4}}});
    auto s1 = Sender("s1", k1, *rx, rk.public_key);
    ASSERT_TRUE(SendLayers(*s1, "dst", h, 0, 4, 1).ok());
    Status st = Drain(*rx, a);
    EXPECT_NE(st.message().find("not training state at step 2"), std::string::npos) << st.ToString();
    while (rx->Receive(milliseconds(300)).ok()) {}
  }
  {  // a layer of the wrong size, then the same part twice
    StateAssembler a(m, 0, 4, 1, {{"src1", {0, 4}}});
    auto s1 = Sender("s1", k1, *rx, rk.public_key);
    std::vector<float> wrong(3, 1.0f);
    ASSERT_TRUE(s1->SendTensorCopy("dst", {kStateJob, 1, 0, 0}, DType::kFloat32, {3}, wrong.data(), 12).ok());
    auto msg = rx->Receive(milliseconds(5000));
    ASSERT_TRUE(msg.ok());
    Status st = a.Accept(*msg);
    EXPECT_NE(st.message().find("expected " + std::to_string(LayerParamCount(m, 0)) + " float32"), std::string::npos)
        << st.ToString();
    const size_t n = static_cast<size_t>(LayerParamCount(m, 1));
    for (int i = 0; i < 2; ++i)
      ASSERT_TRUE(s1->SendTensorCopy("dst", {kStateJob, 1, 1, 2}, DType::kFloat32, {static_cast<int64_t>(n)},
                                     h.exp_avg_sq.data(), n * 4)
                      .ok());
    auto first = rx->Receive(milliseconds(5000));
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(a.Accept(*first).ok());
    auto second = rx->Receive(milliseconds(5000));
    ASSERT_TRUE(second.ok());
    EXPECT_NE(a.Accept(*second).message().find("sent twice"), std::string::npos);
    // An end before all of its layers arrived.
    ASSERT_TRUE(s1->SendControl("dst", {{"type", kStateEnd}, {"first", 0}, {"last", 4}, {"step", 1},
                                        {"adamw_steps", 5}}).ok());
    auto end = rx->Receive(milliseconds(5000));
    ASSERT_TRUE(end.ok());
    EXPECT_NE(a.Accept(*end).message().find("ended before layer 0"), std::string::npos);
    EXPECT_FALSE(a.complete());
  }
}

TEST(StateTransfer, FragmentsMustTileTheRange) {
  const ModelConfig m = Tiny();
  EXPECT_FALSE(StateAssembler(m, 0, 4, 1, {{"a", {0, 2}}, {"b", {1, 4}}}).Validate().ok());  // overlap
  EXPECT_FALSE(StateAssembler(m, 0, 4, 1, {{"a", {0, 2}}}).Validate().ok());                 // gap
  EXPECT_FALSE(StateAssembler(m, 1, 3, 1, {{"a", {0, 3}}}).Validate().ok());                 // outside
  EXPECT_TRUE(StateAssembler(m, 1, 3, 1, {{"a", {1, 2}}, {"b", {2, 3}}}).Validate().ok());
  const LayerState h = Held(m, 0, 2, 1);
  auto t = Transport::Create([] {
    TransportOptions o;
    o.name = "x";
    o.plaintext = true;
    return o;
  }());
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(SendLayers(**t, "nobody", h, 1, 3, 1).ok());  // beyond what it holds
}

}  // namespace
}  // namespace gt::worker
