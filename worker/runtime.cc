// RunWorker: one worker process of a live run (protocol: coordinator/protocol.h).
#include "worker/runtime.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <fstream>
#include <thread>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/log.h"
#include "comms/collective.h"
#include "comms/keyring.h"
#include "comms/transport.h"
#include "comms/zmq_store.h"
#include "coordinator/protocol.h"
#include "worker/async_checkpoint.h"
#include "worker/model.h"
#include "worker/pipeline.h"
#include "worker/state_transfer.h"

namespace gt::worker {
namespace {

using SteadyClock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Worker {
  WorkerOptions opt;
  Config config;
  int rank = 0, size = 0, site = 0;
  std::string host;
  bool curve = true;
  std::unique_ptr<Transport> control;
  std::unique_ptr<Transport> data;
  CurveKeyPair data_keys;
  CurveKeyPair control_keys;            // this rank's own pair (control channel and store)
  std::string coordinator_key;          // the coordinator's public key
  // Heartbeats (protocol.h): sent from their own thread, so a long step does not silence the rank.
  std::thread heartbeat;
  std::atomic<bool> heartbeat_stop{false};
  std::atomic<int64_t> heartbeat_epoch{0};

  ~Worker() { StopHeartbeat(); }

  // Set by the heartbeat thread when the control channel to the coordinator went down and came up
  // again (a restarted coordinator on the same endpoint, or a cut link that healed): this rank then
  // leaves its epoch and registers again (needs_register), since the coordinator may not know it.
  std::atomic<bool> coordinator_reconnected{false};
  bool needs_register = false;

  void StartHeartbeat() {
    heartbeat = std::thread([this] {
      const auto every = std::chrono::milliseconds(static_cast<int64_t>(live::kHeartbeatSeconds * 1000));
      bool lost = false;
      while (!heartbeat_stop.load()) {
        (void)control->SendControl("coordinator",
                                   {{"type", live::kHeartbeat}, {"rank", rank}, {"epoch", heartbeat_epoch.load()}});
        for (auto t = std::chrono::milliseconds(0); t < every && !heartbeat_stop.load(); t += std::chrono::milliseconds(50)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          const bool up = control->GetPeerState("coordinator").connected;
          if (!up) {
            lost = true;
          } else if (lost) {
            lost = false;
            coordinator_reconnected = true;
          }
        }
      }
    });
  }

  // True once after the coordinator's channel came back (see coordinator_reconnected).
  bool CoordinatorReconnected() {
    if (!coordinator_reconnected.exchange(false)) return false;
    GT_WARN("worker", "rank " << rank << ": the coordinator's channel came back; leaving epoch " << epoch
                              << " and registering again");
    needs_register = true;
    return true;
  }

  // An endpoint this process bound, as its peers must address it.
  std::string Advertised(const std::string& endpoint) const {
    return live::WithHost(endpoint, live::AdvertisedHost(opt.bind_host, opt.advertise_host));
  }

  Status SendRegister() {
    needs_register = false;
    json reg = {{"type", live::kRegister}, {"size", size}, {"site", config.sites[site].name}, {"host", host},
                {"control_endpoint", Advertised(control->endpoint())}, {"data_key", data_keys.public_key}};
    return SendToCoordinator(reg);
  }
  void StopHeartbeat() {
    heartbeat_stop = true;
    if (heartbeat.joinable()) heartbeat.join();
  }

  // This rank's keys: from the environment, the keys directory, or the run's keys (runtime.h).
  Status LoadKeys() {
    const char* secret = std::getenv(kEnvWorkerKey);
    const char* coord = std::getenv(kEnvCoordinatorPublicKey);
    if (secret && coord) {
      control_keys.secret_key = secret;
      auto pub = CurvePublicKey(secret);
      if (!pub.ok()) return pub.status().WithContext(std::string("environment variable ") + kEnvWorkerKey);
      control_keys.public_key = *pub;
      coordinator_key = coord;
      return Status::Ok();
    }
    const std::string dir = opt.keys_dir.empty() ? live::KeysDir(opt.run_dir) : opt.keys_dir;
    ASSIGN_OR_RETURN(control_keys, LoadWorkerKeys(dir, rank, &coordinator_key));
    return Status::Ok();
  }
  bool stop_requested = false;
  double last_snapshot_seconds = 0;  // training time the latest checkpoint snapshot took
  int64_t epoch = 0;                  // of the current assignment; stale commands are dropped
  std::optional<int64_t> pending_halt;  // halt at the boundary before this step
  int64_t allowed = 0;                  // steps before this one may run (the coordinator's grant)
  bool abort_requested = false;         // the coordinator abandoned the current epoch
  // The state this rank held when it last halted, for the next assignment (pause/resume in memory)
  // and for the ranks it is asked to send layers to (send_state). state_senders send zero-copy from
  // `held`: they are destroyed (which waits for ZeroMQ to release the buffers) before it changes.
  LayerState held;
  int64_t held_step = -1;
  std::vector<std::unique_ptr<Transport>> state_senders;
  // Layers read from this site's checkpoint storage for a receiver (send_state with checkpoint), each
  // with the channel sending it zero-copy (destroyed first: it waits for ZeroMQ to release the buffers).
  struct DiskSender {
    std::unique_ptr<LayerState> state;
    std::unique_ptr<Transport> channel;
  };
  std::vector<DiskSender> disk_senders;

  void DropHeld() {
    state_senders.clear();
    DropDiskSenders();
    held = LayerState{};
    held_step = -1;
  }
  void DropDiskSenders() {
    for (auto& d : disk_senders) d.channel.reset();
    disk_senders.clear();
  }

  bool SiteStorage() const { return config.runtime.checkpoint_storage == live::kSiteStorage; }
  // Where this rank's checkpoint layer files go: the run's shared checkpoints/ or its site's storage.
  std::string CheckpointRoot() const {
    return SiteStorage() ? ckpt::SiteCheckpointsDir(opt.run_dir, config.sites[site].name)
                         : ckpt::CheckpointsDir(opt.run_dir);
  }
  std::string StepDir(int64_t step) const {
    return (std::filesystem::path(CheckpointRoot()) / ckpt::StepDirName(step)).string();
  }

  // checkpoint_committed {step, files, keep} (site storage): commits the step in this site's storage
  // (its manifest of the site's files) and applies retention there. Failures are logged: the
  // coordinator's manifest is the commit that counts, the site's one serves verification.
  void CommitSiteCheckpoint(const json& c) {
    Status s = [&]() -> Status {
      ckpt::Manifest m;
      try {
        m.step = c.at("step").get<int64_t>();
        for (const json& f : c.at("files"))
          m.files.push_back({f.at("name").get<std::string>(), f.at("bytes").get<uint64_t>(),
                             f.at("sha256").get<std::string>(), std::string()});
      } catch (const json::exception& e) {
        return InvalidArgument(std::string("malformed checkpoint_committed: ") + e.what());
      }
      RETURN_IF_ERROR(ckpt::WriteManifest(StepDir(m.step), m));
      RETURN_IF_ERROR(ckpt::Prune(CheckpointRoot(), std::max(1, c.value("keep", 3))));
      GT_INFO("worker", "rank " << rank << " committed step " << m.step << " in " << CheckpointRoot());
      return Status::Ok();
    }();
    if (!s.ok()) GT_WARN("worker", "rank " << rank << " could not commit the site's checkpoint: " << s.ToString());
  }

  // send_state {to, endpoint, key, first, last, step}: sends layers of the held state to the rank
  // `to` over a send-only channel authenticated with this rank's data key. A failure is logged, not
  // fatal: the receiver then does not get ready and the coordinator's acknowledgement timeout acts.
  void ServeState(const json& c) {
    Status s = [&]() -> Status {
      if (!c.contains("step") || !c["step"].is_number_integer() || !c.contains("to") || !c["to"].is_number_integer() ||
          !c.contains("first") || !c["first"].is_number_integer() || !c.contains("last") ||
          !c["last"].is_number_integer() || !c.contains("endpoint") || !c["endpoint"].is_string())
        return InvalidArgument("malformed send_state: " + c.dump());
      const int64_t step = c.at("step");
      const int to_rank = c.at("to"), first = c.at("first"), last = c.at("last");
      const bool from_checkpoint = c.value("checkpoint", false);
      std::unique_ptr<LayerState> loaded;
      if (from_checkpoint) {
        loaded = std::make_unique<LayerState>();
        const ModelConfig model = config.runtime.live_model.layers > 0 ? config.runtime.live_model : config.model;
        RETURN_IF_ERROR(ReadLayerState(StepDir(step), model, first, last, loaded.get())
                            .WithContext("reading this site's checkpoint for rank " + std::to_string(to_rank)));
      } else if (step != held_step) {
        return InvalidArgument("asked for layers at step " + std::to_string(step) + " but this rank holds step " +
                                  std::to_string(held_step));
      }
      TransportOptions to;
      to.name = "worker" + std::to_string(rank) + "-state";
      to.plaintext = !curve;
      to.keys = data_keys;
      to.linger = std::chrono::milliseconds(5000);
      ASSIGN_OR_RETURN(auto t, Transport::Create(to));
      RETURN_IF_ERROR(t->Connect("dst", c.at("endpoint").get<std::string>(), c.value("key", std::string())));
      const auto t0 = SteadyClock::now();
      ASSIGN_OR_RETURN(int64_t bytes, SendLayers(*t, "dst", loaded ? *loaded : held, first, last, step));
      if (loaded) disk_senders.push_back({std::move(loaded), std::move(t)});
      else state_senders.push_back(std::move(t));
      GT_INFO("worker", "rank " << rank << " sent layers [" << first << "," << last << ") at step " << step << " to rank "
                                << to_rank << (from_checkpoint ? " from this site's checkpoint" : "") << " ("
                                << bytes / 1e6 << " MB queued in "
                                << std::chrono::duration<double>(SteadyClock::now() - t0).count() << " s)");
      return Status::Ok();
    }();
    if (!s.ok()) GT_WARN("worker", "rank " << rank << " could not send state: " << s.ToString());
  }

  // Receives layers [first, last) at the boundary before `step` from the ranks in `sources` (the
  // assign's state_from: [{rank, key, first, last}]) on the data channel, after telling the
  // coordinator where to send them (receiving); layers this rank holds itself are copied from
  // `held`. Serves send_state meanwhile (ranks may swap layers); an abort sets *abandoned.
  Result<LayerState> ReceiveState(const json& sources, const ModelConfig& model, int first, int last, int64_t step,
                                  bool* abandoned, int64_t* received_bytes) {
    std::map<std::string, StateAssembler::Fragment> senders;
    std::optional<StateAssembler::Fragment> own;
    std::map<std::string, StateAssembler::Fragment> own_checkpoint;  // ranges read from this site's storage
    for (const json& src : sources) {
      StateAssembler::Fragment f{src.at("first").get<int>(), src.at("last").get<int>()};
      const int r = src.at("rank").get<int>();
      std::string name = "src" + std::to_string(r);
      if (r == rank && src.value("checkpoint", false)) {
        name = "local" + std::to_string(own_checkpoint.size());
        own_checkpoint[name] = f;
      } else if (r == rank) {
        own = f;
      }
      senders[name] = f;
    }
    StateAssembler assembler(model, first, last, step, senders);
    RETURN_IF_ERROR(assembler.Validate());
    if (own) RETURN_IF_ERROR(assembler.AcceptLocal("src" + std::to_string(rank), held, step));
    for (const auto& [name, f] : own_checkpoint) {
      LayerState part;
      RETURN_IF_ERROR(ReadLayerState(StepDir(step), model, f.first, f.last, &part)
                          .WithContext("reading this site's checkpoint"));
      RETURN_IF_ERROR(assembler.AcceptLocal(name, part, step));
    }
    RETURN_IF_ERROR(SendToCoordinator({{"type", live::kReceiving}, {"data_endpoint", Advertised(data->endpoint())}}));
    const auto deadline = SteadyClock::now() + opt.connect_timeout;
    while (!assembler.complete()) {
      if (PollControl()) {
        *abandoned = abort_requested;
        return Aborted("left while receiving state");
      }
      if (SteadyClock::now() > deadline)
        return Timeout("the state of layers [" + std::to_string(first) + "," + std::to_string(last) +
                       ") did not arrive within " + std::to_string(opt.connect_timeout.count() / 1000) + " s");
      auto m = data->Receive(std::chrono::milliseconds(50));
      if (!m.ok()) {
        if (m.status().code() == Code::kTimeout) continue;
        return m.status();
      }
      RETURN_IF_ERROR(assembler.Accept(*m));
    }
    GT_INFO("worker", "rank " << rank << " received layers [" << first << "," << last << ") at step " << step << " ("
                              << assembler.bytes_received() / 1e6 << " MB from peers)");
    *received_bytes = assembler.bytes_received();
    return assembler.Take();
  }

  // Waits for a control message of type `type` from the coordinator, serving send_state requests
  // meanwhile; a "stop" ends the wait with Aborted (reason in the message), and so does an abort of
  // the epoch when `abandoned` is given.
  Result<json> AwaitControl(const std::string& type, std::chrono::milliseconds timeout, bool* abandoned = nullptr) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (CoordinatorReconnected() && abandoned) {
        *abandoned = true;
        return Aborted("the coordinator's channel came back: leaving the epoch");
      }
      if (needs_register) RETURN_IF_ERROR(SendRegister());
      auto r = control->Receive(std::chrono::milliseconds(200));
      if (!r.ok()) {
        if (r.status().code() == Code::kTimeout) continue;
        return r.status();
      }
      if (r->kind != FrameKind::kControl) continue;
      const json& c = r->control;
      const std::string got = c.value("type", "");
      if (got == live::kStop) return Aborted("stopped by the coordinator: " + c.value("reason", std::string("")));
      if (got == live::kAbort && abandoned) {
        *abandoned = true;
        return Aborted("epoch abandoned by the coordinator: " + c.value("reason", std::string("")));
      }
      if (got == type) return c;
      if (got == live::kSendState && c.value("epoch", int64_t{-1}) == epoch) {
        ServeState(c);
        continue;
      }
      if (got == live::kCheckpointCommitted) {
        CommitSiteCheckpoint(c);
        continue;
      }
      GT_WARN("worker", "ignoring control message '" << got << "' while waiting for '" << type << "'");
    }
    return Timeout("no '" + type + "' from the coordinator within " + std::to_string(timeout.count()) + " ms");
  }

