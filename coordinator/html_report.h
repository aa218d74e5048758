// Self-contained HTML reports (`simulate --html`, and report.html of every live run): one file that
// opens offline in any browser, with the summary text and line/area charts drawn as inline SVG
// (no scripts or fonts fetched from anywhere). A small inline script checks on load that every
// chart is present and drawn and records any script error, as data-rendered / data-errors on
// <body>, so a headless browser can verify the page (tests/launch/cli_test.cc).
// Pure formatting; no state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "energy/ledger.h"

namespace gt {

// Ten distinguishable colours (a colour per site or policy, in order).
extern const char* const kChartColours[10];
// `s` with & < > " ' escaped for HTML and SVG text and attributes.
std::string XmlEscape(const std::string& s);

struct ChartSeries {
  std::string name;
  std::vector<double> y;  // one value per x of the chart
  bool area = false;      // filled down to zero (else a line)
};

struct Chart {
  std::string title;
  std::string x_label = "trace hours since the start";
  std::string y_label;
  std::vector<double> x;
  std::vector<ChartSeries> series;
};

// Charts from a ledger (rows per site and interval piece), x in hours since the first row:
// renewable power available vs the load drawn at `site` (MW).
Chart SupplyVsLoadChart(const Ledger& ledger, const std::string& site);
// GPUs training per site: where the work ran.
Chart PlacementChart(const Ledger& ledger, const std::vector<std::string>& sites);
// Battery state of charge per site (MWh), for sites with a battery.
Chart BatteryChart(const Ledger& ledger, const std::vector<std::string>& sites);
// Cumulative grid carbon (kg) of each named ledger (e.g. one per policy) on a common time axis.
Chart CumulativeCarbonChart(const std::vector<std::pair<std::string, const Ledger*>>& ledgers);
// Training loss by step.
Chart LossChart(const std::vector<std::pair<int64_t, double>>& curve);

// The page: `title`, the preformatted `summary` (a report's text), then every chart.
std::string HtmlReport(const std::string& title, const std::string& summary, const std::vector<Chart>& charts);
Status WriteHtmlReport(const std::string& path, const std::string& title, const std::string& summary,
                       const std::vector<Chart>& charts);

}  // namespace gt
