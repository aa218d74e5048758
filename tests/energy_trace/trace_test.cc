#include "energy/trace.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

namespace gt {
namespace {

namespace fs = std::filesystem;

const std::string kFix = std::string(GT_TEST_DATA_DIR) + "/traces/";
const std::string kBundled = std::string(GREENTRAIN_SOURCE_DIR) + "/data/eia930-2022/";
const std::string kShared = std::string(GREENTRAIN_SOURCE_DIR) + "/../shared/data";
const std::string kLca = "Carbon Intensity gCO\xE2\x82\x82" "eq/kWh (LCA)";
const std::string kDirect = "Carbon Intensity gCO\xE2\x82\x82" "eq/kWh (direct)";
constexpr UnixSeconds k2022 = 1640995200;  // 2022-01-01T00:00:00Z
constexpr UnixSeconds k2023 = 1672531200;  // 2023-01-01T00:00:00Z
constexpr UnixSeconds k2020 = 1577836800;  // 2020-01-01T00:00:00Z

// ---- independent reading of the file text (no code shared with the reader) ----

std::vector<std::string> TextLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    out.push_back(l);
  }
  return out;
}

std::vector<std::string> NaiveSplit(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t c = line.find(',', start);
    out.push_back(line.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) return out;
    start = c + 1;
  }
}

// Checks every cell of every column of `tr` against the text of a file without missing rows:
// present cells equal the text exactly, empty cells equal the linear interpolation (in row index,
// which is time on a regular grid) of the nearest non-empty cells above and below, or the nearest
// one at the edges. Returns the number of empty cells found in the columns of `tr`.
size_t CheckAgainstText(const std::string& path, const Trace& tr) {
  const auto lines = TextLines(path);
  const auto header = NaiveSplit(lines.at(0));
  EXPECT_EQ(tr.rows, lines.size() - 1) << path;
  EXPECT_EQ(tr.filled_rows, 0u) << path;
  size_t empties = 0;
  for (size_t c = 0; c < tr.column_names.size(); ++c) {
    size_t col = header.size();
    for (size_t h = 0; h < header.size(); ++h)
      if (header[h] == tr.column_names[c]) col = h;
    if (col == header.size()) {
      ADD_FAILURE() << path << ": column " << tr.column_names[c] << " not in the text header";
      continue;
    }
    std::vector<std::string> cells;
    for (size_t i = 1; i < lines.size(); ++i) cells.push_back(NaiveSplit(lines[i]).at(col));
    for (size_t r = 0; r < cells.size() && r < tr.rows; ++r) {
      const double got = tr.columns[c][r];
      if (!cells[r].empty()) {
        EXPECT_EQ(got, std::strtod(cells[r].c_str(), nullptr))
            << path << " line " << r + 2 << " column " << tr.column_names[c];
        continue;
      }
      ++empties;
      long p = static_cast<long>(r) - 1, n = static_cast<long>(r) + 1;
      while (p >= 0 && cells[p].empty()) --p;
      while (n < static_cast<long>(cells.size()) && cells[n].empty()) ++n;
      double expected;
      if (p < 0 && n >= static_cast<long>(cells.size())) {
        ADD_FAILURE() << "column without values";
        continue;
      } else if (p < 0) {
        expected = std::strtod(cells[n].c_str(), nullptr);
      } else if (n >= static_cast<long>(cells.size())) {
        expected = std::strtod(cells[p].c_str(), nullptr);
      } else {
        const double a = std::strtod(cells[p].c_str(), nullptr);
        const double b = std::strtod(cells[n].c_str(), nullptr);
        expected = a + (b - a) * static_cast<double>(static_cast<long>(r) - p) /
                           static_cast<double>(n - p);
      }
      EXPECT_NEAR(got, expected, 1e-9 * std::max(1.0, std::fabs(expected)))
          << path << " filled line " << r + 2 << " column " << tr.column_names[c];
    }
  }
  EXPECT_EQ(tr.filled_cells, empties) << path;
  return empties;
}

// The error carries `code` and its message contains every needle.
template <typename T>
void ExpectError(const Result<T>& r, Code code, std::initializer_list<std::string> needles) {
  ASSERT_FALSE(r.ok()) << "expected an error containing " << *needles.begin();
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (const auto& n : needles)
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << n << "'";
}

// ---- formats and defaults ----

TEST(TraceFormat, NamesRoundTrip) {
  for (TraceFormat f : {TraceFormat::kAuto, TraceFormat::kGeneric, TraceFormat::kEia930,
                        TraceFormat::kElectricityMaps, TraceFormat::kEntsoe}) {
    auto p = ParseTraceFormat(TraceFormatName(f));
    ASSERT_TRUE(p.ok()) << TraceFormatName(f);
    EXPECT_EQ(*p, f);
  }
  EXPECT_EQ(*ParseTraceFormat("EIA930"), TraceFormat::kEia930);
  ExpectError(ParseTraceFormat("csv"), Code::kInvalidArgument, {"'csv'", "eia930"});
}