  Status SendToCoordinator(json body) {
    body["rank"] = rank;
    body["epoch"] = epoch;
    return control->SendControl("coordinator", body);
  }

  // Checkpoint commands received and not yet taken: step -> step directory.
  std::map<int64_t, std::string> pending_checkpoints;

  // Drains the control channel without waiting: records stop and checkpoint commands. True once
  // stopped.
  bool PollControl(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    if (!stop_requested && CoordinatorReconnected()) {
      abort_requested = true;
      return true;
    }
    while (!stop_requested) {
      auto r = control->Receive(wait);
      wait = std::chrono::milliseconds(0);
      if (!r.ok() || r->kind != FrameKind::kControl) break;
      const json& c = r->control;
      const std::string type = c.value("type", "");
      if (type == live::kStop) {
        GT_INFO("worker", "rank " << rank << " stopped by the coordinator: " << c.value("reason", std::string("")));
        stop_requested = true;
      } else if (type == live::kCheckpointCommitted) {
        CommitSiteCheckpoint(c);
      } else if (c.value("epoch", int64_t{-1}) != epoch) {
        GT_INFO("worker", "rank " << rank << " drops a stale '" << type << "' of epoch " << c.value("epoch", -1));
      } else if (type == live::kAbort) {
        GT_WARN("worker", "rank " << rank << " leaves epoch " << epoch << ": " << c.value("reason", std::string()));
        abort_requested = true;
        break;
      } else if (type == live::kSendState) {
        ServeState(c);
      } else if (type == live::kHalt && c.contains("step") && c["step"].is_number_integer()) {
        pending_halt = c["step"].get<int64_t>();
      } else if (type == live::kAllow && c.contains("until") && c["until"].is_number_integer()) {
        allowed = std::max(allowed, c["until"].get<int64_t>());
      } else if (type == live::kCheckpoint && c.contains("step") && c["step"].is_number_integer() &&
                 c.contains("dir") && c["dir"].is_string()) {
        const int64_t step = c["step"].get<int64_t>();
        std::string dir = c["dir"].get<std::string>();
        if (dir.empty()) {  // site storage: this site's own step directory
          dir = StepDir(step);
          std::error_code ec;
          std::filesystem::create_directories(dir, ec);
          if (ec) GT_WARN("worker", "rank " << rank << " cannot create " << dir << ": " << ec.message());
        }
        pending_checkpoints[step] = dir;
      } else {
        GT_WARN("worker", "rank " << rank << " ignores control message '" << type << "' during training");
      }
    }
    return stop_requested || abort_requested;
  }

