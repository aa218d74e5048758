// libFuzzer target: the trace readers (energy/trace.h) on arbitrary CSV text: ParseTrace (all four
// formats and auto-detection, with and without a column selection) and ParseSeries (each signal with
// its plausibility rule), then the resampling and normalisation applied to what they read.
//
// Input: byte 0 selects the format, byte 1 the entry point and signal, byte 2 the resampling step;
// the rest is the file's text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "energy/trace.h"
#include "fuzz_util.h"

namespace {

const char* const kFormats[] = {"auto", "generic", "eia930", "electricitymaps", "entsoe"};
const gt::Signal kSignals[] = {gt::Signal::kWind, gt::Signal::kSolar, gt::Signal::kCarbon, gt::Signal::kPrice};
const int64_t kSteps[] = {60, 300, 900, 1800, 3600, 7200, 86400, 7 * 86400};

void CheckTrace(const gt::Trace& t) {
  GT_FUZZ_CHECK(t.rows > 0, "a trace has rows");
  GT_FUZZ_CHECK(t.step_seconds > 0, "a positive step");
  GT_FUZZ_CHECK(!t.columns.empty() && t.columns.size() == t.column_names.size(), "one name per column");
  for (const auto& c : t.columns) GT_FUZZ_CHECK(c.size() == t.rows, "every column has one value per row");
}

void Resampled(const gt::Series& s, uint8_t sel) {
  const int64_t step = kSteps[sel % 8];
  // Resample allocates span / step values: bound it as any caller's memory would be.
  const double span = static_cast<double>(s.step_seconds) * static_cast<double>(s.values.size());
  if (span / static_cast<double>(step) > 1e6) return;
  auto r = gt::Resample(s, step, (sel & 8) ? gt::ResampleMethod::kLinear : gt::ResampleMethod::kStep);
  if (r.ok()) GT_FUZZ_CHECK(!r->values.empty() && r->step_seconds == step, "a resampled series");
  gt::Series n = gt::NormalizeByMax(s);
  GT_FUZZ_CHECK(n.values.size() == s.values.size(), "normalising keeps the length");
  if (!s.values.empty()) (void)s.At(s.start + s.step_seconds * static_cast<int64_t>(sel));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t fsel = data[0], mode = data[1], step = data[2];
  const std::string_view text(reinterpret_cast<const char*>(data + 3), size - 3);
  const std::string format = kFormats[fsel % 5];
  GtFuzzNoThrow("trace readers", [&] {
    if (mode % 3 == 0) {
      gt::ReadOptions o;
      auto f = gt::ParseTraceFormat(format);
      GT_FUZZ_CHECK(f.ok(), "known format names parse");
      o.format = *f;
      auto t = gt::ParseTrace("fuzz.csv", text, o);
      if (t.ok()) {
        CheckTrace(*t);
        // Read again keeping only the last column: the same values.
        gt::ReadOptions one = o;
        one.columns = {t->column_names.back()};
        auto u = gt::ParseTrace("fuzz.csv", text, one);
        GT_FUZZ_CHECK(u.ok() && u->columns.size() == 1, "a column that was read can be selected");
        CheckTrace(*u);
        GT_FUZZ_CHECK(u->columns[0].size() == t->columns.back().size(), "same column, same length");
      }
    } else if (mode % 3 == 1) {
      // A named column: the first header field after the first comma, if any.
      std::string column;
      const size_t nl = text.find('\n'), comma = text.find(',');
      if (comma != std::string_view::npos && (nl == std::string_view::npos || comma < nl)) {
        const size_t end = text.find_first_of(",\r\n", comma + 1);
        column = std::string(text.substr(comma + 1, end == std::string_view::npos ? std::string_view::npos : end - comma - 1));
      }
      auto s = gt::ParseSeries("fuzz.csv", text, format, column, kSignals[(mode / 3) % 4]);
      if (s.ok()) {
        GT_FUZZ_CHECK(!s->values.empty() && s->step_seconds > 0, "a series has values");
        Resampled(*s, step);
      }
    } else {
      auto s = gt::ParseSeries("fuzz.csv", text, format, "", kSignals[(mode / 3) % 4]);
      if (s.ok()) {
        GT_FUZZ_CHECK(!s->values.empty() && s->step_seconds > 0, "a series has values");
        Resampled(*s, step);
      }
    }
  });
  return 0;
}
