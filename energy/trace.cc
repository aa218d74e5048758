// Trace readers, gap filling and resampling (contract in trace.h).
//
// Decisions made here that trace.h leaves open:
// - Counting: Trace::filled_cells counts empty cells of rows present in the file (a row whose cells
//   are all empty is a present row, so all of its cells count here); Trace::filled_rows counts time
//   steps absent from the file and inserted on the grid. The two are disjoint: the values filled in
//   a column are (its empty cells) + filled_rows. Series::filled is that sum for its column.
// - Step: the most common difference between consecutive timestamps (ties: the smaller one); a file
//   with one data row gets 3600 s. Every time must lie on the grid start + k * step.
// - Missing rows are filled only while they are at most as many as the rows present: a file with
//   more invented rows than real ones is reported as malformed (probably a wrong step), not filled.
// - Blank lines are skipped. A UTF-8 byte-order mark before the header is ignored.
// - Text columns (Electricity Maps: Country, Zone Name, Zone Id, Data Source, Data Estimated, Data
//   Estimation Method; ENTSO-E: the unnamed index column) are neither parsed nor returned. Every other
//   non-time column is numeric, and a non-numeric cell in it is an error.
// - A column the caller names that does not exist (or is a text/time column) is a ParseError
//   naming line 1, like the other faults of the file's header.
#include "energy/trace.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <functional>
#include <sstream>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <sys/stat.h>

#include "common/csv.h"

namespace gt {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string JoinNames(const std::vector<std::string>& names) {
  if (names.empty()) return "(none)";
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += "'" + n + "'";
  }
  return out;
}

const char* SignalName(Signal s) {
  switch (s) {
    case Signal::kWind: return "wind";
    case Signal::kSolar: return "solar";
    case Signal::kCarbon: return "carbon";
    case Signal::kPrice: return "price";
  }
  return "?";
}

// "<file>:<line>: column '<name>': <what>", the shape of every error about a place in a file.
Status FileError(const std::string& file, size_t line, const std::string& column,
                 const std::string& what) {
  std::string m = file + ":" + std::to_string(line) + ": ";
  if (!column.empty()) m += "column '" + column + "': ";
  return ParseError(m + what);
}

Status LoadFile(const std::string& path, std::string* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return NotFound(path + ": trace file not found (check the path in the configuration)");
    return IoError(path + ": cannot read trace file: " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) return IoError(path + ": is a directory, expected a CSV trace file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError(path + ": cannot open trace file: " + std::strerror(errno));
  out->clear();
  if (st.st_size > 0) out->reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return IoError(path + ": error while reading trace file");
  return Status::Ok();
}

// Iterates the lines of a buffer with their 1-based numbers; the '\n' (and a '\r' before it) are
// not part of the line.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool Next(std::string_view* line, size_t* number) {
    if (pos_ >= text_.size()) return false;
    size_t nl = text_.find('\n', pos_);
    size_t end = nl == std::string_view::npos ? text_.size() : nl;
    std::string_view l = text_.substr(pos_, end - pos_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    *line = l;
    *number = ++line_;
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 0;
};

bool IsBlank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

// Splits a line into views. Unquoted lines (all of the real data) are split in place; a line with
// a quote goes through SplitCsvLine and the views point into *storage.
Status SplitFields(std::string_view line, std::vector<std::string>* storage,
                   std::vector<std::string_view>* fields) {
  fields->clear();
  if (line.find('"') == std::string_view::npos) {
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      if (comma == std::string_view::npos) {
        fields->push_back(line.substr(start));
        break;
      }
      fields->push_back(line.substr(start, comma - start));
      start = comma + 1;
    }
    return Status::Ok();
  }
  auto split = SplitCsvLine(line);
  if (!split.ok()) return split.status();
  *storage = std::move(split).value();
  for (const auto& s : *storage) fields->push_back(s);
  return Status::Ok();
}

const char* const kEiaColumns[] = {"WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH", "avg_CI"};
const char* const kElectricityMapsText[] = {"country",     "zone name",      "zone id",
                                            "data source", "data estimated", "data estimation method"};
