// Emulated WAN on one machine: each site (and the coordinator) in a network namespace of its own,
// wired to a bridge in a "switch" namespace by veth pairs, with the links' rate, delay and loss
// applied to each site's traffic towards each other site (tc: an htb class per destination site,
// netem under it for delay and loss). Addresses 10.231.0.0/24: the coordinator .2, site i .(10+i).
// Nothing is created in the machine's own namespace.
//
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the `ip` and `tc` commands (iproute2). Where
// namespaces cannot be made, Create fails with Unavailable saying why. Where the kernel lacks the
// netem qdisc, rates are still emulated and notes() says that delay and loss are not.
//
// Ownership: the destructor kills every process left in the namespaces and removes them. A process
// killed before it (SIGKILL) leaves them behind: RemoveStale removes those of dead owners.
// Not thread-safe; EnterCoordinatorNamespace must run before the process starts any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gt {

struct WanLink {
  int a = 0, b = 0;          // site indices (undirected)
  double gbps = 10;          // rate, each direction
  double latency_ms = 0;     // one-way delay
  double loss_pct = 0;       // packet loss, each direction
};

class WanEmulation {
 public:
  // Namespaces are named "<prefix><pid>-<host>" (host: sw, c, s0, s1, ...).
  static Result<std::unique_ptr<WanEmulation>> Create(int sites, const std::vector<WanLink>& links,
                                                      const std::string& prefix = "gtw");
  ~WanEmulation();
  WanEmulation(const WanEmulation&) = delete;
  WanEmulation& operator=(const WanEmulation&) = delete;

  std::string SiteNamespace(int site) const;
  std::string SiteAddress(int site) const;
  std::string CoordinatorNamespace() const;
  std::string CoordinatorAddress() const { return "10.231.0.2"; }
  // Moves the calling thread (the whole process, when called before it starts threads) into the
  // coordinator's namespace.
  Status EnterCoordinatorNamespace() const;
  bool delay_emulated() const { return netem_; }
  // Cuts (up = false) or restores site `site`'s only link to the others: a network partition.
  Status SetSiteConnected(int site, bool up) const;
  // What is and is not emulated, one line each.
  const std::vector<std::string>& notes() const { return notes_; }

  // Removes namespaces "<prefix><pid>-*" whose pid is no longer running.
  static void RemoveStale(const std::string& prefix = "gtw");

 private:
  WanEmulation() = default;
  std::string Name(const std::string& host) const { return tag_ + host; }
  Status AddHost(const std::string& host, int octet);
  Status Shape(int site, const std::vector<WanLink>& links, int sites);
  std::string id_;   // "<pid>-"
  std::string tag_;  // prefix + id_
  std::vector<std::string> made_;
  bool netem_ = false;
  std::vector<std::string> notes_;
};

}  // namespace gt
