#include "common/config.h"
#include "common/strict_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gt {

using nlohmann::json;
namespace fs = std::filesystem;

int Config::SiteIndex(const std::string& name) const {
  for (size_t i = 0; i < sites.size(); ++i)
    if (sites[i].name == name) return static_cast<int>(i);
  return -1;
}

const LinkConfig* Config::FindLink(const std::string& a, const std::string& b) const {
  for (const auto& l : links)
    if ((l.from == a && l.to == b) || (l.from == b && l.to == a)) return &l;
  return nullptr;
}

std::string DefaultConfigPath() {
  return std::string(GREENTRAIN_SOURCE_DIR) + "/launch/configs/default.json";
}

namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const char* TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return j.is_number() ? "a number" : "something else";
  }
}

// Reads the keys of one JSON object, remembering which were used, so that Finish() can reject the
// unknown ones with a "did you mean" hint. The first error sticks; later calls are no-ops.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path, Status* error) : j_(j), path_(std::move(path)), err_(error) {
    if (!j_.is_object() && err_->ok())
      *err_ = InvalidArgument(Where("") + " must be an object, got " + TypeName(j_));
  }

  std::string Where(const std::string& key) const {
    if (key.empty()) return path_.empty() ? "<root>" : path_;
    return path_.empty() ? key : path_ + "." + key;
  }

  const json* Find(const std::string& key) {
    known_.insert(key);
    if (!err_->ok() || !j_.is_object()) return nullptr;
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  bool Has(const std::string& key) { return Find(key) != nullptr; }

  void Fail(const std::string& key, const std::string& what) {
    if (err_->ok()) *err_ = InvalidArgument(Where(key) + ": " + what);
  }

  // Numbers with an inclusive range check.
  void Number(const std::string& key, double& out, double lo, double hi, bool required = false) {
    const json* v = Find(key);
    if (!v) {
      if (required) Fail(key, "is required");
      return;
    }
    if (!v->is_number()) return Fail(key, std::string("must be a number, got ") + TypeName(*v));
    double d = v->get<double>();
    if (d < lo || d > hi) {
      std::ostringstream os;
      os << "value " << d << " is out of range [" << lo << ", " << hi << "]";
      return Fail(key, os.str());
    }
    out = d;
  }

  // A count written as a number: no fractional part (10000 and 1e4 are fine, 1.5 is not).
  void WholeNumber(const std::string& key, double& out, double lo, double hi, bool required = false) {
    const json* v = Find(key);
    if (v && v->is_number() && !IsWholeNumber(*v)) return Fail(key, "must be a whole number, got " + v->dump());
    Number(key, out, lo, hi, required);
  }

  void Int(const std::string& key, int& out, int lo, int hi, bool required = false) {
    double d = out;
    const json* v = Find(key);
    if (v && v->is_number() && !v->is_number_integer())
      return Fail(key, "must be a whole number, got " + v->dump());
    Number(key, d, lo, hi, required);
    out = static_cast<int>(d);
  }

  void String(const std::string& key, std::string& out, bool required = false,
              const std::vector<std::string>& allowed = {}) {
    const json* v = Find(key);
    if (!v) {
      if (required) Fail(key, "is required");
      return;
    }
    if (!v->is_string()) return Fail(key, std::string("must be a string, got ") + TypeName(*v));
    std::string s = v->get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Fail(key, "'" + s + "' is not one of: " + list);
    }
    if (required && s.empty()) return Fail(key, "must not be empty");
    out = s;
  }

  void Time(const std::string& key, UnixSeconds& out, bool required = false) {
    std::string s;
    String(key, s, required);
    if (s.empty()) return;
    auto t = ParseIsoTime(s);
    if (!t.ok()) return Fail(key, t.status().message());
    out = *t;
  }

  void Bool(const std::string& key, bool& out) {
    const json* v = Find(key);
    if (!v) return;
    if (!v->is_boolean()) return Fail(key, std::string("must be true or false, got ") + TypeName(*v));
    out = v->get<bool>();
  }

  void Duration(const std::string& key, int64_t& out) {
    const json* v = Find(key);
    if (!v) return;
    if (v->is_number_integer() && v->get<int64_t>() > 0) {
      out = v->get<int64_t>();
      return;
    }
    if (!v->is_string()) return Fail(key, "must be a duration such as \"1h\" or a number of seconds");
    auto d = ParseDurationSeconds(v->get<std::string>());
    if (!d.ok()) return Fail(key, d.status().message());
    if (*d <= 0) return Fail(key, "must be positive");
    out = *d;
  }

  void Finish() {
    if (!err_->ok() || !j_.is_object()) return;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (known_.count(it.key())) continue;
      std::string best;
      size_t best_d = 4;
      for (const auto& k : known_) {
        size_t d = EditDistance(it.key(), k);
        if (d < best_d) { best_d = d; best = k; }
      }
      std::string hint = best.empty() ? "; allowed keys: " + KnownList() : "; did you mean '" + best + "'?";
      Fail(it.key(), "unknown key" + hint);
      return;
    }
  }

 private:
  std::string KnownList() const {
    std::string s;
    for (const auto& k : known_) s += (s.empty() ? "" : ", ") + k;
    return s;
  }
  const json& j_;
  std::string path_;
  Status* err_;
  std::set<std::string> known_;
};

