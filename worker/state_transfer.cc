#include "worker/state_transfer.h"

#include <nlohmann/json.hpp>

#include "worker/layout.h"

namespace gt::worker {
namespace {

constexpr int kParts = 3;
const char* PartName(int part) {
  static const char* names[kParts] = {"parameters", "exp_avg", "exp_avg_sq"};
  return part >= 0 && part < kParts ? names[part] : "?";
}

const std::vector<float>& PartOf(const LayerState& s, int part) {
  return part == 0 ? s.params : part == 1 ? s.exp_avg : s.exp_avg_sq;
}
std::vector<float>& PartOf(LayerState& s, int part) {
  return part == 0 ? s.params : part == 1 ? s.exp_avg : s.exp_avg_sq;
}

std::string Range(int first, int last) { return "[" + std::to_string(first) + ", " + std::to_string(last) + ")"; }

}  // namespace

Result<int64_t> SendLayers(Transport& t, const std::string& peer, const LayerState& state, int first, int last,
                           int64_t step) {
  if (first < state.first || last > state.last || first >= last)
    return InvalidArgument("asked to send layers " + Range(first, last) + " but this rank holds " +
                           Range(state.first, state.last));
  int64_t bytes = 0;
  for (int layer = first; layer < last; ++layer) {
    const int64_t offset = state.LayerOffset(layer), count = LayerParamCount(state.model, layer);
    for (int part = 0; part < kParts; ++part) {
      const std::vector<float>& v = PartOf(state, part);
      if (offset + count > static_cast<int64_t>(v.size()))
        return Internal("held state is shorter than its layer range (" + std::string(PartName(part)) + ")");
      TensorTag tag{kStateJob, static_cast<uint64_t>(step), layer, part};
      const size_t n = static_cast<size_t>(count) * sizeof(float);
      RETURN_IF_ERROR(t.SendTensor(peer, tag, DType::kFloat32, {count}, v.data() + offset, n, [] {})
                          .WithContext("sending layer " + std::to_string(layer) + " to " + peer));
      bytes += static_cast<int64_t>(n);
    }
  }
  nlohmann::json end = {{"type", kStateEnd}, {"first", first}, {"last", last}, {"step", step},
                        {"adamw_steps", state.adamw_steps}};
  RETURN_IF_ERROR(t.SendControl(peer, end).WithContext("ending the state sent to " + peer));
  return bytes;
}

StateAssembler::StateAssembler(const ModelConfig& model, int first, int last, int64_t step,
                               std::map<std::string, Fragment> senders)
    : step_(step), senders_(std::move(senders)) {
  state_.model = model;
  state_.first = first;
  state_.last = last;
  const int64_t n = RangeParamCount(model, first, last);
  for (int part = 0; part < kParts; ++part) PartOf(state_, part).assign(static_cast<size_t>(n), 0.0f);
}

Status StateAssembler::Validate() const {
  std::vector<int> cover(static_cast<size_t>(std::max(0, state_.last - state_.first)), 0);
  for (const auto& [peer, f] : senders_) {
    if (f.first < state_.first || f.last > state_.last || f.first >= f.last)
      return InvalidArgument("state source " + peer + " sends layers " + Range(f.first, f.last) + " outside " +
                             Range(state_.first, state_.last));
    for (int l = f.first; l < f.last; ++l) ++cover[static_cast<size_t>(l - state_.first)];
  }
  for (size_t i = 0; i < cover.size(); ++i)
    if (cover[i] != 1)
      return InvalidArgument("layer " + std::to_string(state_.first + static_cast<int>(i)) + " is sent by " +
                             std::to_string(cover[i]) + " state sources (exactly one expected)");
  return Status::Ok();
}

// The sender of `layer`'s fragment. An authenticated message must come from it; plaintext and
// in-process messages carry no sender identity (Transport), so there the layer alone decides.
Result<std::map<std::string, StateAssembler::Fragment>::const_iterator> StateAssembler::SenderOf(
    const ReceivedMessage& m, int layer) const {
  const bool anonymous = m.peer == "unauthenticated" || m.peer == "in-process";
  if (!anonymous && !senders_.count(m.peer)) return InvalidArgument("state from an unexpected peer '" + m.peer + "'");
  for (auto it = senders_.begin(); it != senders_.end(); ++it)
    if (layer >= it->second.first && layer < it->second.last) {
      if (!anonymous && it->first != m.peer)
        return InvalidArgument("state from " + m.peer + ": layer " + std::to_string(layer) + " is " + it->first +
                               "'s to send");
      return it;
    }
  return InvalidArgument("state from " + m.peer + ": layer " + std::to_string(layer) + " is outside layers " +
                         Range(state_.first, state_.last));
}

Status StateAssembler::Accept(ReceivedMessage& m) {
  const std::string from = "state from " + m.peer + ": ";
  if (m.kind == FrameKind::kControl) {
    const auto& c = m.control;
    if (c.value("type", std::string()) != kStateEnd) return InvalidArgument(from + "unexpected control message");
    ASSIGN_OR_RETURN(auto it, SenderOf(m, c.value("first", -1)));
    const Fragment& f = it->second;
    if (c.value("first", -1) != f.first || c.value("last", -1) != f.last || c.value("step", int64_t{-1}) != step_)
      return InvalidArgument(from + "end of layers " + Range(c.value("first", -1), c.value("last", -1)) +
                             " at step " + std::to_string(c.value("step", int64_t{-1})) + ", expected " +
                             Range(f.first, f.last) + " at step " + std::to_string(step_));
    const auto steps = c.find("adamw_steps");
    if (steps == c.end() || !steps->is_number_integer() || steps->get<int64_t>() < 0)
      return InvalidArgument(from + "no valid adamw_steps");
    if (adamw_steps_ >= 0 && steps->get<int64_t>() != adamw_steps_)
      return InvalidArgument(from + "AdamW step count " + std::to_string(steps->get<int64_t>()) +
                             " differs from another source's " + std::to_string(adamw_steps_));
    adamw_steps_ = steps->get<int64_t>();
    for (int l = f.first; l < f.last; ++l)
      for (int part = 0; part < kParts; ++part)
        if (!parts_.count({l, part}))
          return InvalidArgument(from + "ended before layer " + std::to_string(l) + " " + PartName(part));
    ended_.insert(it->first);
    return Status::Ok();
  }
  const TensorTag& tag = m.tag;
  const int layer = tag.stage, part = tag.micro_batch;
  if (tag.job != kStateJob || tag.generation != static_cast<uint64_t>(step_))
    return InvalidArgument(from + "a tensor that is not training state at step " + std::to_string(step_));
  ASSIGN_OR_RETURN(auto it, SenderOf(m, layer));
  if (part < 0 || part >= kParts || ended_.count(it->first))
    return InvalidArgument(from + "layer " + std::to_string(layer) + " part " + std::to_string(part) +
                           " is not one it still has to send");
  const int64_t count = LayerParamCount(state_.model, layer);
  if (m.dtype != DType::kFloat32 || m.size() != static_cast<size_t>(count) * sizeof(float))
    return InvalidArgument(from + "layer " + std::to_string(layer) + " " + PartName(part) + " has " +
                           std::to_string(m.size()) + " bytes, expected " + std::to_string(count) +
                           " float32 values");
  if (!parts_.insert({layer, part}).second)
    return InvalidArgument(from + "layer " + std::to_string(layer) + " " + PartName(part) + " sent twice");
  m.CopyTo(PartOf(state_, part).data() + state_.LayerOffset(layer));
  bytes_ += static_cast<int64_t>(m.size());
  return Status::Ok();
}

Status StateAssembler::AcceptLocal(const std::string& sender, const LayerState& held, int64_t step) {
  auto it = senders_.find(sender);
  if (it == senders_.end()) return InvalidArgument("no fragment expected from " + sender);
  const Fragment& f = it->second;
  if (step != step_ || f.first < held.first || f.last > held.last || DescribeModel(held.model) != DescribeModel(state_.model))
    return InvalidArgument("the state held here (layers " + Range(held.first, held.last) + ") cannot give layers " +
                           Range(f.first, f.last) + " at step " + std::to_string(step_));
  if (adamw_steps_ >= 0 && held.adamw_steps != adamw_steps_)
    return InvalidArgument("held AdamW step count " + std::to_string(held.adamw_steps) + " differs from " +
                           std::to_string(adamw_steps_));
  const int64_t src = held.LayerOffset(f.first), dst = state_.LayerOffset(f.first);
  const int64_t n = RangeParamCount(state_.model, f.first, f.last);
  for (int part = 0; part < kParts; ++part) {
    const std::vector<float>& from = PartOf(held, part);
    if (src + n > static_cast<int64_t>(from.size())) return Internal("held state is shorter than its layer range");
    std::copy(from.begin() + src, from.begin() + src + n, PartOf(state_, part).begin() + dst);
    for (int l = f.first; l < f.last; ++l) parts_.insert({l, part});
  }
  adamw_steps_ = held.adamw_steps;
  ended_.insert(sender);
  return Status::Ok();
}

bool StateAssembler::complete() const { return ended_.size() == senders_.size(); }

LayerState StateAssembler::Take() {
  state_.adamw_steps = adamw_steps_;
  return std::move(state_);
}

}  // namespace gt::worker