TEST(TraceFormat, DefaultColumns) {
  EXPECT_EQ(DefaultColumn(TraceFormat::kEia930, Signal::kWind), "WND");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEia930, Signal::kSolar), "SUN");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEia930, Signal::kCarbon), "avg_CI");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEia930, Signal::kPrice), "");
  EXPECT_EQ(DefaultColumn(TraceFormat::kElectricityMaps, Signal::kCarbon), kLca);
  EXPECT_EQ(DefaultColumn(TraceFormat::kElectricityMaps, Signal::kWind), "");
  EXPECT_EQ(DefaultColumn(TraceFormat::kElectricityMaps, Signal::kSolar), "");
  EXPECT_EQ(DefaultColumn(TraceFormat::kElectricityMaps, Signal::kPrice), "");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEntsoe, Signal::kWind), "wind");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEntsoe, Signal::kCarbon), "carbon_intensity");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEntsoe, Signal::kSolar), "");
  EXPECT_EQ(DefaultColumn(TraceFormat::kEntsoe, Signal::kPrice), "");
  for (Signal s : {Signal::kWind, Signal::kSolar, Signal::kCarbon, Signal::kPrice}) {
    EXPECT_EQ(DefaultColumn(TraceFormat::kGeneric, s), "");
    EXPECT_EQ(DefaultColumn(TraceFormat::kAuto, s), "");
  }
}

// ---- generic fixtures ----

TEST(ReadTrace, GenericWellFormed) {
  auto t = ReadTrace(kFix + "generic_ok.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, TraceFormat::kGeneric);
  EXPECT_EQ(t->file, kFix + "generic_ok.csv");
  EXPECT_EQ(t->start, k2022);
  EXPECT_EQ(t->step_seconds, 3600);
  EXPECT_EQ(t->rows, 4u);
  EXPECT_EQ(t->end(), k2022 + 4 * 3600);
  EXPECT_EQ(t->column_names, (std::vector<std::string>{"load", "price"}));
  EXPECT_EQ(t->columns[0], (std::vector<double>{10, 20, 30, 40}));
  EXPECT_EQ(t->columns[1], (std::vector<double>{1.5, 2.5, 3.5, 4.5}));
  EXPECT_EQ(t->filled_cells, 0u);
  EXPECT_EQ(t->filled_rows, 0u);
  auto c = t->Column("price");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((**c)[3], 4.5);
  ExpectError(t->Column("wind"), Code::kNotFound, {"'wind'", "'load'", "'price'"});
}

TEST(ReadTrace, GenericGapsFilledByTheStatedRule) {
  // 15-minute grid from 00:00; rows at 01:00 and 01:15 are missing; see the fixture.
  auto t = ReadTrace(kFix + "generic_gaps.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->step_seconds, 900);
  EXPECT_EQ(t->start, k2022 + (31 + 28) * 86400);
  ASSERT_EQ(t->rows, 9u);
  EXPECT_EQ(t->filled_rows, 2u);
  EXPECT_EQ(t->filled_cells, 5u);  // a: 00:00, 00:30; b: 00:30, 01:45, 02:00
  const std::vector<double> a = {1, 1, 2.5, 4, 6, 8, 10, 12, 14};
  const std::vector<double> b = {5, 6, 7, 8, 12, 16, 20, 20, 20};
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_DOUBLE_EQ(t->columns[0][i], a[i]) << i;
    EXPECT_DOUBLE_EQ(t->columns[1][i], b[i]) << i;
  }
  auto s = ReadSeries(kFix + "generic_gaps.csv", "generic", "b", Signal::kCarbon);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->filled, 5u);  // 3 empty cells + 2 inserted rows
  EXPECT_EQ(s->values, b);
  auto sa = ReadSeries(kFix + "generic_gaps.csv", "auto", "a", Signal::kCarbon);
  ASSERT_TRUE(sa.ok());
  EXPECT_EQ(sa->filled, 4u);
}

TEST(ReadTrace, QuotedFieldsCrlfBomOffsetsAndBlankLines) {
  auto t = ReadTrace(kFix + "generic_quoted_crlf.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, TraceFormat::kGeneric);
  EXPECT_EQ(t->column_names, (std::vector<std::string>{"wind speed, m/s"}));
  EXPECT_EQ(t->start, k2022);
  EXPECT_EQ(t->rows, 3u);
  EXPECT_EQ(t->columns[0], (std::vector<double>{1.25, 2, 3}));
}

TEST(ReadTrace, OnlyRequestedColumnsAreParsed) {
  // Column b holds "abc" on line 3; asking for a only must not look at it.
  ReadOptions o;
  o.columns = {"a"};
  auto t = ReadTrace(kFix + "bad_number.csv", o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->column_names, (std::vector<std::string>{"a"}));
  EXPECT_EQ(t->columns[0], (std::vector<double>{1, 3, 1}));
  // An all-empty column that is not requested is no error either.
  auto u = ReadTrace(kFix + "bad_all_empty_column.csv", o);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->filled_cells, 0u);
}

