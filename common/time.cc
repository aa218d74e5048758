#include "common/time.h"

#include <cctype>
#include <cstdint>
#include <cstdio>

namespace gt {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

bool ReadInt(std::string_view s, size_t& pos, int digits, int& out) {
  if (pos + digits > s.size()) return false;
  int v = 0;
  for (int i = 0; i < digits; ++i) {
    char c = s[pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  pos += digits;
  out = v;
  return true;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) { ++pos; return true; }
  return false;
}

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

Result<UnixSeconds> ParseIsoTime(std::string_view text) {
  auto bad = [&](const char* why) {
    return ParseError("bad timestamp '" + std::string(text) + "': " + why +
                      " (expected ISO-8601 like 2022-01-01 00:00:00+00:00)");
  };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  size_t p = 0;
  int y, mo, d, h = 0, mi = 0, se = 0;
  if (!ReadInt(s, p, 4, y) || !Expect(s, p, '-') || !ReadInt(s, p, 2, mo) || !Expect(s, p, '-') ||
      !ReadInt(s, p, 2, d))
    return bad("date part");
  if (mo < 1 || mo > 12) return bad("month out of range");
  if (d < 1 || d > DaysInMonth(y, mo)) return bad("day out of range");
  if (p < s.size() && (s[p] == ' ' || s[p] == 'T')) {
    ++p;
    if (!ReadInt(s, p, 2, h) || !Expect(s, p, ':') || !ReadInt(s, p, 2, mi)) return bad("time part");
    if (Expect(s, p, ':') && !ReadInt(s, p, 2, se)) return bad("seconds");
    if (p < s.size() && s[p] == '.') return bad("fractional seconds are not supported");
    if (h > 23 || mi > 59 || se > 59) return bad("time out of range");
  }
  int64_t offset = 0;
  if (p < s.size()) {
    if (s[p] == 'Z') {
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int oh, om = 0;
      if (!ReadInt(s, p, 2, oh)) return bad("UTC offset");
      if (Expect(s, p, ':')) {
        if (!ReadInt(s, p, 2, om)) return bad("UTC offset");
      } else if (p < s.size() && !ReadInt(s, p, 2, om)) {
        return bad("UTC offset");
      }
      offset = sign * (oh * 3600 + om * 60);
    }
  }
  if (p != s.size()) return bad("trailing characters");
  return DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
}

std::string FormatIsoTime(UnixSeconds t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t rem = t - days * 86400;
  // civil_from_days
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y), m, d,
                static_cast<int>(rem / 3600), static_cast<int>(rem % 3600 / 60),
                static_cast<int>(rem % 60));
  return buf;
}

Result<int64_t> ParseDurationSeconds(std::string_view text) {
  if (text.empty()) return ParseError("empty duration (expected e.g. 3600, 90s, 15m, 1h, 2d)");
  size_t i = 0;
  int64_t v = 0;
  bool too_large = false;  // checked, not computed: signed overflow is undefined behaviour
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const int digit = text[i] - '0';
    if (v > (INT64_MAX - digit) / 10) too_large = true;
    else v = v * 10 + digit;
    ++i;
  }
  if (i == 0) return ParseError("bad duration '" + std::string(text) + "' (expected e.g. 90s, 15m, 1h)");
  std::string_view unit = text.substr(i);
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  else if (unit == "m") scale = 60;
  else if (unit == "h") scale = 3600;
  else if (unit == "d") scale = 86400;
  else return ParseError("bad duration unit in '" + std::string(text) + "' (use s, m, h or d)");
  if (too_large || v > INT64_MAX / scale) return ParseError("duration '" + std::string(text) + "' is too large");
  return v * scale;
}

}  // namespace gt