constexpr const char* kElectricityMapsTime = "Datetime (UTC)";
constexpr const char* kEntsoeTime = "UTC time";

int FindColumn(const std::vector<std::string>& names, std::string_view wanted) {
  const std::string w = Lower(wanted);
  for (size_t i = 0; i < names.size(); ++i)
    if (Lower(names[i]) == w) return static_cast<int>(i);
  return -1;
}

std::optional<TraceFormat> DetectFormat(const std::vector<std::string>& names) {
  if (names.empty()) return std::nullopt;
  if (Lower(names[0]) == Lower(kElectricityMapsTime)) return TraceFormat::kElectricityMaps;
  if (FindColumn(names, kEntsoeTime) >= 0) return TraceFormat::kEntsoe;
  if (Lower(names[0]) == "timestamp") {
    bool all_eia = names.size() > 1;
    for (size_t i = 1; i < names.size() && all_eia; ++i) {
      all_eia = std::find_if(std::begin(kEiaColumns), std::end(kEiaColumns), [&](const char* c) {
                  return names[i] == c;
                }) != std::end(kEiaColumns);
    }
    return all_eia ? TraceFormat::kEia930 : TraceFormat::kGeneric;
  }
  return std::nullopt;
}

// Where the time and the numeric columns of a file are.
struct Layout {
  TraceFormat format = TraceFormat::kGeneric;
  std::vector<std::string> names;  // every header field, trimmed
  size_t time_col = 0;
  std::vector<bool> is_text;       // not numeric (text, index or time)
  std::vector<size_t> numeric;     // file order
};

Result<Layout> ParseHeader(const std::string& file, std::string_view line, TraceFormat requested) {
  if (line.size() >= 3 && static_cast<unsigned char>(line[0]) == 0xEF &&
      static_cast<unsigned char>(line[1]) == 0xBB && static_cast<unsigned char>(line[2]) == 0xBF)
    line.remove_prefix(3);
  std::vector<std::string> storage;
  std::vector<std::string_view> fields;
  Status s = SplitFields(line, &storage, &fields);
  if (!s.ok()) return FileError(file, 1, "", "bad header: " + s.message());
  Layout L;
  for (auto f : fields) L.names.emplace_back(Trim(f));

  std::optional<TraceFormat> detected = DetectFormat(L.names);
  if (requested == TraceFormat::kAuto) {
    if (!detected)
      return FileError(file, 1, "",
                       "cannot detect the trace format from the header '" + std::string(line) +
                           "': expected a first column 'timestamp' (generic, eia930), 'Datetime "
                           "(UTC)' (electricitymaps) or a 'UTC time' column (entsoe); set the "
                           "format explicitly if the file is one of these");
    L.format = *detected;
  } else {
    L.format = requested;
  }

  std::string time_name;
  switch (L.format) {
    case TraceFormat::kGeneric: time_name = L.names[0]; break;
    case TraceFormat::kEia930: time_name = "timestamp"; break;
    case TraceFormat::kElectricityMaps: time_name = kElectricityMapsTime; break;
    case TraceFormat::kEntsoe: time_name = kEntsoeTime; break;
    case TraceFormat::kAuto: return Internal("unresolved trace format");
  }
  int tc = FindColumn(L.names, time_name);
  if (tc < 0 || (L.format == TraceFormat::kGeneric && L.names[0].empty())) {
    std::string hint = detected ? std::string(" (the header looks like the ") +
                                      TraceFormatName(*detected) + " format)"
                                : "";
    return FileError(file, 1, time_name,
                     std::string("time column missing for format ") + TraceFormatName(L.format) +
                         "; header columns are " + JoinNames(L.names) + hint);
  }
  L.time_col = static_cast<size_t>(tc);

  L.is_text.assign(L.names.size(), false);
  L.is_text[L.time_col] = true;
  if (L.format == TraceFormat::kElectricityMaps) {
    for (size_t i = 0; i < L.names.size(); ++i) {
      std::string low = Lower(L.names[i]);
      for (const char* t : kElectricityMapsText)
        if (low == t) L.is_text[i] = true;
    }
  }
  if (L.format == TraceFormat::kEntsoe && L.names[0].empty() && L.time_col != 0) L.is_text[0] = true;

  for (size_t i = 0; i < L.names.size(); ++i) {
    if (L.is_text[i]) continue;
    if (L.names[i].empty())
      return FileError(file, 1, "",
                       "header field " + std::to_string(i + 1) + " has no column name");
    for (size_t j : L.numeric)
      if (L.names[j] == L.names[i])
        return FileError(file, 1, L.names[i], "column name appears twice in the header");
    L.numeric.push_back(i);
  }
  return L;
}

