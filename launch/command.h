// Subcommands of the `greentrain` program. Each cmd_*.cc registers itself with GT_REGISTER_COMMAND;
// main() dispatches on argv[1]. A command returns the process exit code (0 ok, 1 runtime error,
// 2 usage error) and prints its own errors.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace gt::cli {

using Args = std::vector<std::string>;

struct Command {
  std::string name;
  std::string usage;    // one line: "energy CONFIG [--from T] [--to T] [--csv FILE]"
  std::string summary;  // one line
  std::function<int(const Args&)> run;
};

std::map<std::string, Command>& Registry();

struct Registrar {
  explicit Registrar(Command c) { Registry()[c.name] = std::move(c); }
};

// Simple flag parsing: positional args and --flag VALUE / --flag=VALUE / --switch.
class Flags {
 public:
  // `with_value` lists the flags that take a value; `switches` those that do not.
  static Result<Flags> Parse(const Args& args, const std::vector<std::string>& with_value,
                             const std::vector<std::string>& switches = {});
  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& def = "") const {
    auto it = values_.find(flag);
    return it == values_.end() ? def : it->second;
  }

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
};

// Loads the config named by the first positional argument, or the bundled default when absent.
Result<Config> LoadConfigArg(const Flags& flags);

// Prints "greentrain <cmd>: <status>" to stderr and returns 1 (2 for invalid arguments).
int Fail(const std::string& cmd, const Status& s);

}  // namespace gt::cli

#define GT_REGISTER_COMMAND(var, ...) static ::gt::cli::Registrar var(::gt::cli::Command{__VA_ARGS__})