// ---- malformed files: each names the file, the 1-based line and the column ----

TEST(ReadTraceErrors, MissingFile) {
  ExpectError(ReadTrace(kFix + "no_such_file.csv"), Code::kNotFound, {"no_such_file.csv"});
  ExpectError(ReadSeries(kFix + "no_such_file.csv", "auto", "", Signal::kCarbon), Code::kNotFound,
              {"no_such_file.csv"});
  ExpectError(ReadTrace(kFix), Code::kIoError, {"directory"});
}

TEST(ReadTraceErrors, BadTimestamp) {
  ExpectError(ReadTrace(kFix + "bad_timestamp.csv"), Code::kParseError,
              {"bad_timestamp.csv:4:", "'timestamp'", "25:00"});
}

TEST(ReadTraceErrors, NonNumericCell) {
  ExpectError(ReadTrace(kFix + "bad_number.csv"), Code::kParseError,
              {"bad_number.csv:3:", "column 'b'", "abc"});
  ExpectError(ReadTrace(kFix + "bad_nan.csv"), Code::kParseError, {"bad_nan.csv:3:", "column 'b'"});
}

// Values outside physical ranges are refused where the series is read for a signal, naming the
// file, line and column: a negative intensity, a wind value that is no number a trace can hold, and
// one spike that would set the maximum and flatten the whole capacity-factor profile.
TEST(ReadTraceErrors, ValuesOutsidePhysicalRanges) {
  ExpectError(ReadSeries(kFix + "bad_negative_carbon.csv", "generic", "carbon", Signal::kCarbon), Code::kParseError,
              {"bad_negative_carbon.csv:4:", "column 'carbon'", "-50", "negative", "field 3"});
  ExpectError(ReadSeries(kFix + "bad_outlier_wind.csv", "generic", "wind", Signal::kWind), Code::kParseError,
              {"bad_outlier_wind.csv:152:", "column 'wind'", "1e+308", "not a plausible wind generation"});
  ExpectError(ReadSeries(kFix + "bad_spike_wind.csv", "generic", "wind", Signal::kWind), Code::kParseError,
              {"bad_spike_wind.csv:122:", "column 'wind'", "5000", "99th percentile", "flatten"});
  // The same columns are fine where no signal is implied (a table read as it is) and the other
  // columns of those files are in range.
  EXPECT_TRUE(ReadTrace(kFix + "bad_negative_carbon.csv").ok());
  EXPECT_TRUE(ReadSeries(kFix + "bad_outlier_wind.csv", "generic", "carbon", Signal::kCarbon).ok());
  // Prices may be negative.
  EXPECT_TRUE(ReadSeries(kFix + "bad_negative_carbon.csv", "generic", "carbon", Signal::kPrice).ok());
}

// With clip (the user's explicit choice) the same values are clipped into range and counted.
TEST(ReadTraceErrors, ClipOnRequestBringsValuesIntoRangeAndCountsThem) {
  auto carbon = ReadSeries(kFix + "bad_negative_carbon.csv", "generic", "carbon", Signal::kCarbon, true);
  ASSERT_TRUE(carbon.ok()) << carbon.status().ToString();
  EXPECT_EQ(carbon->clipped, 1u);
  EXPECT_EQ(carbon->values[2], 0.0) << "a negative intensity is clipped to 0";
  EXPECT_EQ(carbon->values[1], 310.0);
  for (const char* f : {"bad_outlier_wind.csv", "bad_spike_wind.csv"}) {
    auto wind = ReadSeries(kFix + f, "generic", "wind", Signal::kWind, true);
    ASSERT_TRUE(wind.ok()) << f << ": " << wind.status().ToString();
    EXPECT_EQ(wind->clipped, 1u) << f;
    auto unclipped = ReadSeries(kFix + f, "generic", "carbon", Signal::kCarbon);
    ASSERT_TRUE(unclipped.ok());
    // The spike is cut to 10x the 99th percentile: the profile is no longer flattened by it.
    std::vector<double> v = wind->values;
    std::sort(v.begin(), v.end());
    const double p99 = v[static_cast<size_t>(0.99 * static_cast<double>(v.size() - 1))];
    EXPECT_LE(v.back(), 10 * p99 + 1e-9) << f;
  }
  // Clean traces are unchanged by clip.
  auto clean = ReadSeries(kFix + "bad_negative_carbon.csv", "generic", "wind", Signal::kWind, true);
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->clipped, 0u);
}