// Names the columns to keep once the header is known (empty: every numeric column).
using ColumnPicker = std::function<Result<std::vector<std::string>>(const Layout&)>;

// The header indices, in file order, of the columns named in `wanted` (all numeric ones if empty).
Result<std::vector<size_t>> ResolveColumns(const std::string& file, const Layout& L,
                                           const std::vector<std::string>& wanted) {
  std::vector<std::string> numeric_names;
  for (size_t i : L.numeric) numeric_names.push_back(L.names[i]);
  if (wanted.empty()) return L.numeric;
  std::vector<bool> keep(L.names.size(), false);
  for (const auto& w : wanted) {
    int found = -1;
    for (size_t i = 0; i < L.names.size(); ++i)
      if (L.names[i] == w) found = static_cast<int>(i);
    if (found < 0)
      return FileError(file, 1, w,
                       "no such column; numeric columns are " + JoinNames(numeric_names));
    if (L.is_text[found])
      return FileError(file, 1, w,
                       "is not a numeric column; numeric columns are " + JoinNames(numeric_names));
    keep[found] = true;
  }
  std::vector<size_t> out;
  for (size_t i : L.numeric)
    if (keep[i]) out.push_back(i);
  return out;
}

// Linear interpolation over the gaps of one column (see the gap rule in trace.h). Returns false if
// the column has no valid value at all.
bool FillGaps(std::vector<double>* values, const std::vector<char>& valid) {
  const size_t n = values->size();
  size_t first = n;
  for (size_t i = 0; i < n; ++i)
    if (valid[i]) { first = i; break; }
  if (first == n) return false;
  std::vector<double>& v = *values;
  for (size_t i = 0; i < first; ++i) v[i] = v[first];
  size_t prev = first;
  for (size_t i = first + 1; i < n; ++i) {
    if (!valid[i]) continue;
    if (i > prev + 1) {
      const double a = v[prev], b = v[i];
      const double span = static_cast<double>(i - prev);
      for (size_t k = prev + 1; k < i; ++k)
        v[k] = a + (b - a) * (static_cast<double>(k - prev) / span);
    }
    prev = i;
  }
  for (size_t i = prev + 1; i < n; ++i) v[i] = v[prev];
  return true;
}

// Physical plausibility of a signal's values (ReadSeries): refused with the file, line and column.
struct ValueRule {
  const char* what;       // "wind generation"
  bool nonnegative;
  double max_abs;         // above this no real trace goes
  double outlier_factor;  // a value this many times the column's 99th percentile is an outlier
  bool clip = false;      // the user asked to clip refused values instead (TraceRef::clip)
};

const ValueRule* RuleFor(Signal signal) {
  // Generation in MW (or a capacity factor); intensity in gCO2/kWh (coal is about 1000). An outlier
  // above 10x the 99th percentile would set the trace's maximum and so flatten the whole
  // capacity-factor profile (NormalizeByMax). Prices can be negative: not checked.
  static const ValueRule wind{"wind generation", true, 1e7, 10}, solar{"solar generation", true, 1e7, 10},
      carbon{"carbon intensity", true, 3000, 10};
  switch (signal) {
    case Signal::kWind: return &wind;
    case Signal::kSolar: return &solar;
    case Signal::kCarbon: return &carbon;
    case Signal::kPrice: return nullptr;
  }
  return nullptr;
}

