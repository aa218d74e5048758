// Time-series traces: reading the four CSV formats of the energy data, gap filling, resampling.
//
// Contract: readers never crash and never turn a gap into a silent zero. A malformed file (bad
// timestamp, non-numeric cell, unsorted or duplicate time, missing column, ragged row) is an error
// whose message names the file, the 1-based line and the column. Empty cells and missing rows
// (hours absent from an otherwise regular series) are filled by the stated rule below and counted.
// All functions are pure (apart from reading the file) and thread-safe.
//
// Gap rule: an interior gap is filled by linear interpolation in time between the nearest valid
// values before and after it; a gap at the start or end takes the nearest valid value. A column
// with no valid value at all is an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace gt {

enum class TraceFormat {
  kAuto,             // detected from the header line
  kGeneric,          // timestamp,<column>,...   (ISO-8601 UTC)
  kEia930,           // timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI (a subset of fuel columns is fine)
  kElectricityMaps,  // Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),...
  kEntsoe,           // <index>,UTC time,carbon_intensity,nuclear,unknown,wind,hydro,...  (DACF)
};

Result<TraceFormat> ParseTraceFormat(const std::string& name);  // "auto", "eia930", ...
const char* TraceFormatName(TraceFormat f);

// What a column is used for; selects a format's default column when the config names none.
enum class Signal { kWind, kSolar, kCarbon, kPrice };
// The default column of `signal` in `format`, or "" if the format has none (e.g. solar in ENTSO-E).
std::string DefaultColumn(TraceFormat format, Signal signal);

// A regular table: every column has one value per time step, gaps already filled.
struct Trace {
  std::string file;
  TraceFormat format = TraceFormat::kGeneric;
  UnixSeconds start = 0;
  int64_t step_seconds = 3600;
  size_t rows = 0;
  std::vector<std::string> column_names;       // numeric columns only, in file order
  std::vector<std::vector<double>> columns;    // columns[i].size() == rows
  size_t filled_cells = 0;                     // empty cells filled (all columns)
  size_t filled_rows = 0;                      // missing time steps inserted
  size_t clipped_cells = 0;                    // values clipped on request (ReadSeries with clip)

  // The column of that name, or a NotFound error listing the columns there are.
  Result<const std::vector<double>*> Column(const std::string& name) const;
  UnixSeconds end() const { return start + static_cast<int64_t>(rows) * step_seconds; }
};

struct ReadOptions {
  TraceFormat format = TraceFormat::kAuto;
  // Only these columns are parsed and kept (others are not checked); empty = every numeric column.
  std::vector<std::string> columns;
};

Result<Trace> ReadTrace(const std::string& path, const ReadOptions& options = {});
// ReadTrace on a file's text already in memory (network input, fuzzing); `name` stands for the file
// in errors and in Trace::file.
Result<Trace> ParseTrace(const std::string& name, std::string_view text, const ReadOptions& options = {});

// One column on a regular grid.
struct Series {
  std::string name;
  UnixSeconds start = 0;
  int64_t step_seconds = 3600;
  std::vector<double> values;
  size_t filled = 0;  // how many values were filled by the gap rule
  size_t clipped = 0; // how many values were clipped into the physical range (clip = true)

  UnixSeconds end() const { return start + static_cast<int64_t>(values.size()) * step_seconds; }
  bool Covers(UnixSeconds from, UnixSeconds to) const { return from >= start && to <= end(); }
  // The value of the step containing t (t clamped to the series' span).
  double At(UnixSeconds t) const;
  // Index of the step containing t, clamped to [0, size).
  size_t IndexOf(UnixSeconds t) const;
};

// Reads one column (the config's TraceRef with its default column for `signal`). A value outside
// the signal's physical range (negative generation or intensity, not finite, above the plausible
// maximum, or an outlier above 10x the column's 99th percentile) is an error naming file, line and
// column; with `clip` it is clipped into range instead (a non-finite one becomes a gap) and counted.
Result<Series> ReadSeries(const std::string& file, const std::string& format_name,
                          const std::string& column, Signal signal, bool clip = false);
// ReadSeries on a file's text already in memory; `name` stands for the file in errors.
Result<Series> ParseSeries(const std::string& name, std::string_view text, const std::string& format_name,
                           const std::string& column, Signal signal, bool clip = false);

enum class ResampleMethod {
  kStep,    // downsampling: mean over the new interval; upsampling: hold the value
  kLinear,  // linear interpolation between the centres of the original intervals
};

// A series on a new regular grid of `step_seconds` covering the same span. Energy-like columns
// (MWh per step) must be rescaled by the caller; this resamples rates/intensities.
Result<Series> Resample(const Series& in, int64_t step_seconds, ResampleMethod method);

// Values divided by their maximum over the series (capacity-factor profile in [0, 1]); an all-zero
// series stays zero.
Series NormalizeByMax(const Series& in);

}  // namespace gt
