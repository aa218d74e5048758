// The `greentrain` command-line program: dispatches to the registered subcommands.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "launch/command.h"

namespace gt::cli {

std::map<std::string, Command>& Registry() {
  static std::map<std::string, Command> r;
  return r;
}

namespace {

std::unique_ptr<CLI::App> MakeApp(const Command& c) {
  auto app = std::make_unique<CLI::App>(c.summary, "greentrain " + c.name);
  app->get_formatter()->column_width(34);
  return app;
}

}  // namespace

int RunCommand(const Command& c, std::vector<std::string> args) {
  auto app = MakeApp(c);
  std::function<int()> action = c.define(*app);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app->parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app->help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "greentrain " << c.name << ": " << e.what() << " (see 'greentrain help " << c.name << "')\n";
    return 2;
  }
  return action();
}

std::string CommandHelp(const Command& c) {
  auto app = MakeApp(c);
  (void)c.define(*app);
  return app->help();
}

void AddConfigArg(CLI::App& app, std::string* path) {
  app.add_option("CONFIG", *path, "configuration file (default: the bundled " + DefaultConfigPath() + ")");
}

Result<Config> LoadConfigOrDefault(const std::string& path) {
  return LoadConfig(path.empty() ? DefaultConfigPath() : path);
}

int Fail(const std::string& cmd, const Status& s) {
  std::cerr << "greentrain " << cmd << ": " << s.ToString() << "\n";
  return s.code() == Code::kInvalidArgument ? 2 : 1;
}

}  // namespace gt::cli

namespace {

void PrintHelp() {
  std::printf("greentrain: train large models across sites, following renewable power.\n\nCommands:\n");
  for (const auto& [name, c] : gt::cli::Registry()) std::printf("  %-12s %s\n", name.c_str(), c.summary.c_str());
  std::printf(
      "\n'greentrain help CMD' or 'greentrain CMD --help' lists a command's arguments. Without CONFIG, commands\n"
      "use the bundled default (%s).\nExit codes: 0 ok, 1 error, 2 usage error, 3 the job missed its deadline.\n",
      gt::DefaultConfigPath().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  auto& reg = gt::cli::Registry();
  const std::string first = argc < 2 ? "" : argv[1];
  if (first.empty() || first == "--help" || first == "-h" || (first == "help" && argc == 2)) {
    PrintHelp();
    return first.empty() ? 2 : 0;
  }
  if (first == "help") {
    auto it = reg.find(argv[2]);
    if (it == reg.end() || argc > 3) {
      std::fprintf(stderr, "greentrain help: unknown command '%s'; run 'greentrain help'\n", argv[2]);
      return 2;
    }
    std::cout << gt::cli::CommandHelp(it->second);
    return 0;
  }
  auto it = reg.find(first);
  if (it == reg.end()) {
    std::fprintf(stderr, "greentrain: unknown command '%s'; run 'greentrain help'\n", argv[1]);
    return 2;
  }
  return gt::cli::RunCommand(it->second, std::vector<std::string>(argv + 2, argv + argc));
}
