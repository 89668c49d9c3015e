#include "bus/tls_options.h"

#include <algorithm>

#include "core/errors.h"

namespace sra::bus {

std::string percent_decode(const std::string& s) {
  std::string out;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::map<std::string, std::string> parse_url_query(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    if (!pair.empty()) {
      std::replace(pair.begin(), pair.end(), '+', ' ');
      auto eq = pair.find('=');
      std::string key = percent_decode(pair.substr(0, eq));
      std::string value = eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
      out[key] = value;
    }
    start = end + 1;
  }
  return out;
}

void read_tls_parameters(const std::map<std::string, std::string>& query,
                         const std::string& variable, TlsOptions& out) {
  for (const auto& [key, value] : query) {
    if (key == "ssl_cert_reqs") {
      std::string v = value;
      std::transform(v.begin(), v.end(), v.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (v.rfind("cert_", 0) == 0) v = v.substr(5);
      if (v == "required" || v == "optional") {
        out.verify_peer = true;  // for a client, Python's CERT_OPTIONAL verifies as REQUIRED does
      } else if (v == "none") {
        out.verify_peer = false;
        out.verify_hostname = false;
      } else {
        throw config_error(variable + ": ssl_cert_reqs must be required, optional or none");
      }
    } else if (key == "ssl_ca_certs") {
      out.ca_file = value;
    } else if (key == "ssl_certfile") {
      out.cert_file = value;
    } else if (key == "ssl_keyfile") {
      out.key_file = value;
    } else if (key == "ssl_check_hostname") {
      if (value == "true" || value == "True" || value == "1") {
        out.verify_hostname = true;
      } else if (value == "false" || value == "False" || value == "0") {
        out.verify_hostname = false;
      } else {
        throw config_error(variable + ": ssl_check_hostname must be true or false");
      }
    } else {
      throw config_error(variable + ": unknown URL parameter '" + key +
                         "' (known: ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile, "
                         "ssl_check_hostname)");
    }
  }
  if (!out.verify_peer) out.verify_hostname = false;
}

}  // namespace sra::bus