const std::vector<std::string> kFormats = {"auto", "generic", "eia930", "electricitymaps", "entsoe"};

void ReadTrace(const json& j, const std::string& path, const std::string& base_dir, TraceRef& out,
               Status* err) {
  ObjectReader r(j, path, err);
  r.String("file", out.file, /*required=*/true);
  r.String("format", out.format, false, kFormats);
  r.String("column", out.column);
  r.Bool("clip", out.clip);
  r.Finish();
  if (!err->ok()) return;
  fs::path p(out.file);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  out.file = p.lexically_normal().string();
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    *err = NotFound(path + ".file: trace file '" + out.file +
                    "' does not exist (relative paths are resolved against the config's directory)");
}

void ReadGpu(const json& j, const std::string& path, GpuConfig& g, Status* err) {
  ObjectReader r(j, path, err);
  r.String("type", g.type);
  r.Number("idle_w", g.idle_w, 0, 1e5);
  r.Number("busy_w", g.busy_w, 0, 1e5);
  r.Number("host_w", g.host_w, 0, 1e5);
  r.Number("peak_tflops", g.peak_tflops, 1e-6, 1e6);
  r.Number("mfu", g.mfu, 1e-3, 1);
  r.Number("memory_gb", g.memory_gb, 1e-3, 1e5);
  r.Finish();
  if (err->ok() && g.busy_w < g.idle_w)
    *err = InvalidArgument(path + ".busy_w: " + std::to_string(g.busy_w) +
                           " W is below idle_w; a busy GPU draws at least its idle power");
}

void ReadBattery(const json& j, const std::string& path, BatteryConfig& b, Status* err) {
  ObjectReader r(j, path, err);
  r.Number("capacity_mwh", b.capacity_mwh, 0, 1e7);
  r.Number("charge_mw", b.charge_mw, 0, 1e7);
  r.Number("discharge_mw", b.discharge_mw, 0, 1e7);
  r.Number("round_trip_efficiency", b.round_trip_efficiency, 1e-3, 1);
  r.Number("initial_soc", b.initial_soc, 0, 1);
  r.Number("min_soc", b.min_soc, 0, 1);
  r.Finish();
  if (err->ok() && b.min_soc > b.initial_soc)
    *err = InvalidArgument(path + ".initial_soc: below min_soc; raise initial_soc or lower min_soc");
}

void ReadContracts(const json& j, const std::string& path, const std::string& base_dir, ContractConfig& c,
                   Status* err) {
  ObjectReader r(j, path, err);
  if (const json* t = r.Find("ppa")) {
    c.ppa.emplace();
    ReadTrace(*t, r.Where("ppa"), base_dir, *c.ppa, err);
  }
  r.Number("ppa_mw", c.ppa_mw, 0, 1e6);
  r.Number("ppa_share", c.ppa_share, 0, 1e3);
  r.Number("certificates_mw", c.certificates_mw, 0, 1e6);
  r.Number("certificates_mwh", c.certificates_mwh, 0, 1e12);
  r.Number("residual_mix_g_per_kwh", c.residual_mix_g_per_kwh, 0, 3000);
  r.Finish();
  if (!err->ok()) return;
  if (c.ppa && (c.ppa_mw > 0) == (c.ppa_share > 0))
    *err = InvalidArgument(path + ".ppa: give exactly one of ppa_mw (the trace is a profile scaled by its maximum) "
                                  "or ppa_share (a share of the trace's own MW values)");
  else if (!c.ppa && (c.ppa_mw > 0 || c.ppa_share > 0))
    *err = InvalidArgument(path + ".ppa_mw/ppa_share: a PPA needs its trace, e.g. \"ppa\": {\"file\": \"x.csv\", "
                                  "\"column\": \"WND\"}");
}

