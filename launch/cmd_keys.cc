// `greentrain keys generate DIR (--workers N | --config CONFIG) [--force]` and `greentrain keys list DIR`:
// the CURVE key pairs of a cluster's live runs (comms/keyring.h): one for the coordinator and one per
// worker rank. Copy coordinator.key to the coordinator's host and worker-R.key plus coordinator.pub
// to the host of rank R; start them with --keys DIR. No file system needs to be shared.
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include "comms/keyring.h"
#include "coordinator/protocol.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

struct KeysArgs {
  std::string dir, config;
  int workers = 0;
  bool force = false;
};

int Generate(const KeysArgs& a) {
  int n = a.workers;
  if (n == 0) {
    auto cfg = LoadConfigOrDefault(a.config);
    if (!cfg.ok()) return Fail("keys", cfg.status());
    n = live::TotalRanks(*cfg);
    if (n < 1) return Fail("keys", InvalidArgument("the config's sites[].ranks sum to 0; give --workers N"));
  }
  auto keys = GenerateKeyring(n);
  if (!keys.ok()) return Fail("keys", keys.status());
  Status s = WriteKeyring(*keys, a.dir, true, a.force);
  if (!s.ok()) return Fail("keys", s);
  std::cout << "wrote key pairs for the coordinator and " << n << " worker rank(s) to " << a.dir << "\n"
            << "coordinator host: " << a.dir << "/coordinator.key (secret) and worker-*.pub\n"
            << "worker rank R's host: " << a.dir << "/worker-R.key (secret) and coordinator.pub\n"
            << "then: greentrain coordinator CONFIG --keys DIR ... and greentrain worker CONFIG --keys DIR ...\n";
  return 0;
}

int List(const KeysArgs& a) {
  auto coord = ReadPublicKeyFile(CoordinatorPublicKeyFile(a.dir));
  if (!coord.ok()) return Fail("keys", coord.status());
  auto has = [](const std::string& path) { return std::ifstream(path).good(); };
  std::cout << std::left << std::setw(14) << "name" << std::setw(44) << "public key" << "secret here\n";
  std::cout << std::setw(14) << "coordinator" << std::setw(44) << *coord
            << (has(CoordinatorSecretKeyFile(a.dir)) ? "yes" : "no") << "\n";
  for (int r = 0;; ++r) {
    auto pub = ReadPublicKeyFile(WorkerPublicKeyFile(a.dir, r));
    if (!pub.ok()) {
      if (pub.status().code() == Code::kNotFound) break;
      return Fail("keys", pub.status());
    }
    std::cout << std::setw(14) << ("rank " + std::to_string(r)) << std::setw(44) << *pub
              << (has(WorkerSecretKeyFile(a.dir, r)) ? "yes" : "no") << "\n";
  }
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(keys_cmd, "keys", "generate or list the CURVE key pairs of a cluster (coordinator + one per rank)",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<KeysArgs>();
                      app.require_subcommand(1);
                      CLI::App* gen = app.add_subcommand("generate", "write fresh key pairs into DIR (0700, secrets 0600)");
                      gen->add_option("dir", a->dir, "keys directory")->required();
                      auto* w = gen->add_option("--workers", a->workers, "worker ranks (default: the sum of the config's sites[].ranks)")
                                    ->check(WholeNumberIn(1, 100000));
                      gen->add_option("--config", a->config, "config whose sites[].ranks give the number of ranks")
                          ->excludes(w);
                      gen->add_flag("--force", a->force, "replace keys already in DIR");
                      CLI::App* list = app.add_subcommand("list", "list the public keys in DIR and which secrets are present");
                      list->add_option("dir", a->dir, "keys directory")->required();
                      return [a, gen] { return gen->parsed() ? Generate(*a) : List(*a); };
                    });

}  // namespace gt::cli
