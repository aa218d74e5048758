#include "comms/wan_emulation.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "common/log.h"

namespace gt {
namespace {

// Runs a shell command; the status carries its output when it fails.
Status Sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return IoError("cannot run: " + cmd);
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  if (rc != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return Unavailable("'" + cmd + "' failed: " + out);
  }
  return Status::Ok();
}

std::string Rate(double gbps) {
  std::ostringstream o;
  o << static_cast<long long>(gbps * 1e6 + 0.5) << "kbit";
  return o.str();
}

}  // namespace

std::string WanEmulation::SiteNamespace(int site) const { return Name("s" + std::to_string(site)); }
std::string WanEmulation::SiteAddress(int site) const { return "10.231.0." + std::to_string(10 + site); }
std::string WanEmulation::CoordinatorNamespace() const { return Name("c"); }

Status WanEmulation::AddHost(const std::string& host, int octet) {
  const std::string ns = Name(host), sw = Name("sw");
  const std::string a = "v" + id_ + host, b = "w" + id_ + host;  // interface names: <= 15 characters
  made_.push_back(ns);
  const std::string in = "ip netns exec " + ns + " ";
  RETURN_IF_ERROR(Sh("ip netns add " + ns));
  RETURN_IF_ERROR(Sh(in + "ip link set lo up"));
  RETURN_IF_ERROR(Sh(in + "ip link add " + a + " type veth peer name " + b));
  RETURN_IF_ERROR(Sh(in + "ip link set " + b + " netns " + sw));
  RETURN_IF_ERROR(Sh(in + "ip addr add 10.231.0." + std::to_string(octet) + "/24 dev " + a));
  RETURN_IF_ERROR(Sh(in + "ip link set " + a + " up"));
  return Sh("ip netns exec " + sw + " ip link set " + b + " master br0 up");
}

// Site `site`'s egress: towards each linked site an htb class at the link's rate (netem under it
// for delay and loss), everything else (the coordinator, unlinked sites) unshaped.
Status WanEmulation::Shape(int site, const std::vector<WanLink>& links, int sites) {
  const std::string ns = SiteNamespace(site);
  const std::string dev = "v" + id_ + "s" + std::to_string(site);
  const std::string tc = "ip netns exec " + ns + " tc ";
  RETURN_IF_ERROR(Sh(tc + "qdisc add dev " + dev + " root handle 1: htb default 999"));
  RETURN_IF_ERROR(Sh(tc + "class add dev " + dev + " parent 1: classid 1:999 htb rate 100gbit"));
  for (const WanLink& l : links) {
    if (l.a != site && l.b != site) continue;
    const int other = l.a == site ? l.b : l.a;
    if (other < 0 || other >= sites || other == site) continue;
    const std::string cls = "1:" + std::to_string(10 + other);
    RETURN_IF_ERROR(Sh(tc + "class add dev " + dev + " parent 1: classid " + cls + " htb rate " + Rate(l.gbps)));
    if (netem_ && (l.latency_ms > 0 || l.loss_pct > 0)) {
      std::ostringstream q;
      q << tc << "qdisc add dev " << dev << " parent " << cls << " handle " << (10 + other) << ": netem delay "
        << l.latency_ms << "ms loss " << l.loss_pct << "% limit 100000";
      RETURN_IF_ERROR(Sh(q.str()));
    }
    RETURN_IF_ERROR(Sh(tc + "filter add dev " + dev + " protocol ip parent 1: prio 1 u32 match ip dst " +
                       SiteAddress(other) + "/32 flowid " + cls));
  }
  return Status::Ok();
}

Result<std::unique_ptr<WanEmulation>> WanEmulation::Create(int sites, const std::vector<WanLink>& links,
                                                            const std::string& prefix) {
  if (sites < 1 || sites > 200) return InvalidArgument("WAN emulation: between 1 and 200 sites, got " + std::to_string(sites));
  for (const WanLink& l : links)
    if (!(l.gbps > 0) || l.latency_ms < 0 || l.loss_pct < 0 || l.loss_pct > 100)
      return InvalidArgument("WAN emulation: a link needs a rate > 0, a delay >= 0 and a loss in [0, 100] %");
  RemoveStale(prefix);
  std::unique_ptr<WanEmulation> w(new WanEmulation());
  w->id_ = std::to_string(getpid()) + "-";
  w->tag_ = prefix + w->id_;
  Status s = Sh("ip netns add " + w->Name("sw"));
  if (!s.ok())
    return Unavailable("network namespaces cannot be created here (needs root with CAP_NET_ADMIN and iproute2): " +
                       s.message());
  RETURN_IF_ERROR(Sh("ip netns exec " + w->Name("sw") + " ip link add br0 type bridge"));
  RETURN_IF_ERROR(Sh("ip netns exec " + w->Name("sw") + " ip link set br0 up"));
  RETURN_IF_ERROR(w->AddHost("c", 2));
  for (int i = 0; i < sites; ++i) RETURN_IF_ERROR(w->AddHost("s" + std::to_string(i), 10 + i));
  // netem is a kernel module some kernels lack: probe it on the coordinator's loopback.
  w->netem_ = Sh("ip netns exec " + w->Name("c") + " tc qdisc add dev lo root netem delay 1ms").ok();
  if (w->netem_) (void)Sh("ip netns exec " + w->Name("c") + " tc qdisc del dev lo root");
  for (int i = 0; i < sites; ++i) RETURN_IF_ERROR(w->Shape(i, links, sites));
  w->notes_.push_back("each site in its own network namespace (" + w->tag_ + "s<i>, 10.231.0.<10+i>), the coordinator in " +
                      w->CoordinatorNamespace() + " (10.231.0.2)");
  w->notes_.push_back("link rates emulated (htb, each direction)");
  w->notes_.push_back(w->netem_ ? "link delay and loss emulated (netem)"
                                : "this kernel has no netem qdisc: link delay and loss are NOT emulated, only rates");
  return w;
}

WanEmulation::~WanEmulation() {
  // Not this process (which may have entered the coordinator's namespace).
  const std::string self = std::to_string(getpid());
  for (const auto& n : made_) (void)Sh("ip netns pids " + n + " | grep -vx " + self + " | xargs -r kill -9");
  for (const auto& n : made_) (void)Sh("ip netns del " + n);
  (void)Sh("ip netns del " + Name("sw"));
}

Status WanEmulation::SetSiteConnected(int site, bool up) const {
  const std::string dev = "w" + id_ + "s" + std::to_string(site);  // the switch's end
  return Sh("ip netns exec " + Name("sw") + " ip link set " + dev + (up ? " up" : " down"));
}

Status WanEmulation::EnterCoordinatorNamespace() const {
  const std::string path = "/var/run/netns/" + CoordinatorNamespace();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path);
  const int rc = setns(fd, CLONE_NEWNET);
  close(fd);
  if (rc != 0) return IoError("cannot enter the network namespace " + CoordinatorNamespace());
  return Status::Ok();
}

void WanEmulation::RemoveStale(const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/var/run/netns", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dash = name.find('-', prefix.size());
    if (dash == std::string::npos) continue;
    const std::string pid = name.substr(prefix.size(), dash - prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (kill(std::stoi(pid), 0) == 0 || errno == EPERM) continue;  // its owner still runs
    GT_INFO("wan", "removing the stale network namespace " << name);
    (void)Sh("ip netns pids " + name + " | xargs -r kill -9");
    (void)Sh("ip netns del " + name);
  }
}

}  // namespace gt
