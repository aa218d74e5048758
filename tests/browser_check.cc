#include "tests/browser_check.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gt::testing {

Result<std::string> RenderedBodyTag(const std::string& html_path, const std::string& scratch_dir) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0)
    return NotFound("chromium not installed (launch/setup.sh installs it)");
  const std::string dom = scratch_dir + "/rendered-dom.html";
  const std::string cmd = "timeout 60 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=3000 "
                          "--dump-dom 'file://" + html_path + "' > '" + dom + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return Internal("chromium failed: " + cmd);
  std::ifstream in(dom);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  const size_t body = page.find("<body");
  if (body == std::string::npos) return Internal("no <body> in the rendered page: " + page.substr(0, 300));
  return page.substr(body, page.find('>', body) - body + 1);
}

}  // namespace gt::testing