TEST(ReadTraceErrors, UnsortedAndDuplicateTimes) {
  ExpectError(ReadTrace(kFix + "bad_unsorted.csv"), Code::kParseError,
              {"bad_unsorted.csv:4:", "'timestamp'", "line 3"});
  ExpectError(ReadTrace(kFix + "bad_duplicate.csv"), Code::kParseError,
              {"bad_duplicate.csv:4:", "'timestamp'", "repeats"});
}

TEST(ReadTraceErrors, MissingRequestedColumn) {
  ReadOptions o;
  o.columns = {"load", "nope"};
  ExpectError(ReadTrace(kFix + "generic_ok.csv", o), Code::kParseError,
              {"generic_ok.csv:1:", "'nope'", "'load'", "'price'"});
  o.columns = {"timestamp"};
  ExpectError(ReadTrace(kFix + "generic_ok.csv", o), Code::kParseError,
              {"generic_ok.csv:1:", "'timestamp'", "not a numeric column"});
  ExpectError(ReadSeries(kFix + "generic_ok.csv", "auto", "nope", Signal::kWind), Code::kParseError,
              {"generic_ok.csv:1:", "'nope'"});
}

TEST(ReadTraceErrors, RaggedRows) {
  ExpectError(ReadTrace(kFix + "bad_ragged_short.csv"), Code::kParseError,
              {"bad_ragged_short.csv:3:", "column 'b'", "2 fields", "header has 3"});
  ExpectError(ReadTrace(kFix + "bad_ragged_long.csv"), Code::kParseError,
              {"bad_ragged_long.csv:5:", "column 'b'", "4 fields"});
}

TEST(ReadTraceErrors, EmptyAndHeaderOnly) {
  ExpectError(ReadTrace(kFix + "bad_empty.csv"), Code::kParseError, {"bad_empty.csv:1:", "empty"});
  ExpectError(ReadTrace(kFix + "bad_header_only.csv"), Code::kParseError,
              {"bad_header_only.csv:1:", "no data rows"});
}

TEST(ReadTraceErrors, TimeOffTheGrid) {
  ExpectError(ReadTrace(kFix + "bad_off_grid.csv"), Code::kParseError,
              {"bad_off_grid.csv:5:", "'timestamp'", "2022-01-01T03:30:00Z", "3600"});
}

TEST(ReadTraceErrors, ColumnWithoutAnyValue) {
  ExpectError(ReadTrace(kFix + "bad_all_empty_column.csv"), Code::kParseError,
              {"bad_all_empty_column.csv:2:", "column 'b'", "line 4"});
}

TEST(ReadTraceErrors, UnknownHeaderNeedsExplicitFormat) {
  ExpectError(ReadTrace(kFix + "bad_unknown_header.csv"), Code::kParseError,
              {"bad_unknown_header.csv:1:", "time,a", "timestamp"});
  ReadOptions o;
  o.format = TraceFormat::kGeneric;  // the first column is the time, whatever its name
  auto t = ReadTrace(kFix + "bad_unknown_header.csv", o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->columns[0], (std::vector<double>{1, 2}));
}

TEST(ReadTraceErrors, ExplicitFormatThatDoesNotMatch) {
  ReadOptions o;
  o.format = TraceFormat::kEia930;
  ExpectError(ReadTrace(kFix + "electricitymaps_DE-LU_2023_excerpt.csv", o), Code::kParseError,
              {"excerpt.csv:1:", "'timestamp'", "electricitymaps"});
}

TEST(ReadTraceErrors, TooSparseToFill) {
  ExpectError(ReadTrace(kFix + "bad_sparse.csv"), Code::kParseError,
              {"bad_sparse.csv:5:", "'timestamp'", "93 missing"});
}

TEST(ReadTraceErrors, UnterminatedQuoteAndDuplicateHeader) {
  ExpectError(ReadTrace(kFix + "bad_unterminated_quote.csv"), Code::kParseError,
              {"bad_unterminated_quote.csv:3:", "unterminated"});
  ExpectError(ReadTrace(kFix + "bad_duplicate_header.csv"), Code::kParseError,
              {"bad_duplicate_header.csv:1:", "column 'a'", "twice"});
}