  Status Setup() {
    ASSIGN_OR_RETURN(config, LoadConfig(opt.config_path));
    if (opt.rank < 0 || opt.size < 0) {
      ASSIGN_OR_RETURN(auto rs, live::RankFromEnvironment());
      rank = rs.first;
      size = rs.second;
    } else {
      rank = opt.rank;
      size = opt.size;
    }
    host = opt.hostname;
    if (host.empty()) {
      char buf[256] = {0};
      gethostname(buf, sizeof buf - 1);
      host = buf;
    }
    ASSIGN_OR_RETURN(site, live::SiteForRank(config, rank, host));
    RETURN_IF_ERROR(SetComputeThreads(opt.threads));
    curve = config.runtime.transport_security != "plain";

    TransportOptions to;
    to.name = "worker" + std::to_string(rank);
    to.max_message_bytes = 16ull << 20;  // control messages are small JSON
    to.bind_endpoint = "tcp://" + opt.bind_host + ":*";
    to.plaintext = !curve;
    to.linger = std::chrono::milliseconds(2000);
    if (curve) {
      RETURN_IF_ERROR(LoadKeys());
      to.keys = control_keys;
      to.allowed_peers[coordinator_key] = "coordinator";
      ASSIGN_OR_RETURN(data_keys, GenerateCurveKeyPair());
    }
    ASSIGN_OR_RETURN(control, Transport::Create(to));
    RETURN_IF_ERROR(control->Connect("coordinator", opt.coordinator_endpoint, coordinator_key));
    RETURN_IF_ERROR(control->WaitConnected("coordinator", opt.connect_timeout)
                        .WithContext("connecting to the coordinator at " + opt.coordinator_endpoint));
    RETURN_IF_ERROR(SendRegister());
    StartHeartbeat();
    return Status::Ok();
  }

