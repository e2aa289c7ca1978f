// pcpd::config parser: TOML text (toml++) -> validated Config. Unknown tables or keys, wrong
// types and out-of-range values are errors; every error is a ConfigError naming file:line.
// Does not look at the system (interfaces): see interface_table.hpp for that second step.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pcpd::config {

// Reads and validates `path`. Throws ConfigError (file unreadable: line 0).
[[nodiscard]] Config parse_config_file(const std::string& path);

// Validates TOML `text`; `file` names it in messages. Throws ConfigError.
[[nodiscard]] Config parse_config_text(std::string_view text, const std::string& file);

}  // namespace pcpd::config
