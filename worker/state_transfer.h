// Moving training state between live ranks over the transport (comms/transport.h, CURVE-encrypted
// by default): how a resize's joining replica or a migrated stage gets the layers that other ranks
// kept in memory when they halted (protocol: coordinator/protocol.h, send_state). No torch.
//
// Wire format, one fragment (layers [first, last) of the sender's LayerState) per sender:
//   per layer l in [first, last): three float32 tensors tagged {job = kStateJob, generation = step,
//     stage = l, micro_batch = part} with part 0 = parameters, 1 = AdamW exp_avg, 2 = exp_avg_sq;
//   then one control message {type: "state_end", first, last, step, adamw_steps}.
//
// Contract. SendLayers sends zero-copy from `state`: it must stay unchanged until the sending
// Transport is destroyed (its destructor waits until ZeroMQ has released every buffer).
// StateAssembler checks everything it is given (sender, layer, part, size, step, AdamW step count)
// and never throws; a message it does not expect is an error naming the sender and what was wrong.
// Threads: plain objects, one thread each.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "comms/transport.h"
#include "worker/layer_state.h"

namespace gt::worker {

constexpr uint64_t kStateJob = 0x5354415445ull;  // "STATE": tags state tensors apart from activations
constexpr const char* kStateEnd = "state_end";

// Sends layers [first, last) (inside [state.first, state.last)) of `state`, the state at the boundary
// before `step`, to `peer` of `t`. Returns the payload bytes sent.
Result<int64_t> SendLayers(Transport& t, const std::string& peer, const LayerState& state, int first, int last,
                           int64_t step);

// Assembles layers [first, last) of `model` at the boundary before `step` from fragments sent by the
// given senders (transport peer name -> layers [first, last) it sends). The fragments must tile the
// range. Authenticated messages must come from the sender of their layer; plaintext and in-process
// ones are matched by layer alone (they carry no sender identity).
class StateAssembler {
 public:
  struct Fragment {
    int first = 0, last = 0;
  };
  StateAssembler(const ModelConfig& model, int first, int last, int64_t step,
                 std::map<std::string, Fragment> senders);

  // InvalidArgument unless the fragments tile the range exactly once.
  Status Validate() const;
  // Takes one received message (a tensor or the sender's state_end).
  Status Accept(ReceivedMessage& m);
  // Takes the fragment of `sender` from `held` (a state this rank kept at `step`) without the transport.
  Status AcceptLocal(const std::string& sender, const LayerState& held, int64_t step);
  bool complete() const;
  int64_t bytes_received() const { return bytes_; }
  // The assembled state; call once complete().
  LayerState Take();

 private:
  Result<std::map<std::string, Fragment>::const_iterator> SenderOf(const ReceivedMessage& m, int layer) const;

  LayerState state_;
  int64_t step_;
  std::map<std::string, Fragment> senders_;
  std::set<std::string> ended_;
  std::set<std::pair<int, int>> parts_;  // (layer, part) received
  int64_t adamw_steps_ = -1;
  int64_t bytes_ = 0;
};

}  // namespace gt::worker
