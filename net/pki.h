// PKI for `berth server`: the cluster CA, the serving and client certificates, the admin kubeconfig and the
// node join token, created under <data_dir> on first start and validated (or renewed) on every later start.
// Keys are ECDSA P-256, certificates are X.509 v3 signed with SHA-256, accepted by Go's crypto/tls (kubectl,
// client-go) and by `openssl verify`. All failures are returned as api::Status values, never thrown.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "api/status.h"

struct x509_st;  // OpenSSL's X509, so callers holding a peer certificate need not include OpenSSL headers.

namespace berth::net {

// A certificate and its private key, both PEM ("CERTIFICATE", "PRIVATE KEY" as PKCS#8).
struct CertKey {
  std::string cert_pem;
  std::string key_pem;
};

// Validity periods and the renewal window.
inline constexpr int kCaValidityDays = 3650;
inline constexpr int kLeafValidityDays = 365;
inline constexpr int kLeafRenewBeforeDays = 30;  // a leaf with less left than this is re-issued on start

// Everything `berth server` needs, as found or created under <data_dir>:
//   <data_dir>/pki/ (0700): ca.crt ca.key server.crt server.key admin.crt admin.key
//                           apiserver-client.crt apiserver-client.key     (keys 0600, certificates 0644)
//   <data_dir>/node-token (0600)
struct ServerPki {
  CertKey ca;                // self-signed CA, CN "berth-ca"
  CertKey server;            // serving certificate: serverAuth, SANs below
  CertKey admin;             // client certificate CN "admin", O "system:masters"
  CertKey apiserver_client;  // what the API server presents to node agents: CN "berth-apiserver", O "system:masters"
  std::string node_token;    // the secret agents join with (64 hex characters when generated here)

  std::string pki_dir;
  std::string ca_cert_path, ca_key_path;
  std::string server_cert_path, server_key_path;
  std::string admin_cert_path, admin_key_path;
  std::string apiserver_client_cert_path, apiserver_client_key_path;
  std::string node_token_path;

  // File base names ("ca", "server", "admin", "apiserver-client", "node-token") created or re-issued by this
  // call; empty when everything on disk was reused. For the server's start-up log.
  std::vector<std::string> issued;
};

// Creates the PKI on first start; later reuses it after validating every file (parseable, certificate matches
// key, signed by the CA, CA not expired). Re-issues (with the same CA) a leaf that expires within
// kLeafRenewBeforeDays, and the serving certificate when it lacks any of localhost, 127.0.0.1, ::1, the host
// name, or an entry of extra_sans (each an IP address if it parses as one, else a DNS name; "[::1]" allowed).
// A re-issued serving certificate carries exactly the current set, so a --tls-san dropped later disappears at
// the next re-issue. A new CA (no ca.crt/ca.key) re-issues every leaf.
// Unparseable or mismatched files are an error naming the file (remove it to regenerate); the CA is never
// replaced silently, since agents and kubeconfigs trust it.
api::Result<ServerPki> ensure_server_pki(const std::string& data_dir, const std::vector<std::string>& extra_sans);

// Issues a leaf certificate for a fresh P-256 key, signed by `ca`: subject O=<each organization>, CN=common_name;
// SANs as in ensure_server_pki (may be empty for client certificates); extendedKeyUsage serverAuth and/or
// clientAuth; validity `days` from now, backdated one hour for clock skew; random positive 128-bit serial.
api::Result<CertKey> issue_cert(const CertKey& ca, const std::string& common_name,
                                const std::vector<std::string>& organizations, const std::vector<std::string>& sans,
                                bool server_auth, bool client_auth, int days);

// Creates a self-signed CA certificate for a fresh P-256 key (CA:TRUE, keyCertSign, cRLSign, digitalSignature).
api::Result<CertKey> create_ca(const std::string& common_name, int days);

// The identity a client certificate asserts: user name (CN) and groups (O), as Kubernetes' x509 authenticator.
struct Subject {
  std::string common_name;
  std::vector<std::string> organizations;
};
api::Result<Subject> subject_of(const std::string& cert_pem);
api::Result<Subject> subject_of(const x509_st* cert);  // e.g. from SSL_get0_peer_certificate

// Writes a kubeconfig (mode 0600, atomically) with cluster "berth" (server_url, certificate-authority-data),
// user `user_name` (client-certificate-data, client-key-data) and context "berth" as current-context.
api::Status write_kubeconfig(const std::string& path, const std::string& server_url, const std::string& ca_pem,
                             const CertKey& client, const std::string& user_name);

// Whole-file read; NotFound when the file does not exist.
api::Result<std::string> read_file(const std::string& path);

// Writes `data` to a temporary file in the same directory with `mode`, fsyncs it and renames it over `path`,
// so readers see the old or the new content, never a mix.
api::Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode);

// `bytes` random bytes from the OpenSSL CSPRNG, hex-encoded.
api::Result<std::string> random_hex(size_t bytes);

// Token comparison whose time does not depend on where the strings differ (only on their lengths).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace berth::net