// Writes `text` to a fresh file in the temp directory and returns its path.
std::string WriteTemp(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / ("gt_trace_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(ReadTraceErrors, HeaderFaults) {
  const std::string noname = WriteTemp("noname.csv", "timestamp,,b\n2022-01-01,1,2\n");
  ExpectError(ReadTrace(noname), Code::kParseError, {"noname.csv:1:", "field 2", "no column name"});
  const std::string timeonly = WriteTemp("timeonly.csv", "timestamp\n2022-01-01\n2022-01-02\n");
  ExpectError(ReadTrace(timeonly), Code::kParseError, {"timeonly.csv:1:", "no numeric column"});
  const std::string blank = WriteTemp("blank.csv", "\n  \r\n");
  ExpectError(ReadTrace(blank), Code::kParseError, {"blank.csv:1:", "empty"});
  fs::remove_all(fs::path(noname).parent_path());
}

TEST(ReadTraceErrors, GeneratedMalformedFilesNeverCrash) {
  // Truncations of a valid file at every byte: each either reads or fails with a ParseError that
  // names the file, never crashes or aborts.
  const std::string src = "timestamp,a,b\n2022-01-01 00:00:00,1,2\n2022-01-01 01:00:00,,3\n"
                          "2022-01-01 03:00:00,4,\n2022-01-01 04:00:00,5,6\n";
  const fs::path dir = fs::temp_directory_path() / ("gt_trace_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  size_t ok = 0, errors = 0;
  for (size_t n = 0; n <= src.size(); ++n) {
    const std::string path = (dir / ("cut" + std::to_string(n) + ".csv")).string();
    std::ofstream(path, std::ios::binary) << src.substr(0, n);
    auto t = ReadTrace(path);
    if (t.ok()) {
      ++ok;
      for (const auto& col : t->columns) EXPECT_EQ(col.size(), t->rows);
    } else {
      ++errors;
      EXPECT_EQ(t.status().code(), Code::kParseError) << n << ": " << t.status().ToString();
      EXPECT_NE(t.status().message().find(path), std::string::npos) << t.status().message();
    }
  }
  fs::remove_all(dir);
  EXPECT_GT(ok, 0u);
  EXPECT_GT(errors, 0u);
}

// ---- real files: bundled EIA-930 and excerpts of Electricity Maps and ENTSO-E ----

TEST(ReadTraceReal, BundledEia930) {
  const std::map<std::string, size_t> expected_filled = {
      {"BPAT", 0}, {"CISO", 9}, {"ERCO", 0}, {"MISO", 9}, {"PJM", 69}};
  for (const auto& [region, filled] : expected_filled) {
    const std::string path = kBundled + region + "_2022.csv";
    auto t = ReadTrace(path);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->format, TraceFormat::kEia930) << region;
    EXPECT_EQ(t->column_names, (std::vector<std::string>{"WND", "SUN", "avg_CI"})) << region;
    EXPECT_EQ(t->start, k2022);
    EXPECT_EQ(t->step_seconds, 3600);
    EXPECT_EQ(t->rows, 8760u);
    EXPECT_EQ(CheckAgainstText(path, *t), filled) << region;
    EXPECT_EQ(t->filled_cells, filled) << region;
  }
}

TEST(ReadTraceReal, CisoKnownCellsAndFilledCell) {
  auto sun = ReadSeries(kBundled + "CISO_2022.csv", "auto", "", Signal::kSolar);
  auto wind = ReadSeries(kBundled + "CISO_2022.csv", "eia930", "", Signal::kWind);
  ASSERT_TRUE(sun.ok()) << sun.status().ToString();
  ASSERT_TRUE(wind.ok()) << wind.status().ToString();
  EXPECT_EQ(sun->name, "SUN");
  EXPECT_EQ(wind->name, "WND");
  const UnixSeconds t1 = k2022 + 3600;  // 2022-01-01 01:00 (line 3)
  EXPECT_EQ(sun->At(t1), 0.0);
  EXPECT_EQ(wind->At(t1), 3013.0);
  EXPECT_EQ(wind->At(k2022), 3130.0);
  EXPECT_EQ(sun->At(k2022), 1367.0);
  EXPECT_EQ(wind->filled, 3u);  // three fully empty rows
  // 2022-01-05 10:00 (line 108) is empty; its neighbours (lines 107, 109) say WND 2030 and 2100.
  const UnixSeconds gap = k2022 + (4 * 24 + 10) * 3600;
  EXPECT_DOUBLE_EQ(wind->At(gap), (2030.0 + 2100.0) / 2);
  auto ci = ReadSeries(kBundled + "CISO_2022.csv", "auto", "", Signal::kCarbon);
  ASSERT_TRUE(ci.ok());
  EXPECT_DOUBLE_EQ(ci->At(gap), (290.8370167903163 + 296.88716185921385) / 2);
}

TEST(ReadTraceReal, PjmLongGapIsInterpolatedInTime) {
  // Lines 1713..1734 (2022-03-13 07:00 .. 2022-03-14 04:00) are empty; line 1712 has WND 5661,
  // line 1735 has 6971: 23 steps apart.
  auto w = ReadSeries(kBundled + "PJM_2022.csv", "auto", "WND", Signal::kWind);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->filled, 23u);
  const UnixSeconds before = k2022 + (31 + 28 + 12) * 86400 + 6 * 3600;
  EXPECT_EQ(w->At(before), 5661.0);
  EXPECT_EQ(w->At(before + 23 * 3600), 6971.0);
  for (int k = 1; k < 23; ++k)
    EXPECT_NEAR(w->At(before + k * 3600), 5661.0 + (6971.0 - 5661.0) * k / 23.0, 1e-9) << k;
}

