// The `greentrain` command-line program: dispatches to the registered subcommands.
#include <cstdio>
#include <iostream>

#include "launch/command.h"

namespace gt::cli {

std::map<std::string, Command>& Registry() {
  static std::map<std::string, Command> r;
  return r;
}

Result<Flags> Flags::Parse(const Args& args, const std::vector<std::string>& with_value,
                           const std::vector<std::string>& switches) {
  Flags f;
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v) if (x == s) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0) {
      std::string name = a, value;
      auto eq = a.find('=');
      bool has_eq = eq != std::string::npos;
      if (has_eq) { name = a.substr(0, eq); value = a.substr(eq + 1); }
      if (in(with_value, name)) {
        if (!has_eq) {
          if (i + 1 >= args.size()) return InvalidArgument(name + " needs a value");
          value = args[++i];
        }
        f.values_[name] = value;
      } else if (in(switches, name) && !has_eq) {
        f.values_[name] = "1";
      } else {
        return InvalidArgument("unknown option '" + name + "'");
      }
    } else {
      f.positional_.push_back(a);
    }
  }
  return f;
}

Result<Config> LoadConfigArg(const Flags& flags) {
  std::string path = flags.positional().empty() ? DefaultConfigPath() : flags.positional()[0];
  return LoadConfig(path);
}

int Fail(const std::string& cmd, const Status& s) {
  std::cerr << "greentrain " << cmd << ": " << s.ToString() << "\n";
  return s.code() == Code::kInvalidArgument ? 2 : 1;
}

}  // namespace gt::cli

namespace {

void PrintHelp() {
  std::printf("greentrain: train large models across sites, following renewable power.\n\nCommands:\n");
  for (const auto& [name, c] : gt::cli::Registry())
    std::printf("  greentrain %s\n      %s\n", c.usage.c_str(), c.summary.c_str());
  std::printf("\nWithout CONFIG, commands use the bundled default (%s).\n", gt::DefaultConfigPath().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help" ||
      std::string(argv[1]) == "-h") {
    PrintHelp();
    return argc < 2 ? 2 : 0;
  }
  auto& reg = gt::cli::Registry();
  auto it = reg.find(argv[1]);
  if (it == reg.end()) {
    std::fprintf(stderr, "greentrain: unknown command '%s'; run 'greentrain help'\n", argv[1]);
    return 2;
  }
  gt::cli::Args args(argv + 2, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::printf("usage: greentrain %s\n  %s\n", it->second.usage.c_str(), it->second.summary.c_str());
      return 0;
    }
  return it->second.run(args);
}