  // Closes the links to the neighbour stages at the end of an epoch (ZeroMQ still delivers what is
  // queued), so that the neighbours' exits are not reported as lost peers.
  void ClosePipelineLinks() {
    if (!data) return;
    (void)data->Disconnect("next");
    (void)data->Disconnect("prev");
  }

  Status ReportWritten(const AsyncCheckpointWriter::Finished& f) {
    if (!f.status.ok())
      return SendToCoordinator({{"type", live::kCheckpointFailed}, {"step", f.job.step}, {"message", f.status.ToString()}});
    json files = json::array();
    for (const auto& e : f.files) files.push_back({{"name", e.name}, {"bytes", e.bytes}, {"sha256", e.sha256}});
    return SendToCoordinator({{"type", live::kCheckpointWritten}, {"step", f.job.step}, {"dir", f.job.dir},
                              {"files", files}, {"bytes", f.bytes}, {"snapshot_s", last_snapshot_seconds},
                              {"write_s", f.write_seconds}});
  }

  // At the boundary before step `step`: reports finished background writes, refuses checkpoints
  // whose boundary has passed, and takes the one due now (snapshot to memory; the writer thread
  // writes this rank's layers while training goes on).
  Status CheckpointAt(int64_t step, PipelineRank& pr, AsyncCheckpointWriter& writer, const std::vector<int>& layers) {
    while (auto f = writer.TakeFinished()) RETURN_IF_ERROR(ReportWritten(*f));
    for (auto it = pending_checkpoints.begin(); it != pending_checkpoints.end() && it->first < step;) {
      RETURN_IF_ERROR(SendToCoordinator({{"type", live::kCheckpointFailed}, {"step", it->first},
                                         {"message", "the boundary had passed (rank at step " + std::to_string(step) + ")"}}));
      it = pending_checkpoints.erase(it);
    }
    auto due = pending_checkpoints.find(step);
    if (due == pending_checkpoints.end()) return Status::Ok();
    const auto t0 = SteadyClock::now();
    LayerState* buffer = writer.AcquireBuffer();  // waits for a write still in flight
    while (auto f = writer.TakeFinished()) RETURN_IF_ERROR(ReportWritten(*f));
    RETURN_IF_ERROR(pr.Snapshot(buffer));
    last_snapshot_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    writer.Submit({step, due->second, layers});
    pending_checkpoints.erase(due);
    return Status::Ok();
  }

