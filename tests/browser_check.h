// Opens a self-contained HTML page (coordinator/html_report.h) in Debian's chromium, headless, and
// returns the <body> tag after load: the page's script records there whether every chart drew
// (data-rendered, data-drawn) and any script error (data-errors). NotFound when chromium is not
// installed (launch/setup.sh installs it); the caller skips then.
#pragma once

#include <string>

#include "common/status.h"

namespace gt::testing {

Result<std::string> RenderedBodyTag(const std::string& html_path, const std::string& scratch_dir);

}  // namespace gt::testing
