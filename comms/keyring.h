// Key pairs of a live run's control channels: one for the coordinator and one per worker rank, so
// that the coordinator knows which rank speaks (the CURVE handshake proves the key; the key names
// the rank) and one leaked worker key cannot impersonate another rank.
//
// On disk (a "keys directory", made by `greentrain keys generate` for a cluster, or per run by the
// coordinator under <run_dir>/keys when the workers share its file system):
//   coordinator.pub, coordinator.key   the coordinator's pair (the .key only where it runs)
//   worker-<rank>.pub, worker-<rank>.key   one pair per rank (a host needs only its ranks' .key)
// Every file holds one Z85 key (40 characters) and a newline; secret files are written 0600 and the
// directory 0700. Readers refuse a secret file that others may read, and any key that is not a
// valid Z85 CURVE key, naming the file.
//
// Without a file system in common: `greentrain run` hands each worker it starts its secret key and
// the coordinator's public key in its environment (kEnvWorkerKey, kEnvCoordinatorPublicKey), so no
// key touches the disk; on a cluster copy worker-<rank>.key and coordinator.pub to each host.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "comms/transport.h"

namespace gt {

constexpr const char* kEnvWorkerKey = "GREENTRAIN_WORKER_KEY";
constexpr const char* kEnvCoordinatorPublicKey = "GREENTRAIN_COORDINATOR_KEY";

struct Keyring {
  CurveKeyPair coordinator;
  std::vector<CurveKeyPair> workers;  // index = rank
};

// Fresh pairs for the coordinator and `workers` ranks.
Result<Keyring> GenerateKeyring(int workers);

std::string CoordinatorPublicKeyFile(const std::string& dir);
std::string CoordinatorSecretKeyFile(const std::string& dir);
std::string WorkerPublicKeyFile(const std::string& dir, int rank);
std::string WorkerSecretKeyFile(const std::string& dir, int rank);

// Writes every public key and the workers' secret keys; the coordinator's secret key only when
// `with_coordinator_secret`. Creates `dir` (0700). Refuses to overwrite an existing keys directory
// unless `overwrite`; then the files of ranks beyond this keyring (and a coordinator secret it does
// not write) are removed, so the directory holds exactly this keyring.
Status WriteKeyring(const Keyring& keys, const std::string& dir, bool with_coordinator_secret, bool overwrite);

// What the coordinator needs: its own pair and every rank's public key (ranks 0..workers-1).
Result<Keyring> LoadCoordinatorKeys(const std::string& dir, int workers);

// What worker `rank` needs: its own pair (public key derived from the secret) and the coordinator's
// public key (returned in `coordinator_public`).
Result<CurveKeyPair> LoadWorkerKeys(const std::string& dir, int rank, std::string* coordinator_public);

// A Z85 public key read from `path` (validated); errors name the file.
Result<std::string> ReadPublicKeyFile(const std::string& path);

}  // namespace gt
