// Subcommands of the `greentrain` program. Each cmd_*.cc registers itself with GT_REGISTER_COMMAND;
// main() dispatches on argv[1]. A command declares its arguments with CLI11 (Debian's libcli11-dev:
// typed options with ranges and defaults, `greentrain help CMD` / `CMD --help` listing every one,
// unknown options, extra arguments and malformed values refused before anything starts) and returns
// the action that runs once they parsed. An action returns the process exit code (0 ok, 1 runtime
// error, 2 usage error, 3 the job missed its deadline) and prints its own errors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/config.h"
#include "common/status.h"

namespace gt::cli {

// Exit code of `simulate` and `run` when the job (the focus policy's, for simulate) misses its deadline.
constexpr int kExitDeadlineMissed = 3;

struct Command {
  std::string name;
  std::string summary;  // one line
  // Declares the arguments on `app` and returns the action to run after a successful parse.
  std::function<std::function<int()>(CLI::App& app)> define;
};

std::map<std::string, Command>& Registry();

struct Registrar {
  explicit Registrar(Command c) { Registry()[c.name] = std::move(c); }
};

// Parses `args` (after the command name) for command `c` and runs it; prints help for --help and
// a usage error (exit 2) for arguments it cannot accept.
int RunCommand(const Command& c, std::vector<std::string> args);
// The full help of command `c` (its options, types, ranges and defaults).
std::string CommandHelp(const Command& c);

// A whole number in [lo, hi]: "5x" and "1.5" are refused as not whole numbers, others as out of range.
inline CLI::Validator WholeNumberIn(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        int64_t v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return "'" + s + "' is not a whole number";
        if (v < lo || v > hi) return s + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        return {};
      },
      "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

// The optional CONFIG positional (the bundled default when absent).
void AddConfigArg(CLI::App& app, std::string* path);
// Loads `path`, or the bundled default when it is empty.
Result<Config> LoadConfigOrDefault(const std::string& path);

// Prints "greentrain <cmd>: <status>" to stderr and returns 1 (2 for invalid arguments).
int Fail(const std::string& cmd, const Status& s);

}  // namespace gt::cli

#define GT_REGISTER_COMMAND(var, ...) static ::gt::cli::Registrar var(::gt::cli::Command{__VA_ARGS__})