  // Ends the epoch at the boundary before step `step`: finishes the checkpoint writes, keeps the
  // state in memory, closes the pipeline channels and tells the coordinator.
  Status Halt(int64_t step, PipelineRank& pr, AsyncCheckpointWriter& writer) {
    if (step != *pending_halt)
      return Internal("asked to halt before step " + std::to_string(*pending_halt) + " but already at step " +
                      std::to_string(step) + " (the command came too late)");
    while (auto f = writer.WaitFinished()) RETURN_IF_ERROR(ReportWritten(*f));
    DropHeld();
    RETURN_IF_ERROR(pr.Snapshot(&held));
    held_step = step;
    ClosePipelineLinks();
    GT_INFO("worker", "rank " << rank << " halted before step " << step << " (epoch " << epoch << ")");
    return SendToCoordinator({{"type", live::kHalted}, {"step", step}});
  }

  // Keeps this rank's state at the boundary before step `step` (nothing of that step applied: a
  // step is cancelled or fails before its optimizer update) for the next assignment or for peers.
  void KeepState(PipelineRank& pr, int64_t step) {
    DropHeld();
    if (pr.Snapshot(&held).ok()) held_step = step;
    ClosePipelineLinks();
  }

  // The coordinator abandoned the epoch: the state at `step` is kept and reported (left), so that
  // the next epoch can continue from the survivors' memory instead of the checkpoint.
  Status LeaveEpoch(PipelineRank& pr, int64_t step) {
    if (stop_requested) return Status::Ok();
    KeepState(pr, step);
    return SendToCoordinator({{"type", live::kLeft}, {"held_step", held_step}, {"first", held.first}, {"last", held.last}});
  }

