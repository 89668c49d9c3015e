// TlsOptions: how a client connection to a broker or result backend uses TLS, read from the
// query of a rediss:// or amqps:// URL with the parameter names redis-py and Celery use:
// ssl_cert_reqs (required | optional | none, or CERT_REQUIRED ...; default required),
// ssl_ca_certs (a CA bundle; default: the system's), ssl_certfile and ssl_keyfile (a client
// certificate), ssl_check_hostname (true | false; default true when the peer is verified).
// Plain values; parsing is pure and thread-safe.
#pragma once

#include <map>
#include <string>

namespace sra::bus {

struct TlsOptions {
  bool enabled = false;         // rediss:// or amqps://
  bool verify_peer = true;      // the server's certificate must chain to a trusted CA
  bool verify_hostname = true;  // ... and name the host connected to
  std::string ca_file;          // CA bundle; empty: the system's default trust store
  std::string cert_file;        // client certificate chain (PEM); empty: none
  std::string key_file;         // its private key (PEM); empty: in cert_file
};

// Splits "a=b&c=d" into decoded pairs (%XX and '+' as Python's parse_qsl reads them).
std::map<std::string, std::string> parse_url_query(const std::string& query);

// Reads the ssl_* parameters of `query` into `out` (enabled is left as it is). Throws
// sra::Error(config) naming `variable` for an unknown parameter or value; the message never
// carries the URL itself.
void read_tls_parameters(const std::map<std::string, std::string>& query,
                         const std::string& variable, TlsOptions& out);

// "%XX" escapes decoded as Python's urllib.parse.unquote does: a malformed escape stays as it is.
std::string percent_decode(const std::string& text);

}  // namespace sra::bus
