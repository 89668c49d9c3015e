// Parser for `.env` files, compatible with what python-dotenv accepts in practice.
//
// Accepted: `KEY=value`, `export KEY=value`, spaces around `=`, `# comments` and blank lines,
// single-quoted values (literal), double-quoted values (escapes \n \t \r \" \\ and ${VAR}
// expansion; may span lines), unquoted values (trailing ` # comment` removed, ${VAR} and
// ${VAR:-default} expanded), and a bare `KEY` (ignored, as python-dotenv gives it no value).
// Expansion looks a name up in `lookup` first (the process environment, which wins), then in the
// values parsed earlier in the same file. A malformed line throws sra::Error(config) naming the
// source and the line number. Pure function: safe to call from any thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace sra {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

std::map<std::string, std::string> parse_dotenv(std::string_view text, const std::string& source,
                                                const EnvLookup& lookup = {});

}  // namespace sra