// The first value of `raw` (the rows as read) that `rule` refuses, as an error naming its line.
Status CheckValues(const std::string& path, const std::string& column, size_t field, const ValueRule& rule,
                   const std::vector<double>& raw, const std::vector<char>& valid,
                   const std::vector<size_t>& lines) {
  std::vector<double> sorted;
  for (size_t i = 0; i < raw.size(); ++i)
    if (valid[i] && std::isfinite(raw[i])) sorted.push_back(raw[i]);
  std::sort(sorted.begin(), sorted.end());
  const double p99 = sorted.empty() ? 0 : sorted[static_cast<size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
  const std::string where = " (field " + std::to_string(field + 1) + ")";
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!valid[i]) continue;
    const double v = raw[i];
    std::ostringstream os;
    os << v;
    if (!std::isfinite(v))
      return FileError(path, lines[i], column, os.str() + " is not a finite " + rule.what + where);
    if (rule.nonnegative && v < 0)
      return FileError(path, lines[i], column,
                       "a " + std::string(rule.what) + " of " + os.str() + " is negative" + where +
                           "; correct the value or leave the cell empty (filled from its neighbours)");
    if (std::fabs(v) > rule.max_abs)
      return FileError(path, lines[i], column,
                       os.str() + " is not a plausible " + rule.what + where + " (at most " +
                           std::to_string(static_cast<int64_t>(rule.max_abs)) + ")");
    if (p99 > 0 && v > rule.outlier_factor * p99) {
      std::ostringstream ratio;
      ratio.precision(3);
      ratio << v / p99;
      return FileError(path, lines[i], column,
                       os.str() + " is " + ratio.str() + " times the column's 99th percentile" + where +
                           ": an outlier that would set the trace's maximum and flatten its whole profile; "
                           "correct the value or leave the cell empty");
    }
  }
  return Status::Ok();
}

// Clips, in place, what CheckValues would refuse (TraceRef::clip): a non-finite value becomes a gap
// (filled by the gap rule), a negative one 0, one above the plausible maximum or the outlier limit
// (outlier_factor x the 99th percentile of the plausible values) that limit. Returns how many changed.
size_t ClipValues(const ValueRule& rule, std::vector<double>& raw, std::vector<char>& valid) {
  std::vector<double> sorted;
  for (size_t i = 0; i < raw.size(); ++i)
    if (valid[i] && std::isfinite(raw[i]) && (!rule.nonnegative || raw[i] >= 0) && std::fabs(raw[i]) <= rule.max_abs)
      sorted.push_back(raw[i]);
  std::sort(sorted.begin(), sorted.end());
  const double p99 = sorted.empty() ? 0 : sorted[static_cast<size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
  const double hi = p99 > 0 ? std::min(rule.max_abs, rule.outlier_factor * p99) : rule.max_abs;
  const double lo = rule.nonnegative ? 0.0 : -rule.max_abs;
  size_t changed = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!valid[i]) continue;
    if (!std::isfinite(raw[i])) {
      valid[i] = 0;
      ++changed;
    } else if (raw[i] < lo || raw[i] > hi) {
      raw[i] = std::clamp(raw[i], lo, hi);
      ++changed;
    }
  }
  return changed;
}