void ReadSite(const json& j, const std::string& path, const std::string& base_dir, SiteConfig& s,
              Status* err) {
  ObjectReader r(j, path, err);
  r.String("name", s.name, true);
  r.Int("gpus", s.gpus, 0, 10'000'000, true);
  if (const json* g = r.Find("gpu")) ReadGpu(*g, r.Where("gpu"), s.gpu, err);
  r.Number("pue", s.pue, 1.0, 5.0);
  r.Number("wind_mw", s.wind_mw, 0, 1e6);
  r.Number("solar_mw", s.solar_mw, 0, 1e6);
  if (const json* t = r.Find("wind")) {
    s.wind.emplace();
    ReadTrace(*t, r.Where("wind"), base_dir, *s.wind, err);
  }
  if (const json* t = r.Find("solar")) {
    s.solar.emplace();
    ReadTrace(*t, r.Where("solar"), base_dir, *s.solar, err);
  }
  if (const json* t = r.Find("carbon")) ReadTrace(*t, r.Where("carbon"), base_dir, s.carbon, err);
  else r.Fail("carbon", "is required: a trace of grid carbon intensity, e.g. {\"file\": \"x.csv\"}");
  if (const json* t = r.Find("marginal_carbon")) {
    s.marginal_carbon.emplace();
    ReadTrace(*t, r.Where("marginal_carbon"), base_dir, *s.marginal_carbon, err);
  }
  if (const json* t = r.Find("price")) {
    s.price.emplace();
    ReadTrace(*t, r.Where("price"), base_dir, *s.price, err);
  }
  r.Number("price_per_mwh", s.price_per_mwh, 0, 1e6);
  r.Number("grid_limit_mw", s.grid_limit_mw, 0, std::numeric_limits<double>::infinity());
  if (const json* b = r.Find("battery")) ReadBattery(*b, r.Where("battery"), s.battery, err);
  if (const json* c = r.Find("contracts")) ReadContracts(*c, r.Where("contracts"), base_dir, s.contracts, err);
  if (const json* h = r.Find("hosts")) {
    if (!h->is_array()) r.Fail("hosts", "must be an array of host names");
    else
      for (size_t i = 0; i < h->size(); ++i) {
        if (!(*h)[i].is_string()) {
          r.Fail("hosts[" + std::to_string(i) + "]", "must be a string");
          break;
        }
        s.hosts.push_back((*h)[i].get<std::string>());
      }
  }
  r.Int("ranks", s.ranks, 0, 4096);
  r.Finish();
  if (!err->ok()) return;
  if (s.wind_mw > 0 && !s.wind)
    *err = InvalidArgument(path + ".wind: wind_mw > 0 needs a wind profile trace, e.g. "
                                  "{\"file\": \"CISO_2022.csv\", \"column\": \"WND\"}");
  else if (s.solar_mw > 0 && !s.solar)
    *err = InvalidArgument(path + ".solar: solar_mw > 0 needs a solar profile trace, e.g. "
                                  "{\"file\": \"CISO_2022.csv\", \"column\": \"SUN\"}");
  else if (s.battery.capacity_mwh > 0 && (s.battery.charge_mw <= 0 || s.battery.discharge_mw <= 0))
    *err = InvalidArgument(path + ".battery: a battery with capacity needs charge_mw and discharge_mw > 0");
}

void ReadModel(const json& j, const std::string& path, ModelConfig& m, Status* err) {
  ObjectReader r(j, path, err);
  r.String("name", m.name);
  r.Int("layers", m.layers, 1, 100000);
  r.Int("hidden", m.hidden, 1, 1 << 20);
  r.Int("heads", m.heads, 1, 1 << 14);
  r.Int("seq_len", m.seq_len, 1, 1 << 24);
  r.Int("vocab", m.vocab, 2, 1 << 24);
  r.Int("micro_batch", m.micro_batch, 1, 1 << 20);
  r.Int("global_batch", m.global_batch, 1, 1 << 26);
  r.Int("bytes_per_param", m.bytes_per_param, 1, 8);
  r.Int("optimizer_bytes_per_param", m.optimizer_bytes_per_param, 0, 64);
  r.Finish();
  if (!err->ok()) return;
  if (m.hidden % m.heads != 0)
    *err = InvalidArgument(path + ".heads: hidden (" + std::to_string(m.hidden) +
                           ") must be divisible by heads (" + std::to_string(m.heads) + ")");
  else if (m.global_batch % m.micro_batch != 0)
    *err = InvalidArgument(path + ".global_batch: must be a multiple of micro_batch");
}

}  // namespace