TEST(ReadTraceReal, ElectricityMapsExcerpt) {
  const std::string path = kFix + "electricitymaps_DE-LU_2023_excerpt.csv";
  auto t = ReadTrace(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, TraceFormat::kElectricityMaps);
  EXPECT_EQ(t->column_names, (std::vector<std::string>{kDirect, kLca, "Low Carbon Percentage",
                                                       "Renewable Percentage"}));
  EXPECT_EQ(t->start, k2023);
  EXPECT_EQ(t->step_seconds, 3600);
  EXPECT_EQ(t->rows, 99u);
  EXPECT_EQ(CheckAgainstText(path, *t), 0u);
  // Line 2: 2023-01-01 00:00:00,Germany,Germany,DE,140.51,185.8,83.79,78.42,entsoe.eu,false,
  EXPECT_EQ(t->columns[0][0], 140.51);
  EXPECT_EQ(t->columns[1][0], 185.8);
  auto ci = ReadSeries(path, "electricitymaps", "", Signal::kCarbon);
  ASSERT_TRUE(ci.ok()) << ci.status().ToString();
  EXPECT_EQ(ci->name, kLca);
  EXPECT_EQ(ci->values[0], 185.8);
  auto direct = ReadSeries(path, "auto", kDirect, Signal::kCarbon);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_EQ(direct->values[1], 140.44);
  ExpectError(ReadSeries(path, "auto", "", Signal::kWind), Code::kInvalidArgument,
              {"electricitymaps", "wind", kLca, "Renewable Percentage"});
  ExpectError(ReadSeries(path, "auto", "", Signal::kPrice), Code::kInvalidArgument, {"price"});
  ReadOptions o;
  o.columns = {"Zone Name"};
  ExpectError(ReadTrace(path, o), Code::kParseError, {"excerpt.csv:1:", "'Zone Name'", "numeric"});
}

TEST(ReadTraceReal, EntsoeExcerpt) {
  const std::string path = kFix + "entsoe_SE_2020_excerpt.csv";
  auto t = ReadTrace(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, TraceFormat::kEntsoe);
  ASSERT_EQ(t->column_names.size(), 14u);  // 16 fields minus the index and the time
  EXPECT_EQ(t->column_names.front(), "carbon_intensity");
  EXPECT_EQ(t->column_names.back(), "avg_hydro_production_forecast");
  EXPECT_EQ(t->start, k2020);
  EXPECT_EQ(t->rows, 99u);
  EXPECT_EQ(CheckAgainstText(path, *t), 0u);
  auto wind = ReadSeries(path, "entsoe", "", Signal::kWind);
  auto ci = ReadSeries(path, "auto", "", Signal::kCarbon);
  ASSERT_TRUE(wind.ok()) << wind.status().ToString();
  ASSERT_TRUE(ci.ok()) << ci.status().ToString();
  EXPECT_EQ(wind->name, "wind");
  EXPECT_EQ(wind->values[0], 4918.0);  // line 2
  EXPECT_EQ(wind->values[1], 5146.0);  // line 3
  EXPECT_EQ(ci->values[0], 52.05);
  ExpectError(ReadSeries(path, "auto", "", Signal::kSolar), Code::kInvalidArgument,
              {"entsoe", "solar", "'wind'", "'forecast_avg_dswrf_wMean'"});
}

TEST(ReadTraceReal, GenericNeedsANamedColumn) {
  ExpectError(ReadSeries(kFix + "generic_ok.csv", "", "", Signal::kCarbon),
              Code::kInvalidArgument, {"generic", "carbon", "'load'", "'price'"});
  ExpectError(ReadSeries(kFix + "generic_ok.csv", "tsv", "load", Signal::kCarbon),
              Code::kInvalidArgument, {"'tsv'"});
}

