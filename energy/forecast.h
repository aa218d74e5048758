// Forecasters: predict the next hours of a signal (renewable power, carbon intensity) from its past.
//
// Contract: Forecast(history, horizon) returns `horizon` values for the steps after the last one of
// `history` (history[size-1] is "now", observed). Non-oracle forecasters see only `history`; the
// oracle is constructed with the full truth and returns it. Forecasters are stateless after
// construction and thread-safe (const). Steps are the series' own (hourly for the bundled traces).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gt {

struct HistoryView {
  const double* data = nullptr;
  size_t size = 0;
  double operator[](size_t i) const { return data[i]; }
};

class Forecaster {
 public:
  virtual ~Forecaster() = default;
  virtual std::string name() const = 0;
  virtual std::vector<double> Forecast(HistoryView history, size_t horizon) const = 0;
};

// Names: "oracle", "persistence", "seasonal-naive", "blend".
// `truth` is used only by "oracle" (the full series the history is a prefix of); `steps_per_day` is
// the seasonal period (24 for hourly data).
Result<std::unique_ptr<Forecaster>> MakeForecaster(const std::string& name, const std::vector<double>* truth,
                                                   size_t steps_per_day = 24);
std::vector<std::string> ForecasterNames();

// Mean absolute error and mean absolute percentage error (of the mean level) by horizon 1..H,
// evaluated at every step from `warmup` to the end of `truth` (rolling origin).
struct ForecastError {
  std::string forecaster;
  std::vector<double> mae;   // mae[h-1]
  std::vector<double> nmae;  // mae / mean(|truth|)
};
ForecastError EvaluateForecaster(const Forecaster& f, const std::vector<double>& truth, size_t horizon,
                                 size_t warmup, size_t stride = 1);

// How much of its forecast energy failed to come, measured on the past: for each lead h
// (0 = the first step forecast), the `quantile` over forecast origins o of
// 1 - sum(truth[o .. o+h]) / sum(forecast_o[0 .. h]), clamped to [0, 1]. Origins lie every `stride`
// steps from `stride` to `end - horizon`, so that every forecast is judged on truth before `end`;
// an origin that forecast (almost) nothing up to h is left out at h. Returns `horizon` values, or
// an empty vector when no origin fits (too little history). Pure; reads truth[0 .. end) only.
std::vector<double> MeasuredShortfall(const Forecaster& f, const std::vector<double>& truth, size_t end,
                                      size_t horizon, size_t stride, double quantile);

}  // namespace gt