// Parses the text of a trace file; `path` names it in errors.
Result<Trace> ParseTraceImpl(const std::string& path, std::string_view text, TraceFormat format,
                             const ColumnPicker& pick, const ValueRule* rule = nullptr) {
  LineReader lines(text);
  std::string_view line;
  size_t lineno = 0;

  // Header: the first non-blank line.
  bool have_header = false;
  while (lines.Next(&line, &lineno)) {
    if (!IsBlank(line)) { have_header = true; break; }
  }
  if (!have_header) return FileError(path, 1, "", "empty file (expected a header line)");
  const size_t header_line = lineno;
  ASSIGN_OR_RETURN(Layout L, ParseHeader(path, line, format));
  ASSIGN_OR_RETURN(std::vector<std::string> wanted, pick(L));
  ASSIGN_OR_RETURN(std::vector<size_t> keep, ResolveColumns(path, L, wanted));
  if (keep.empty())
    return FileError(path, header_line, "",
                     "no numeric column besides the time column '" + L.names[L.time_col] + "'");
  const std::string& time_name = L.names[L.time_col];
  const size_t nfields = L.names.size();
  const size_t ncols = keep.size();

  // Pass 1: parse the rows as they are in the file.
  std::vector<UnixSeconds> times;
  std::vector<size_t> row_lines;
  std::vector<std::vector<double>> raw(ncols);
  std::vector<std::vector<char>> raw_valid(ncols);
  std::vector<size_t> empty_cells(ncols, 0);
  times.reserve(text.size() / 64 + 1);
  std::vector<std::string> storage;
  std::vector<std::string_view> fields;
  while (lines.Next(&line, &lineno)) {
    if (IsBlank(line)) continue;
    Status s = SplitFields(line, &storage, &fields);
    if (!s.ok()) return FileError(path, lineno, "", s.message());
    if (fields.size() != nfields) {
      if (fields.size() < nfields)
        return FileError(path, lineno, L.names[fields.size()],
                         "row has " + std::to_string(fields.size()) + " fields but the header has " +
                             std::to_string(nfields) + " (this and later columns are missing)");
      return FileError(path, lineno, L.names.back(),
                       "row has " + std::to_string(fields.size()) + " fields but the header has " +
                           std::to_string(nfields) + " (extra fields after the last column)");
    }
    auto t = ParseIsoTime(fields[L.time_col]);
    if (!t.ok()) return FileError(path, lineno, time_name, t.status().message());
    if (!times.empty() && *t <= times.back()) {
      return FileError(path, lineno, time_name,
                       FormatIsoTime(*t) + (*t == times.back() ? " repeats" : " is earlier than") +
                           " the time " + FormatIsoTime(times.back()) + " of line " +
                           std::to_string(row_lines.back()) +
                           " (rows must be sorted by time without duplicates)");
    }
    times.push_back(*t);
    row_lines.push_back(lineno);
    for (size_t c = 0; c < ncols; ++c) {
      auto v = ParseCsvNumber(fields[keep[c]]);
      if (!v.ok()) return FileError(path, lineno, L.names[keep[c]], v.status().message());
      if (v->has_value()) {
        raw[c].push_back(**v);
        raw_valid[c].push_back(1);
      } else {
        raw[c].push_back(0.0);
        raw_valid[c].push_back(0);
        ++empty_cells[c];
      }
    }
  }
  if (times.empty())
    return FileError(path, header_line, "", "the file has a header but no data rows");

  // The grid: step = most common spacing (ties: the smaller).
  int64_t step = kSecondsPerHour;
  if (times.size() > 1) {
    std::map<int64_t, size_t> counts;
    for (size_t i = 1; i < times.size(); ++i) ++counts[times[i] - times[i - 1]];
    size_t best = 0;
    for (const auto& [d, n] : counts)
      if (n > best) { best = n; step = d; }
  }
  const UnixSeconds start = times.front();
  size_t largest_gap_row = 0;
  int64_t largest_gap = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    if ((times[i] - start) % step != 0)
      return FileError(path, row_lines[i], time_name,
                       FormatIsoTime(times[i]) + " is not on the grid of this file (start " +
                           FormatIsoTime(start) + ", step " + std::to_string(step) +
                           " s, the most common spacing of the rows)");
    if (i > 0 && times[i] - times[i - 1] > largest_gap) {
      largest_gap = times[i] - times[i - 1];
      largest_gap_row = i;
    }
  }
  const size_t rows = static_cast<size_t>((times.back() - start) / step) + 1;
  const size_t missing = rows - times.size();
  if (missing > times.size())
    return FileError(path, row_lines[largest_gap_row], time_name,
                     "too sparse to fill: " + std::to_string(missing) + " missing time steps of " +
                         std::to_string(step) + " s against " + std::to_string(times.size()) +
                         " rows present (largest gap " + std::to_string(largest_gap) +
                         " s ends here)");

  size_t clipped = 0;
  if (rule)
    for (size_t c = 0; c < ncols; ++c) {
      if (rule->clip) clipped += ClipValues(*rule, raw[c], raw_valid[c]);
      RETURN_IF_ERROR(CheckValues(path, L.names[keep[c]], keep[c], *rule, raw[c], raw_valid[c], row_lines));
    }

  // Pass 2: place the rows on the grid and fill the gaps.
  Trace tr;
  tr.file = path;
  tr.format = L.format;
  tr.start = start;
  tr.step_seconds = step;
  tr.rows = rows;
  tr.filled_rows = missing;
  tr.clipped_cells = clipped;
  std::vector<size_t> slot(times.size());
  for (size_t i = 0; i < times.size(); ++i) slot[i] = static_cast<size_t>((times[i] - start) / step);
  for (size_t c = 0; c < ncols; ++c) {
    std::vector<double> v(rows, 0.0);
    std::vector<char> valid(rows, 0);
    for (size_t i = 0; i < times.size(); ++i) {
      v[slot[i]] = raw[c][i];
      valid[slot[i]] = raw_valid[c][i];
    }
    if (!FillGaps(&v, valid))
      return FileError(path, row_lines.front(), L.names[keep[c]],
                       "no value in any row (every cell from line " +
                           std::to_string(row_lines.front()) + " to line " +
                           std::to_string(row_lines.back()) + " is empty)");
    tr.column_names.push_back(L.names[keep[c]]);
    tr.columns.push_back(std::move(v));
    tr.filled_cells += empty_cells[c];
  }
  return tr;
}