Result<Config> ParseConfig(const std::string& json_text, const std::string& base_dir) {
  ASSIGN_OR_RETURN(json root, ParseStrictJson(json_text, "config"));
  Config c;
  Status err;
  ObjectReader r(root, "", &err);
  r.String("name", c.name);
  r.Duration("interval", c.interval_seconds);
  if (const json* sites = r.Find("sites")) {
    if (!sites->is_array() || sites->empty()) {
      r.Fail("sites", "must be a non-empty array of site objects");
    } else {
      c.sites.resize(sites->size());
      for (size_t i = 0; i < sites->size() && err.ok(); ++i)
        ReadSite((*sites)[i], "sites[" + std::to_string(i) + "]", base_dir, c.sites[i], &err);
    }
  } else {
    r.Fail("sites", "is required: at least one site");
  }
  if (const json* links = r.Find("links")) {
    if (!links->is_array()) {
      r.Fail("links", "must be an array");
    } else {
      c.links.resize(links->size());
      for (size_t i = 0; i < links->size() && err.ok(); ++i) {
        ObjectReader lr((*links)[i], "links[" + std::to_string(i) + "]", &err);
        lr.String("from", c.links[i].from, true);
        lr.String("to", c.links[i].to, true);
        lr.Number("bandwidth_gbps", c.links[i].bandwidth_gbps, 1e-6, 1e6);
        lr.Number("latency_ms", c.links[i].latency_ms, 0, 1e5);
        lr.Number("loss_pct", c.links[i].loss_pct, 0, 100);
        lr.Finish();
      }
    }
  }
  if (const json* m = r.Find("model")) ReadModel(*m, "model", c.model, &err);
  if (const json* j = r.Find("job")) {
    ObjectReader jr(*j, "job", &err);
    jr.WholeNumber("steps", c.job.steps, 1, 1e12, true);
    jr.Time("start", c.job.start, true);
    jr.Number("deadline_hours", c.job.deadline_hours, 1e-3, 1e6, true);
    jr.Number("checkpoint_every_hours", c.job.checkpoint_every_hours, 0, 1e6);
    jr.Bool("pause_releases_gpus", c.job.pause_releases_gpus);
    jr.Finish();
  } else {
    r.Fail("job", "is required: {\"steps\": N, \"start\": \"2022-06-01T00:00:00Z\", \"deadline_hours\": H}");
  }
  if (const json* p = r.Find("policy")) {
    ObjectReader pr(*p, "policy", &err);
    pr.String("name", c.policy.name, false,
              {"carbon-agnostic", "suspend-resume", "static-best-region", "carbonscaler", "greentrain",
               "oracle"});
    pr.String("forecaster", c.policy.forecaster, false,
              {"oracle", "persistence", "seasonal-naive", "blend"});
    pr.Number("carbon_threshold", c.policy.carbon_threshold, 0, 1e5);
    pr.Number("safety_margin", c.policy.safety_margin, 0, 0.9);
    pr.Number("renewable_derate", c.policy.renewable_derate, 0, 1);
    pr.Number("derate_quantile", c.policy.derate_quantile, 0, 1);
    pr.Number("hedge_below_slack", c.policy.hedge_below_slack, 1, 1e6);
    pr.Number("hedge_min_spread", c.policy.hedge_min_spread, 1, 1e6);
    pr.Finish();
  }
  std::string sim_end;
  r.String("simulate_until", sim_end);
  if (!sim_end.empty()) {
    auto t = ParseIsoTime(sim_end);
    if (!t.ok()) r.Fail("simulate_until", t.status().message());
    else c.sim_end = *t;
  }
  c.runtime.live_model.layers = 0;
  if (const json* ac = r.Find("accounting")) {
    ObjectReader ar(*ac, "accounting", &err);
    ar.Number("wan_kwh_per_gb", c.accounting.wan_kwh_per_gb, 0, 100);
    ar.String("basis", c.accounting.basis, false, {"auto", "direct", "life-cycle"});
    ar.Number("wind_lifecycle_g_per_kwh", c.accounting.wind_lifecycle_g_per_kwh, 0, 3000);
    ar.Number("solar_lifecycle_g_per_kwh", c.accounting.solar_lifecycle_g_per_kwh, 0, 3000);
    ar.Number("battery_lifecycle_g_per_kwh", c.accounting.battery_lifecycle_g_per_kwh, 0, 3000);
    ar.Finish();
  }
  if (const json* rt = r.Find("runtime")) {
    ObjectReader rr(*rt, "runtime", &err);
    rr.Number("wall_seconds_per_trace_hour", c.runtime.wall_seconds_per_trace_hour, 1e-3, 1e6);
    rr.String("pace", c.runtime.pace, false, {"box", "plan"});
    rr.String("collective", c.runtime.collective, false, {"gloo", "nccl", "mpi"});
    rr.String("transport_security", c.runtime.transport_security, false, {"curve", "plain"});
    rr.Int("base_port", c.runtime.base_port, 1024, 65000);
    rr.String("checkpoint_dir", c.runtime.checkpoint_dir);
    rr.Int("keep_checkpoints", c.runtime.keep_checkpoints, 1, 1000);
    rr.String("checkpoint_storage", c.runtime.checkpoint_storage, false, {"shared", "site"});
    if (const json* lm = rr.Find("live_model")) ReadModel(*lm, "runtime.live_model", c.runtime.live_model, &err);
    rr.Int("live_steps", c.runtime.live_steps, 1, 100000000);
    rr.Finish();
  }
  r.Finish();
  if (!err.ok()) return err;

  if (c.runtime.live_model.layers == 0) c.runtime.live_model = c.model;
  if (!c.runtime.checkpoint_dir.empty() && fs::path(c.runtime.checkpoint_dir).is_relative())
    c.runtime.checkpoint_dir = (fs::path(base_dir) / c.runtime.checkpoint_dir).lexically_normal().string();
  std::set<std::string> names;
  for (size_t i = 0; i < c.sites.size(); ++i) {
    if (!names.insert(c.sites[i].name).second)
      return InvalidArgument("sites[" + std::to_string(i) + "].name: duplicate site name '" +
                             c.sites[i].name + "'; site names must be unique");
    // A site's name names its checkpoint storage directory (runtime.checkpoint_storage "site").
    const std::string& n = c.sites[i].name;
    if (n.empty() || n == "." || n == ".." || n.find_first_of("/\\") != std::string::npos ||
        std::any_of(n.begin(), n.end(), [](unsigned char ch) { return ch < 0x20; }))
      return InvalidArgument("sites[" + std::to_string(i) + "].name: '" + n +
                             "' cannot name a directory (use letters, digits, '-', '_', without '/')");
  }
  for (size_t i = 0; i < c.links.size(); ++i) {
    const auto& l = c.links[i];
    std::string where = "links[" + std::to_string(i) + "]";
    if (!names.count(l.from))
      return InvalidArgument(where + ".from: '" + l.from + "' is not a defined site (sites are: " +
                             [&] { std::string s; for (auto& n : names) s += (s.empty() ? "" : ", ") + n; return s; }() + ")");
    if (!names.count(l.to))
      return InvalidArgument(where + ".to: '" + l.to + "' is not a defined site");
    if (l.from == l.to) return InvalidArgument(where + ": a link must join two different sites");
  }
  if (c.interval_seconds % 60 != 0 || c.interval_seconds > 86400)
    return InvalidArgument("interval: must be whole minutes and at most 1d");
  if (c.sim_end == 0)
    c.sim_end = c.job.start + static_cast<int64_t>(1.5 * c.job.deadline_hours * 3600);
  if (c.sim_end <= c.job.start)
    return InvalidArgument("simulate_until: must be after job.start");
  return c;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open config file '" + path + "'; check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  fs::path p = fs::absolute(path);
  auto c = ParseConfig(ss.str(), p.parent_path().string());
  if (!c.ok()) return c.status().WithContext(path);
  c->path = p.string();
  return c;
}

}  // namespace gt
