// Shared by the libFuzzer targets of fuzz/: a check that aborts (libFuzzer then saves the input as a
// crash), and the guard that turns an exception escaping a parser into a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

// Aborts with a message when `cond` is false: a broken invariant is a bug like a crash.
#define GT_FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

// Runs `body` (a lambda); parsers return Status/Result and must never throw on any input.
template <typename F>
void GtFuzzNoThrow(const char* what, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception escaped from %s: %s\n", what, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "non-standard exception escaped from %s\n", what);
    std::abort();
  }
}