Result<Trace> ReadTraceImpl(const std::string& path, TraceFormat format, const ColumnPicker& pick,
                            const ValueRule* rule = nullptr) {
  std::string text;
  RETURN_IF_ERROR(LoadFile(path, &text));
  return ParseTraceImpl(path, text, format, pick, rule);
}

}  // namespace

Result<TraceFormat> ParseTraceFormat(const std::string& name) {
  const std::string n = Lower(Trim(name));
  for (TraceFormat f : {TraceFormat::kAuto, TraceFormat::kGeneric, TraceFormat::kEia930,
                        TraceFormat::kElectricityMaps, TraceFormat::kEntsoe})
    if (n == TraceFormatName(f)) return f;
  return InvalidArgument("unknown trace format '" + name +
                         "' (use auto, generic, eia930, electricitymaps or entsoe)");
}

const char* TraceFormatName(TraceFormat f) {
  switch (f) {
    case TraceFormat::kAuto: return "auto";
    case TraceFormat::kGeneric: return "generic";
    case TraceFormat::kEia930: return "eia930";
    case TraceFormat::kElectricityMaps: return "electricitymaps";
    case TraceFormat::kEntsoe: return "entsoe";
  }
  return "unknown";
}

std::string DefaultColumn(TraceFormat format, Signal signal) {
  switch (format) {
    case TraceFormat::kEia930:
      switch (signal) {
        case Signal::kWind: return "WND";
        case Signal::kSolar: return "SUN";
        case Signal::kCarbon: return "avg_CI";
        case Signal::kPrice: return "";
      }
      return "";
    case TraceFormat::kElectricityMaps:
      // Life-cycle (LCA) intensity is Electricity Maps' headline figure and what published
      // carbon-aware scheduling results on this data use; the direct (operational) intensity is
      // read by naming "Carbon Intensity gCO₂eq/kWh (direct)" as the column.
      return signal == Signal::kCarbon ? "Carbon Intensity gCO₂eq/kWh (LCA)" : "";
    case TraceFormat::kEntsoe:
      // No solar generation column: the DACF file only has irradiance forecasts.
      if (signal == Signal::kWind) return "wind";
      if (signal == Signal::kCarbon) return "carbon_intensity";
      return "";
    case TraceFormat::kGeneric:
    case TraceFormat::kAuto:
      return "";
  }
  return "";
}

Result<const std::vector<double>*> Trace::Column(const std::string& name) const {
  for (size_t i = 0; i < column_names.size() && i < columns.size(); ++i)
    if (column_names[i] == name) return &columns[i];
  return NotFound(file + ": no column '" + name + "'; columns are " + JoinNames(column_names));
}

