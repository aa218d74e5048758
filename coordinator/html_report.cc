#include "coordinator/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace gt {

const char* const kChartColours[10] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                       "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99"};

std::string XmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {

const char* const* kColours = kChartColours;
std::string Escape(const std::string& s) { return XmlEscape(s); }

std::string Number(double v) {
  char buf[32];
  const double a = std::fabs(v);
  std::snprintf(buf, sizeof buf, a != 0 && (a < 0.01 || a >= 1e5) ? "%.3g" : "%.2f", v);
  return buf;
}

// The rows of `ledger` grouped by time (start of the piece), x in hours since the first row.
struct ByTime {
  std::vector<UnixSeconds> times;
  std::map<UnixSeconds, std::vector<const LedgerRow*>> rows;
};
ByTime GroupByTime(const Ledger& ledger) {
  ByTime g;
  for (const auto& r : ledger.rows()) g.rows[r.time].push_back(&r);
  for (const auto& [t, rows] : g.rows) g.times.push_back(t);
  return g;
}
std::vector<double> HoursFrom(const std::vector<UnixSeconds>& times, UnixSeconds t0) {
  std::vector<double> x;
  for (UnixSeconds t : times) x.push_back(static_cast<double>(t - t0) / 3600.0);
  return x;
}

// One chart as SVG: axes with min/max labels, a series per colour, a legend.
std::string ChartSvg(const Chart& c, int index) {
  const double W = 960, H = 260, left = 70, right = 20, top = 30, bottom = 40;
  const double pw = W - left - right, ph = H - top - bottom;
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1e-12;
  if (!c.x.empty()) {
    xmin = *std::min_element(c.x.begin(), c.x.end());
    xmax = std::max(xmin + 1e-9, *std::max_element(c.x.begin(), c.x.end()));
  }
  for (const auto& s : c.series)
    for (double v : s.y)
      if (std::isfinite(v)) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
  if (ymax <= ymin) ymax = ymin + 1;
  auto X = [&](double v) { return left + pw * (v - xmin) / (xmax - xmin); };
  auto Y = [&](double v) { return top + ph - ph * (v - ymin) / (ymax - ymin); };
  std::ostringstream o;
  o << "<svg class='chart' id='chart" << index << "' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 " << W << ' '
    << H << "' width='" << W << "' height='" << H << "' role='img' aria-label='" << Escape(c.title) << "'>\n";
  o << "<text x='" << left << "' y='18' class='title'>" << Escape(c.title) << "</text>\n";
  o << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph
    << "' fill='none' stroke='#bbb'/>\n";
  o << "<text x='" << left - 6 << "' y='" << top + 10 << "' text-anchor='end'>" << Number(ymax) << "</text>\n";
  o << "<text x='" << left - 6 << "' y='" << top + ph << "' text-anchor='end'>" << Number(ymin) << "</text>\n";
  o << "<text x='" << left << "' y='" << top + ph + 16 << "'>" << Number(xmin) << "</text>\n";
  o << "<text x='" << left + pw << "' y='" << top + ph + 16 << "' text-anchor='end'>" << Number(xmax) << "</text>\n";
  o << "<text x='" << left + pw / 2 << "' y='" << H - 6 << "' text-anchor='middle'>" << Escape(c.x_label)
    << "</text>\n";
  o << "<text x='14' y='" << top + ph / 2 << "' transform='rotate(-90 14 " << top + ph / 2
    << ")' text-anchor='middle'>" << Escape(c.y_label) << "</text>\n";
  for (size_t k = 0; k < c.series.size(); ++k) {
    const ChartSeries& s = c.series[k];
    const char* colour = kColours[k % 10];
    std::ostringstream pts;
    size_t n = std::min(s.y.size(), c.x.size());
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(s.y[i])) pts << X(c.x[i]) << ',' << Y(s.y[i]) << ' ';
    if (s.area && n > 0) {
      o << "<polygon class='series' fill='" << colour << "' fill-opacity='0.35' stroke='none' points='" << X(c.x[0])
        << ',' << Y(0) << ' ' << pts.str() << X(c.x[n - 1]) << ',' << Y(0) << "'><title>" << Escape(s.name)
        << "</title></polygon>\n";
    } else {
      o << "<polyline class='series' fill='none' stroke='" << colour << "' stroke-width='1.5' points='" << pts.str()
        << "'><title>" << Escape(s.name) << "</title></polyline>\n";
    }
    o << "<rect x='" << left + 10 + 150 * static_cast<double>(k % 6) << "' y='" << top + 6 + 14 * (k / 6)
      << "' width='10' height='10' fill='" << colour << "'/><text x='" << left + 24 + 150 * static_cast<double>(k % 6)
      << "' y='" << top + 15 + 14 * (k / 6) << "'>" << Escape(s.name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace

Chart SupplyVsLoadChart(const Ledger& ledger, const std::string& site) {
  Chart c;
  c.title = site + ": renewable power available vs load";
  c.y_label = "MW";
  ChartSeries supply{"renewable available", {}, true}, load{"load", {}, false};
  std::vector<UnixSeconds> times;
  for (const auto& r : ledger.rows()) {
    if (r.site != site || !(r.hours > 0)) continue;
    times.push_back(r.time);
    supply.y.push_back(r.flow.renewable_available_mwh / r.hours);
    load.y.push_back(r.flow.demand_mwh / r.hours);
  }
  c.x = HoursFrom(times, ledger.rows().empty() ? 0 : ledger.rows().front().time);
  c.series = {supply, load};
  return c;
}

namespace {

// A series per site of value(row) over time (`missing` where a site has no row); sites whose values
// are all zero or missing are left out when `skip_empty`.
Chart PerSiteChart(const Ledger& ledger, const std::vector<std::string>& sites, const std::string& title,
                   const std::string& unit, double (*value)(const LedgerRow&), double missing, bool skip_empty) {
  Chart c;
  c.title = title;
  c.y_label = unit;
  const ByTime g = GroupByTime(ledger);
  c.x = HoursFrom(g.times, g.times.empty() ? 0 : g.times.front());
  for (const auto& site : sites) {
    ChartSeries s{site, {}, false};
    bool any = false;
    for (UnixSeconds t : g.times) {
      double v = missing;
      for (const LedgerRow* r : g.rows.at(t))
        if (r->site == site) v = value(*r);
      any |= std::isfinite(v) && v > 0;
      s.y.push_back(v);
    }
    if (any || !skip_empty) c.series.push_back(std::move(s));
  }
  return c;
}

}  // namespace

Chart PlacementChart(const Ledger& ledger, const std::vector<std::string>& sites) {
  return PerSiteChart(ledger, sites, "Placement: GPUs training per site", "GPUs",
                      [](const LedgerRow& r) { return static_cast<double>(r.busy_gpus); }, 0, false);
}

Chart BatteryChart(const Ledger& ledger, const std::vector<std::string>& sites) {
  return PerSiteChart(ledger, sites, "Battery state of charge", "MWh",
                      [](const LedgerRow& r) { return r.flow.soc_after_mwh; }, NAN, true);
}

Chart CumulativeCarbonChart(const std::vector<std::pair<std::string, const Ledger*>>& ledgers) {
  Chart c;
  c.title = "Cumulative grid carbon";
  c.y_label = "kg CO2";
  std::vector<UnixSeconds> all;
  for (const auto& [name, l] : ledgers)
    for (const auto& r : l->rows()) all.push_back(r.time);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  c.x = HoursFrom(all, all.empty() ? 0 : all.front());
  for (const auto& [name, l] : ledgers) {
    std::map<UnixSeconds, double> per_time;
    for (const auto& r : l->rows()) per_time[r.time] += r.flow.carbon_kg;
    ChartSeries s{name, {}, false};
    double sum = 0;
    for (UnixSeconds t : all) {
      auto it = per_time.find(t);
      if (it != per_time.end()) sum += it->second;
      s.y.push_back(sum);
    }
    c.series.push_back(std::move(s));
  }
  return c;
}

Chart LossChart(const std::vector<std::pair<int64_t, double>>& curve) {
  Chart c;
  c.title = "Training loss";
  c.x_label = "step";
  c.y_label = "loss";
  ChartSeries s{"loss", {}, false};
  for (const auto& [step, loss] : curve) {
    c.x.push_back(static_cast<double>(step));
    s.y.push_back(loss);
  }
  c.series = {s};
  return c;
}

std::string HtmlReport(const std::string& title, const std::string& summary, const std::vector<Chart>& charts) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" << Escape(title) << "</title>\n"
    << "<style>body{font-family:sans-serif;margin:24px;color:#222}pre{background:#f6f6f6;padding:12px;"
       "overflow-x:auto;font-size:12px}svg.chart{display:block;margin:18px 0;font-size:11px}"
       "svg .title{font-size:14px;font-weight:bold}</style>\n"
    << "<script>window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String("
       "e.message));});</script>\n</head>\n<body data-charts='"
    << charts.size() << "'>\n<h1>" << Escape(title) << "</h1>\n";
  for (size_t i = 0; i < charts.size(); ++i) o << ChartSvg(charts[i], static_cast<int>(i));
  o << "<h2>Report</h2>\n<pre>" << Escape(summary) << "</pre>\n";
  // Verifies the page once loaded: every chart present with at least one drawn series.
  o << "<script>window.addEventListener('load',function(){var b=document.body;"
       "var want=parseInt(b.dataset.charts,10),got=0;"
       "document.querySelectorAll('svg.chart').forEach(function(s){"
       "if(s.querySelectorAll('.series').length>0&&s.getBBox().width>0)got++;});"
       "b.dataset.drawn=String(got);"
       "b.dataset.rendered=(got===want&&window.__errors.length===0)?'ok':'incomplete';"
       "b.dataset.errors=window.__errors.join(' | ');});</script>\n</body></html>\n";
  return o.str();
}

Status WriteHtmlReport(const std::string& path, const std::string& title, const std::string& summary,
                       const std::vector<Chart>& charts) {
  std::ofstream out(path);
  out << HtmlReport(title, summary, charts);
  out.close();
  if (!out) return IoError("cannot write the HTML report '" + path + "'");
  return Status::Ok();
}

}  // namespace gt
