// Minimal RFC-4180 CSV field splitting and number parsing. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gt {

// Splits one line into fields. Handles double-quoted fields with "" escapes and a trailing '\r'.
// Returns an error for an unterminated quote.
Result<std::vector<std::string>> SplitCsvLine(std::string_view line, char sep = ',');

// Parses a whole field as a finite double (surrounding spaces allowed). nullopt if the field is
// empty or blank; an error if it is not a number.
Result<std::optional<double>> ParseCsvNumber(std::string_view field);

// Quotes a field for CSV output when it contains a separator, quote or newline.
std::string CsvEscape(const std::string& field);

}  // namespace gt