Result<Trace> ReadTrace(const std::string& path, const ReadOptions& options) {
  return ReadTraceImpl(path, options.format,
                       [&](const Layout&) -> Result<std::vector<std::string>> { return options.columns; });
}

Result<Trace> ParseTrace(const std::string& name, std::string_view text, const ReadOptions& options) {
  return ParseTraceImpl(name, text, options.format,
                        [&](const Layout&) -> Result<std::vector<std::string>> { return options.columns; });
}

size_t Series::IndexOf(UnixSeconds t) const {
  if (values.empty() || step_seconds <= 0 || t <= start) return 0;
  const uint64_t i = static_cast<uint64_t>(t - start) / static_cast<uint64_t>(step_seconds);
  return i >= values.size() ? values.size() - 1 : static_cast<size_t>(i);
}

double Series::At(UnixSeconds t) const {
  // An empty series has no value to give; NaN makes misuse visible instead of a silent zero.
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  return values[IndexOf(t)];
}

namespace {

// ReadSeries and ParseSeries: reads `file` when `text` is null, else parses *text.
Result<Series> SeriesImpl(const std::string& file, const std::string_view* text, const std::string& format_name,
                          const std::string& column, Signal signal, bool clip) {
  ASSIGN_OR_RETURN(TraceFormat format,
                   ParseTraceFormat(format_name.empty() ? std::string("auto") : format_name));
  auto pick = [&](const Layout& L) -> Result<std::vector<std::string>> {
    if (!column.empty()) return std::vector<std::string>{column};
    std::string def = DefaultColumn(L.format, signal);
    if (def.empty()) {
      std::vector<std::string> numeric;
      for (size_t i : L.numeric) numeric.push_back(L.names[i]);
      return InvalidArgument(file + ": the " + TraceFormatName(L.format) + " format has no default " +
                             SignalName(signal) + " column; name one of " + JoinNames(numeric));
    }
    return std::vector<std::string>{def};
  };
  std::optional<ValueRule> rule;
  if (const ValueRule* r = RuleFor(signal)) rule = *r;
  if (rule) rule->clip = clip;
  const ValueRule* use = rule ? &*rule : nullptr;
  ASSIGN_OR_RETURN(Trace tr, text ? ParseTraceImpl(file, *text, format, pick, use) : ReadTraceImpl(file, format, pick, use));
  if (tr.columns.size() != 1) return Internal(file + ": expected exactly one column");
  Series s;
  s.name = tr.column_names[0];
  s.start = tr.start;
  s.step_seconds = tr.step_seconds;
  s.values = std::move(tr.columns[0]);
  s.filled = tr.filled_cells + tr.filled_rows;
  s.clipped = tr.clipped_cells;
  return s;
}

}  // namespace

Result<Series> ReadSeries(const std::string& file, const std::string& format_name,
                          const std::string& column, Signal signal, bool clip) {
  return SeriesImpl(file, nullptr, format_name, column, signal, clip);
}

Result<Series> ParseSeries(const std::string& name, std::string_view text, const std::string& format_name,
                           const std::string& column, Signal signal, bool clip) {
  return SeriesImpl(name, &text, format_name, column, signal, clip);
}