  Status Train(const json& a) {
    ModelConfig model = config.runtime.live_model.layers > 0 ? config.runtime.live_model : config.model;
    PipelineRole role;
    role.stage = a.at("stage");
    role.num_stages = a.at("num_stages");
    role.replica = a.at("replica");
    role.replicas = a.at("replicas");
    role.first_layer = a.at("first");
    role.last_layer = a.at("last");
    role.job = a.at("job");
    role.seed = a.at("seed");
    role.receive_timeout = opt.receive_timeout;
    const int64_t end_step = a.at("end_step");
    const int64_t assigned_start = a.at("start_step");
    const std::string resume_dir = a.at("resume_dir");

    SamplerOptions so;
    so.seq_len = model.seq_len;
    so.micro_batch = model.micro_batch;
    so.global_batch = model.global_batch;
    so.seed = role.seed;
    ASSIGN_OR_RETURN(Sampler sampler,
                     Sampler::FromFile(opt.corpus.empty() ? DefaultCorpusPath() : opt.corpus, so));

    // Data channel: only the two neighbours may send to us.
    TransportOptions to;
    to.name = "stage" + std::to_string(role.stage) + "r" + std::to_string(role.replica);
    to.bind_endpoint = "tcp://" + opt.bind_host + ":*";
    to.plaintext = !curve;
    to.keys = data_keys;
    to.linger = std::chrono::milliseconds(2000);
    to.heartbeat_timeout = std::chrono::milliseconds(30000);
    const json state_from = a.value("state_from", json::array());
    const bool from_memory =
        held_step == assigned_start && held.first == role.first_layer && held.last == role.last_layer;
    const bool from_peers = !from_memory && !state_from.empty();
    if (curve) {
      if (a.contains("prev_key")) to.allowed_peers[a.at("prev_key").get<std::string>()] = "prev";
      if (a.contains("next_key")) to.allowed_peers[a.at("next_key").get<std::string>()] = "next";
      if (from_peers)
        for (const json& src : state_from)
          if (src.at("rank").get<int>() != rank)
            to.allowed_peers[src.at("key").get<std::string>()] = "src" + std::to_string(src.at("rank").get<int>());
    }
    data.reset();
    if (role.num_stages > 1 || from_peers) { ASSIGN_OR_RETURN(data, Transport::Create(to)); }
    if (role.stage > 0) role.prev_peer = "prev";
    if (role.stage + 1 < role.num_stages) role.next_peer = "next";

    std::unique_ptr<Collective> coll;
    std::unique_ptr<PipelineRank> pr;
    int64_t next_step = 0;
    json ready = {{"type", live::kReady}, {"data_endpoint", data ? Advertised(data->endpoint()) : ""}};

    // Rendezvous of the replicas of this stage (gloo through the coordinator's store).
    if (role.replicas > 1) {
      ZmqStoreCredentials cred;
      cred.plaintext = !curve;
      cred.keys = control_keys;
      cred.server_public_key = coordinator_key;
      ASSIGN_OR_RETURN(std::shared_ptr<ZmqStore> store, ZmqStore::Connect(a.at("store_endpoint").get<std::string>(), cred));
      CollectiveOptions co;
      co.store = store;
      co.job = "live-" + std::to_string(role.job) + "-e" + std::to_string(epoch) + "-stage" + std::to_string(role.stage);
      co.members = a.at("members").get<std::vector<int>>();
      co.self = rank;
      co.hostname = live::AdvertisedHost(opt.bind_host, opt.advertise_host);
      // A member that stops answering fails the collective within this (the coordinator's heartbeat
      // timeout, doubled), so that this rank can leave the epoch and take its next assignment.
      co.timeout = std::chrono::milliseconds(a.value("collective_timeout_ms", static_cast<int64_t>(opt.connect_timeout.count())));
      ASSIGN_OR_RETURN(coll, MakeCollective(a.value("collective", std::string("gloo")), co));
    }
    ASSIGN_OR_RETURN(pr, PipelineRank::Create(model, role, &sampler, data.get(), coll.get()));
    const auto state_t0 = SteadyClock::now();
    std::string state_via = "fresh";
    int64_t state_bytes = 0;
    if (from_memory) {
      // The same layers at the same step: the state this rank kept when it halted.
      RETURN_IF_ERROR(pr->Restore(held));
      next_step = assigned_start;
      state_via = "memory";
      GT_INFO("worker", "rank " << rank << " continues layers [" << role.first_layer << "," << role.last_layer
                                << ") from memory at step " << next_step);
    } else if (from_peers) {
      // Resize or migration: the layers come from the ranks that kept them in memory.
      // With site storage, the checkpoint's layers: this site's from its storage, others from a
      // rank of a site keeping them.
      bool abandoned = false;
      int64_t received = 0;
      auto state =
          ReceiveState(state_from, model, role.first_layer, role.last_layer, assigned_start, &abandoned, &received);
      if (abandoned) return Status::Ok();
      if (!state.ok()) return state.status().WithContext("receiving stage " + std::to_string(role.stage) + "'s state");
      state_bytes = state->size_bytes();
      RETURN_IF_ERROR(pr->Restore(*state));
      next_step = assigned_start;
      const bool from_checkpoint = !state_from.empty() && state_from.at(0).value("checkpoint", false);
      state_via = from_checkpoint ? "checkpoint" : "peers";
      if (from_checkpoint) ready["state_fetched_bytes"] = received;
    } else if (!resume_dir.empty()) {
      // Any split may have written the checkpoint: the layers of this stage are assembled from it.
      LayerState state;
      RETURN_IF_ERROR(ReadLayerState(resume_dir, model, role.first_layer, role.last_layer, &state)
                          .WithContext("resuming stage " + std::to_string(role.stage)));
      RETURN_IF_ERROR(pr->Restore(state));
      next_step = assigned_start;
      state_via = "checkpoint";
      state_bytes = state.size_bytes();
      GT_INFO("worker", "rank " << rank << " resumed layers [" << role.first_layer << "," << role.last_layer
                                << ") at step " << next_step << " from " << resume_dir);
    } else if (assigned_start != 0) {
      return InvalidArgument("assigned to start at step " + std::to_string(assigned_start) +
                             " with no state to start from (no checkpoint, nothing held in memory)");
    }
    ready["next_step"] = next_step;
    ready["state_via"] = state_via;
    ready["state_bytes"] = state_bytes;
    ready["state_s"] = std::chrono::duration<double>(SteadyClock::now() - state_t0).count();
    RETURN_IF_ERROR(SendToCoordinator(ready));
    bool abandoned = false;
    auto started = AwaitControl(live::kStart, opt.connect_timeout, &abandoned);
    if (abandoned) {
      abort_requested = true;
      return Status::Ok();
    }
    if (!started.ok()) return started.status();
    DropHeld();  // every rank of the epoch is ready: no one needs the held state any more
    const json& start = *started;
    const int64_t start_step = start.at("start_step");
    allowed = start.value("allowed", end_step);
    if (data) {
      const std::string prev_key = a.value("prev_key", std::string()), next_key = a.value("next_key", std::string());
      if (role.stage > 0) RETURN_IF_ERROR(data->Connect("prev", start.at("prev_endpoint"), prev_key));
      if (role.stage + 1 < role.num_stages) RETURN_IF_ERROR(data->Connect("next", start.at("next_endpoint"), next_key));
      if (role.stage > 0) RETURN_IF_ERROR(data->WaitConnected("prev", opt.connect_timeout).WithContext("stage link to prev"));
      if (role.stage + 1 < role.num_stages)
        RETURN_IF_ERROR(data->WaitConnected("next", opt.connect_timeout).WithContext("stage link to next"));
    }
    GT_INFO("worker", "rank " << rank << " (" << config.sites[site].name << ") stage " << role.stage << "/"
                              << role.num_stages << " replica " << role.replica << "/" << role.replicas << " layers ["
                              << role.first_layer << "," << role.last_layer << ") steps " << start_step << ".."
                              << end_step << " micro-batches " << pr->micro_batches());

    auto cancelled = [this] { return PollControl(); };
    AsyncCheckpointWriter writer;
    const std::vector<int> my_layers = LayersWrittenBy(role.first_layer, role.last_layer, role.replica, role.replicas);
    for (int64_t s = start_step; s < end_step; ++s) {
      if (PollControl()) return LeaveEpoch(*pr, s);
      RETURN_IF_ERROR(CheckpointAt(s, *pr, writer, my_layers));
      if (pending_halt && s >= *pending_halt) return Halt(s, *pr, writer);
      // Step s runs only once granted: every stage then stops at the same boundary when the
      // coordinator halts at the last step it granted (no rank can be past it).
      const auto grant_deadline = SteadyClock::now() + opt.receive_timeout;
      while (s >= allowed) {
        if (PollControl(std::chrono::milliseconds(50))) return LeaveEpoch(*pr, s);
        RETURN_IF_ERROR(CheckpointAt(s, *pr, writer, my_layers));
        if (pending_halt && s >= *pending_halt) return Halt(s, *pr, writer);
        if (SteadyClock::now() > grant_deadline)
          return Timeout("no grant to run step " + std::to_string(s) + " from the coordinator within " +
                         std::to_string(opt.receive_timeout.count() / 1000) + " s");
      }
      StepStats st;
      Status stepped = pr->Step(s, &st, cancelled);
      if (!stepped.ok()) {
        if (abort_requested || stop_requested) return LeaveEpoch(*pr, s);
        KeepState(*pr, s);  // a peer failed (Run reports it): the state before this step is intact
        return stepped;
      }
      json m = {{"type", live::kStep}, {"stage", role.stage}, {"replica", role.replica}, {"step", s},
                {"loss", st.loss},     {"compute_s", st.compute_seconds},
                {"wall_s", st.wall_seconds}, {"allreduce_s", st.allreduce_seconds}};
      RETURN_IF_ERROR(SendToCoordinator(m));
    }
    // The final checkpoint (the coordinator asks for one at end_step) and every write in flight
    // are finished and reported before done.
    const auto end_deadline = SteadyClock::now() + std::chrono::seconds(2);
    while (!pending_checkpoints.count(end_step) && SteadyClock::now() < end_deadline && !PollControl())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (stop_requested || abort_requested) return Status::Ok();
    RETURN_IF_ERROR(CheckpointAt(end_step, *pr, writer, my_layers));
    if (auto f = writer.WaitFinished()) RETURN_IF_ERROR(ReportWritten(*f));
    ClosePipelineLinks();  // training is over
    RETURN_IF_ERROR(SendToCoordinator({{"type", live::kDone}, {"next_step", end_step}}));
    return Status::Ok();
  }