// Every file of the shared data set, read fully (skipped when the data set is absent).
TEST(ReadTraceReal, SharedDataSetWhenPresent) {
  if (!fs::is_directory(kShared)) GTEST_SKIP() << kShared << " not present";
  size_t files = 0;
  for (const auto& [folder, format, rows] :
       {std::tuple<std::string, TraceFormat, size_t>{"eia930-2022", TraceFormat::kEia930, 8760},
        {"electricitymaps-2023", TraceFormat::kElectricityMaps, 8760},
        {"entsoe-se-2020", TraceFormat::kEntsoe, 17544}}) {
    if (!fs::is_directory(kShared + "/" + folder)) continue;
    for (const auto& e : fs::directory_iterator(kShared + "/" + folder)) {
      if (e.path().extension() != ".csv") continue;
      const std::string path = e.path().string();
      auto t = ReadTrace(path);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ++files;
      EXPECT_EQ(t->format, format) << path;
      EXPECT_EQ(t->rows, rows) << path;
      EXPECT_EQ(t->step_seconds, 3600) << path;
      const size_t empties = CheckAgainstText(path, *t);
      const std::string name = e.path().filename().string();
      if (name == "PJM_2022.csv" || name == "CISO_2022.csv" || name == "MISO_2022.csv") {
        EXPECT_GT(t->filled_cells, 0u) << path;
      }
      std::cout << "[ fill     ] " << folder << "/" << name << ": rows " << t->rows
                << " columns " << t->columns.size() << " filled_cells " << t->filled_cells
                << " (checked " << empties << ") filled_rows " << t->filled_rows << "\n";
    }
  }
  EXPECT_GE(files, 1u);
}

// ---- Series, Resample, NormalizeByMax ----

Series MakeSeries(std::vector<double> v, int64_t step = 3600, UnixSeconds start = k2022) {
  Series s;
  s.name = "x";
  s.start = start;
  s.step_seconds = step;
  s.values = std::move(v);
  return s;
}

TEST(Series, AtAndIndexOfClamp) {
  Series s = MakeSeries({1, 2, 3}, 3600, 1000);
  EXPECT_EQ(s.IndexOf(-5000), 0u);
  EXPECT_EQ(s.IndexOf(999), 0u);
  EXPECT_EQ(s.IndexOf(1000), 0u);
  EXPECT_EQ(s.IndexOf(4599), 0u);
  EXPECT_EQ(s.IndexOf(4600), 1u);
  EXPECT_EQ(s.IndexOf(1000 + 3 * 3600 - 1), 2u);
  EXPECT_EQ(s.IndexOf(1000 + 3 * 3600), 2u);
  EXPECT_EQ(s.IndexOf(INT64_MAX), 2u);
  EXPECT_EQ(s.At(4600), 2.0);
  EXPECT_EQ(s.At(0), 1.0);
  EXPECT_EQ(s.At(1'000'000), 3.0);
  EXPECT_EQ(s.end(), 1000 + 3 * 3600);
  EXPECT_TRUE(s.Covers(1000, 1000 + 3 * 3600));
  EXPECT_FALSE(s.Covers(999, 2000));
  Series empty = MakeSeries({});
  EXPECT_EQ(empty.IndexOf(k2022), 0u);
  EXPECT_TRUE(std::isnan(empty.At(k2022)));
}

// Independent reference: the mean over each new interval of the reconstruction sampled at the
// middle of every second (exact for both reconstructions when the input step is even: their kinks
// (i + 0.5) * step then fall on whole seconds); linear upsampling samples at the interval centre.
std::vector<double> BruteResample(const Series& in, int64_t step, ResampleMethod m) {
  const int64_t s = in.step_seconds, n = static_cast<int64_t>(in.values.size()), span = s * n;
  auto f = [&](double x) {
    if (m == ResampleMethod::kStep) return in.values[static_cast<size_t>(x / s)];
    double c = x / s - 0.5;  // position in units of centres
    if (c <= 0) return in.values.front();
    if (c >= n - 1) return in.values.back();
    size_t i = static_cast<size_t>(c);
    return in.values[i] + (c - i) * (in.values[i + 1] - in.values[i]);
  };
  std::vector<double> out;
  for (int64_t a = 0; a < span; a += step) {
    const int64_t b = std::min(span, a + step);
    if (m == ResampleMethod::kLinear && step <= s) {
      out.push_back(f(0.5 * static_cast<double>(a + b)));
      continue;
    }
    double acc = 0;
    for (int64_t t = a; t < b; ++t) acc += f(t + 0.5);
    out.push_back(acc / static_cast<double>(b - a));
  }
  return out;
}