namespace {

// Mean of the piecewise-constant signal (value v[i] on [i*s, (i+1)*s)) over [a, b), 0 <= a < b.
double MeanStep(const std::vector<double>& v, int64_t s, int64_t a, int64_t b) {
  const size_t i0 = static_cast<size_t>(a / s);
  const size_t i1 = std::min(static_cast<size_t>((b - 1) / s), v.size() - 1);
  if (i0 >= i1) return v[std::min(i0, v.size() - 1)];
  double acc = 0;
  for (size_t i = i0; i <= i1; ++i) {
    const int64_t lo = std::max<int64_t>(a, static_cast<int64_t>(i) * s);
    const int64_t hi = std::min<int64_t>(b, static_cast<int64_t>(i + 1) * s);
    acc += static_cast<double>(hi - lo) * v[i];
  }
  return acc / static_cast<double>(b - a);
}

// The piecewise-linear signal through (c_i, v[i]), c_i = (i + 0.5) * s, constant before c_0 and
// after c_{n-1}.
double LinearAt(const std::vector<double>& v, double s, double x) {
  const size_t n = v.size();
  const double c0 = 0.5 * s;
  if (n == 1 || x <= c0) return v.front();
  if (x >= (static_cast<double>(n) - 0.5) * s) return v.back();
  size_t i = static_cast<size_t>(std::floor((x - c0) / s));
  if (i > n - 2) i = n - 2;
  const double frac = (x - (static_cast<double>(i) + 0.5) * s) / s;
  return v[i] + frac * (v[i + 1] - v[i]);
}

// Mean of that piecewise-linear signal over [a, b), integrated exactly piece by piece.
double MeanLinear(const std::vector<double>& v, int64_t step, int64_t ia, int64_t ib) {
  const double s = static_cast<double>(step);
  const double a = static_cast<double>(ia), b = static_cast<double>(ib);
  const double last_knot = (static_cast<double>(v.size()) - 0.5) * s;
  double x = a, acc = 0;
  int pieces = 0;
  while (x < b) {
    double next;
    if (x < 0.5 * s) next = 0.5 * s;
    else if (x >= last_knot) next = b;
    else next = (std::floor((x - 0.5 * s) / s) + 1.5) * s;
    const double y = std::min(next, b);
    if (!(y > x)) break;
    acc += (y - x) * 0.5 * (LinearAt(v, s, x) + LinearAt(v, s, y));
    ++pieces;
    x = y;
  }
  if (pieces <= 1) return 0.5 * (LinearAt(v, s, a) + LinearAt(v, s, b));
  return acc / (b - a);
}

}  // namespace

// kStep gives, for each new interval, the mean over it (clipped to the input's span) of the
// piecewise-constant input: upsampling holds the value, downsampling averages. kLinear works on the
// piecewise-linear signal through the centres of the input intervals (constant before the first
// and after the last centre): upsampling (and an equal step) takes its value at the centre of each
// new interval, so an equal step returns the input unchanged; downsampling takes its mean over the
// new interval, so peaks are averaged rather than lost to point sampling. The last new interval may
// reach past the input's end when the steps do not divide. `filled` is carried over unchanged: it
// counts filled values of the source series.
Result<Series> Resample(const Series& in, int64_t step_seconds, ResampleMethod method) {
  if (step_seconds <= 0)
    return InvalidArgument("resample '" + in.name + "': step must be positive, got " +
                           std::to_string(step_seconds) + " s");
  if (in.step_seconds <= 0)
    return InvalidArgument("resample '" + in.name + "': input step must be positive, got " +
                           std::to_string(in.step_seconds) + " s");
  if (in.values.empty()) return InvalidArgument("resample '" + in.name + "': the series is empty");
  const int64_t span = in.step_seconds * static_cast<int64_t>(in.values.size());
  const int64_t m = (span + step_seconds - 1) / step_seconds;
  Series out;
  out.name = in.name;
  out.start = in.start;
  out.step_seconds = step_seconds;
  out.filled = in.filled;
  out.values.resize(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    const int64_t a = j * step_seconds;
    const int64_t b = std::min(span, a + step_seconds);
    double v;
    if (method == ResampleMethod::kStep)
      v = MeanStep(in.values, in.step_seconds, a, b);
    else if (step_seconds <= in.step_seconds)
      v = LinearAt(in.values, static_cast<double>(in.step_seconds), 0.5 * static_cast<double>(a + b));
    else
      v = MeanLinear(in.values, in.step_seconds, a, b);
    out.values[static_cast<size_t>(j)] = v;
  }
  return out;
}

Series NormalizeByMax(const Series& in) {
  Series out = in;
  if (in.values.empty()) return out;
  const double mx = *std::max_element(in.values.begin(), in.values.end());
  // An all-zero (or all non-positive) series has no meaningful maximum; it stays as it is.
  if (!(mx > 0)) return out;
  for (double& v : out.values) v /= mx;
  return out;
}

}  // namespace gt