  // Waits for the next assignment; Aborted on stop. No deadline while the coordinator is reachable
  // (idle and halted ranks wait as long as the run lasts); gives up after 60 s without it.
  Result<json> AwaitAssignment() {
    auto lost_since = SteadyClock::now();
    while (true) {
      auto a = AwaitControl(live::kAssign, std::chrono::milliseconds(1000));
      if (a.ok() || a.status().code() != Code::kTimeout) return a;
      if (control->GetPeerState("coordinator").connected) {
        lost_since = SteadyClock::now();
      } else if (SteadyClock::now() - lost_since > std::chrono::seconds(60)) {
        return Unavailable("lost the coordinator for 60 s; giving up");
      }
    }
  }

  // The worker's life: assignments, one epoch each, until the coordinator's stop. An epoch ends
  // when the stage finishes its steps (done) or halts for a reconfiguration (halted, state kept in
  // memory for the next assignment).
  Status Run() {
    RETURN_IF_ERROR(Setup());
    while (!stop_requested) {
      if (needs_register) RETURN_IF_ERROR(SendRegister());
      auto a = AwaitAssignment();
      if (!a.ok()) {
        if (a.status().code() == Code::kAborted) return Status::Ok();
        return a.status();
      }
      epoch = a->value("epoch", int64_t{0});
      heartbeat_epoch = epoch;
      DropDiskSenders();  // the previous epoch's receivers are all served
      // Held state of an older boundary is of no use to anyone any more.
      if (a->value("start_step", int64_t{-1}) != held_step) DropHeld();
      abort_requested = false;
      pending_halt.reset();
      pending_checkpoints.clear();
      if (a->value("role", std::string()) != "stage") {
        GT_INFO("worker", "rank " << rank << " (" << config.sites[site].name << ") is idle in epoch " << epoch);
        continue;
      }
      Status s;
      try {
        s = Train(*a);
      } catch (const std::exception& e) {  // json type errors in a malformed assignment
        s = InvalidArgument(std::string("malformed assignment from the coordinator: ") + e.what());
      }
      if (abort_requested && !stop_requested) {
        // The epoch was abandoned (a peer failed): the state kept by LeaveEpoch (if training had
        // started) serves the next assignment; otherwise it loads a checkpoint.
        ClosePipelineLinks();
        continue;
      }
      if (!s.ok()) {
        if (s.code() == Code::kAborted && stop_requested) return Status::Ok();
        // A peer failed (a collective or a pipeline link broke, or went silent): this rank is fine;
        // it leaves the epoch and waits for the coordinator's next assignment.
        if (s.code() == Code::kUnavailable || s.code() == Code::kTimeout) {
          GT_WARN("worker", "rank " << rank << " leaves epoch " << epoch << " after a peer failure: " << s.ToString());
          ClosePipelineLinks();
          data.reset();
          json failed = {{"type", live::kEpochFailed}, {"message", s.ToString()}};
          if (held_step >= 0) failed.update({{"held_step", held_step}, {"first", held.first}, {"last", held.last}});
          RETURN_IF_ERROR(SendToCoordinator(failed));
          continue;
        }
        return s;
      }
    }
    return Status::Ok();
  }
};

}  // namespace

Status RunWorker(const WorkerOptions& options) {
  Worker w;
  w.opt = options;
  Status s = w.Run();
  if (!s.ok() && w.control) {
    json e = {{"type", live::kError}, {"message", s.ToString()}};
    (void)w.SendToCoordinator(e);
  }
  return s;
}

}  // namespace gt::worker