TEST(Resample, StepUpHoldsTheValue) {
  Series in = MakeSeries({1, 2, 3});
  in.filled = 1;
  auto r = Resample(in, 900, ResampleMethod::kStep);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->start, in.start);
  EXPECT_EQ(r->step_seconds, 900);
  EXPECT_EQ(r->end(), in.end());
  EXPECT_EQ(r->values, (std::vector<double>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
  EXPECT_EQ(r->filled, 1u);
  EXPECT_EQ(r->name, "x");
}

TEST(Resample, LinearUpInterpolatesBetweenCentres) {
  auto r = Resample(MakeSeries({1, 2, 3}), 900, ResampleMethod::kLinear);
  ASSERT_TRUE(r.ok());
  const std::vector<double> want = {1, 1, 1.125, 1.375, 1.625, 1.875,
                                    2.125, 2.375, 2.625, 2.875, 3, 3};
  ASSERT_EQ(r->values.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r->values[i], want[i], 1e-12) << i;
}

TEST(Resample, StepDownAverages) {
  auto r = Resample(MakeSeries({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), 4 * 3600, ResampleMethod::kStep);
  ASSERT_TRUE(r.ok());
  // The last interval covers only hours 9 and 10 of the input.
  EXPECT_EQ(r->values, (std::vector<double>{2.5, 6.5, 9.5}));
  EXPECT_GE(r->end(), k2022 + 10 * 3600);
}

TEST(Resample, LinearDownAndNonDivisibleMatchBruteForce) {
  Series in = MakeSeries({3, 7, 1, 0, 0, 4, 9, 9, 2, 5, 8, 6, 1});
  for (int64_t step : {900, 1500, 3600, 4000, 4 * 3600, 9000, 5 * 3600, 100 * 3600}) {
    for (ResampleMethod m : {ResampleMethod::kStep, ResampleMethod::kLinear}) {
      auto r = Resample(in, step, m);
      ASSERT_TRUE(r.ok());
      const auto want = BruteResample(in, step, m);
      ASSERT_EQ(r->values.size(), want.size()) << step;
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_NEAR(r->values[i], want[i], 1e-9) << "step " << step << " method "
                                                  << static_cast<int>(m) << " i " << i;
    }
  }
  // Linear 1h -> 4h, first interval by hand: [0, .5h) at 3, then trapezoids between centres,
  // then half a segment from 0 toward 0: (1.5 + 5 + 4 + .5 + 0) / 4.
  auto r = Resample(in, 4 * 3600, ResampleMethod::kLinear);
  EXPECT_NEAR(r->values[0], (0.5 * 3 + 0.5 * (3 + 7) + 0.5 * (7 + 1) + 0.5 * (1 + 0) + 0.5 * 0) / 4,
              1e-12);
}

TEST(Resample, RealSolarDownAndUpKeepsTheMean) {
  auto sun = ReadSeries(kBundled + "CISO_2022.csv", "auto", "", Signal::kSolar);
  ASSERT_TRUE(sun.ok());
  double total = 0;
  for (double v : sun->values) total += v;
  for (ResampleMethod m : {ResampleMethod::kStep, ResampleMethod::kLinear}) {
    auto down = Resample(*sun, 4 * 3600, m);
    auto up = Resample(*sun, 900, m);
    ASSERT_TRUE(down.ok() && up.ok());
    EXPECT_EQ(down->values.size(), 2190u);
    EXPECT_EQ(up->values.size(), 4 * 8760u);
    double d = 0, u = 0;
    for (double v : down->values) d += v * 4;
    for (double v : up->values) u += v / 4;
    // Step conserves the total exactly; linear up to the half intervals at both ends.
    EXPECT_NEAR(d, total, 1e-6 * total + (m == ResampleMethod::kLinear ? 2000 : 0));
    EXPECT_NEAR(u, total, 1e-6 * total + (m == ResampleMethod::kLinear ? 2000 : 0));
  }
  auto down = Resample(*sun, 4 * 3600, ResampleMethod::kStep);
  EXPECT_DOUBLE_EQ(down->values[0], (sun->values[0] + sun->values[1] + sun->values[2] +
                                     sun->values[3]) / 4);
}

TEST(Resample, Errors) {
  ExpectError(Resample(MakeSeries({1}), 0, ResampleMethod::kStep), Code::kInvalidArgument,
              {"step"});
  ExpectError(Resample(MakeSeries({}), 900, ResampleMethod::kLinear), Code::kInvalidArgument,
              {"empty"});
  ExpectError(Resample(MakeSeries({1}, 0), 900, ResampleMethod::kLinear), Code::kInvalidArgument,
              {"step"});
  auto same = Resample(MakeSeries({4, 5}), 3600, ResampleMethod::kLinear);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->values, (std::vector<double>{4, 5}));
}

TEST(NormalizeByMax, ProfileInZeroOne) {
  Series n = NormalizeByMax(MakeSeries({0, 5, 10, 2.5}));
  EXPECT_EQ(n.values, (std::vector<double>{0, 0.5, 1, 0.25}));
  EXPECT_EQ(n.name, "x");
  EXPECT_EQ(NormalizeByMax(MakeSeries({0, 0, 0})).values, (std::vector<double>{0, 0, 0}));
  EXPECT_TRUE(NormalizeByMax(MakeSeries({})).values.empty());
  auto wind = ReadSeries(kBundled + "ERCO_2022.csv", "auto", "", Signal::kWind);
  ASSERT_TRUE(wind.ok());
  Series cf = NormalizeByMax(*wind);
  double mx = 0, mn = 1;
  for (double v : cf.values) { mx = std::max(mx, v); mn = std::min(mn, v); }
  EXPECT_EQ(mx, 1.0);
  EXPECT_GE(mn, 0.0);
}

}  // namespace
}  // namespace gt
