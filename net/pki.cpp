#include "net/pki.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <iterator>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace berth::net {
namespace {

using api::Reason;
using api::Result;
using api::Status;

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ASN1_STRING* p) const { ASN1_STRING_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

// The OpenSSL error queue as text, drained so the next call starts clean.
std::string ssl_errors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status internal(const std::string& what) {
  std::string detail = ssl_errors();
  return Status(Reason::InternalError, detail.empty() ? what : what + " (" + detail + ")");
}

// Never prompt for a pass phrase: an encrypted key is simply unusable here.
int no_password(char*, int, int, void*) { return 0; }

Result<Ptr<EVP_PKEY>> generate_key() {
  Ptr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return internal("generating a P-256 key failed");
  return key;
}

Result<std::string> bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n < 0) return internal("reading a memory BIO failed");
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> cert_to_pem(X509* x) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x) != 1) return internal("encoding a certificate failed");
  return bio_text(bio.get());
}

Result<std::string> key_to_pem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  // PKCS#8 ("PRIVATE KEY"): what Go's tls.X509KeyPair and every OpenSSL reader accept.
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return internal("encoding a private key failed");
  return bio_text(bio.get());
}

Result<Ptr<X509>> parse_cert(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> x(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!x) return internal(what + ": not a valid PEM certificate");
  return x;
}

Result<Ptr<EVP_PKEY>> parse_key(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<EVP_PKEY> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) return internal(what + ": not a valid unencrypted PEM private key");
  return key;
}

// A subjectAltName entry. `value` is the lower-cased DNS name or the raw 4/16 address bytes.
struct San {
  bool ip = false;
  std::string value;
  std::string key() const { return (ip ? "ip:" : "dns:") + value; }
};

bool dns_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '*';
}

Result<San> parse_san(std::string s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  unsigned char addr[16];
  if (inet_pton(AF_INET, s.c_str(), addr) == 1) return San{true, std::string(reinterpret_cast<char*>(addr), 4)};
  if (inet_pton(AF_INET6, s.c_str(), addr) == 1) return San{true, std::string(reinterpret_cast<char*>(addr), 16)};
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-')
    return Status(Reason::Invalid, "invalid subject alternative name \"" + s + "\": not an IP address or DNS name");
  for (char& c : s) {
    if (!dns_char(c))
      return Status(Reason::Invalid, "invalid subject alternative name \"" + s + "\": not an IP address or DNS name");
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return San{false, s};
}

Result<std::vector<San>> parse_sans(const std::vector<std::string>& in) {
  std::vector<San> out;
  std::set<std::string> seen;
  for (const auto& s : in) {
    auto san = parse_san(s);
    if (!san) return std::move(san).take_status();
    if (seen.insert(san->key()).second) out.push_back(std::move(*san));
  }
  return out;
}

std::set<std::string> sans_in(X509* x) {
  std::set<std::string> out;
  Ptr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      auto san = parse_san(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<size_t>(ASN1_STRING_length(s))));
      if (san) out.insert(san->key());
    } else if (gn->type == GEN_IPADD) {
      const ASN1_STRING* s = gn->d.iPAddress;
      out.insert("ip:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                     static_cast<size_t>(ASN1_STRING_length(s))));
    }
  }
  return out;
}

Status add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  Ptr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1)
    return internal(std::string("adding extension ") + OBJ_nid2sn(nid) + "=" + value + " failed");
  return {};
}

Status add_sans(X509* x, const std::vector<San>& sans) {
  if (sans.empty()) return {};
  Ptr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
  if (!names) return internal("allocating subjectAltName failed");
  for (const San& san : sans) {
    Ptr<GENERAL_NAME> gn(GENERAL_NAME_new());
    Ptr<ASN1_STRING> s(san.ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new());
    if (!gn || !s || ASN1_STRING_set(s.get(), san.value.data(), static_cast<int>(san.value.size())) != 1)
      return internal("building subjectAltName failed");
    GENERAL_NAME_set0_value(gn.get(), san.ip ? GEN_IPADD : GEN_DNS, s.release());
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return internal("building subjectAltName failed");
    gn.release();
  }
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return internal("adding subjectAltName failed");
  return {};
}

// A v3 certificate skeleton: random positive 128-bit serial, validity from an hour ago to `days` from now.
Result<Ptr<X509>> new_cert(EVP_PKEY* key, const std::string& common_name, const std::vector<std::string>& orgs,
                           int days) {
  if (common_name.empty()) return Status(Reason::Invalid, "certificate common name must not be empty");
  if (days <= 0) return Status(Reason::Invalid, "certificate validity must be at least one day");
  Ptr<X509> x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1) return internal("allocating a certificate failed");

  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return internal("generating a serial number failed");
  serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x40);  // positive (Go rejects negative) and non-zero
  Ptr<BIGNUM> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get())))
    return internal("setting the serial number failed");

  if (!X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(x.get()), days, 0, nullptr))
    return internal("setting the validity period failed");

  Ptr<X509_NAME> name(X509_NAME_new());
  if (!name) return internal("allocating a name failed");
  for (const auto& o : orgs) {
    if (X509_NAME_add_entry_by_NID(name.get(), NID_organizationName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(o.data()), static_cast<int>(o.size()), -1,
                                   0) != 1)
      return internal("invalid organization \"" + o + "\"");
  }
  if (X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1)
    return internal("invalid common name \"" + common_name + "\"");
  if (X509_set_subject_name(x.get(), name.get()) != 1 || X509_set_pubkey(x.get(), key) != 1)
    return internal("setting the subject failed");
  return x;
}

Result<CertKey> finish(X509* x, EVP_PKEY* signer, EVP_PKEY* key) {
  if (X509_sign(x, signer, EVP_sha256()) <= 0) return internal("signing the certificate failed");
  auto cert = cert_to_pem(x);
  if (!cert) return std::move(cert).take_status();
  auto key_pem = key_to_pem(key);
  if (!key_pem) return std::move(key_pem).take_status();
  return CertKey{std::move(*cert), std::move(*key_pem)};
}

// Seconds until the certificate's notAfter (negative once expired).
long long seconds_left(const X509* x) {
  int days = 0, secs = 0;
  if (!ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(x))) return -1;
  return static_cast<long long>(days) * 86400 + secs;
}

std::string not_after_text(const X509* x) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), X509_get0_notAfter(x)) != 1) return "?";
  auto t = bio_text(bio.get());
  return t ? *t : "?";
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Result<std::string> base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return internal("base64 encoding failed");
  out.resize(static_cast<size_t>(n));
  return out;
}

Status write_pair(const CertKey& ck, const std::string& cert_path, const std::string& key_path) {
  // Key first: a crash in between leaves a mismatched pair, which the next start reports, never a cert whose
  // key is lost.
  if (auto s = write_file_atomic(key_path, ck.key_pem, 0600); !s) return s;
  return write_file_atomic(cert_path, ck.cert_pem, 0644);
}

// Reads both files of a pair; NotFound when either is missing.
Result<CertKey> read_pair(const std::string& cert_path, const std::string& key_path) {
  auto cert = read_file(cert_path);
  if (!cert) return std::move(cert).take_status();
  auto key = read_file(key_path);
  if (!key) return std::move(key).take_status();
  return CertKey{std::move(*cert), std::move(*key)};
}

struct LeafSpec {
  std::string name;  // file base name
  std::string common_name;
  std::vector<std::string> orgs;
  std::vector<std::string> sans;  // already validated
  bool server_auth = false, client_auth = false;
};

// Decides whether an existing leaf can be reused. Ok(true): reuse; Ok(false): re-issue; error: broken files.
Result<bool> leaf_reusable(const CertKey& have, const std::string& cert_path, const std::string& key_path,
                           X509* ca, const LeafSpec& spec) {
  auto cert = parse_cert(have.cert_pem, cert_path);
  if (!cert) return Status(Reason::InternalError, cert.status().message() + "; remove it to issue a new one");
  auto key = parse_key(have.key_pem, key_path);
  if (!key) return Status(Reason::InternalError, key.status().message() + "; remove it to issue a new one");
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status(Reason::InternalError, cert_path + " does not match " + key_path + "; remove both to issue new ones");
  }
  EVP_PKEY* ca_pub = X509_get0_pubkey(ca);
  if (!ca_pub || X509_verify(cert->get(), ca_pub) != 1) {  // the CA was replaced: issue under the new one
    ERR_clear_error();
    return false;
  }
  if (seconds_left(cert->get()) < static_cast<long long>(kLeafRenewBeforeDays) * 86400) return false;
  auto subject = subject_of(cert->get());
  if (!subject || subject->common_name != spec.common_name || subject->organizations != spec.orgs) return false;
  if (!spec.sans.empty()) {
    auto want = parse_sans(spec.sans);
    if (!want) return std::move(want).take_status();
    std::set<std::string> got = sans_in(cert->get());
    for (const San& s : *want)
      if (!got.count(s.key())) return false;
  }
  return true;
}

Result<CertKey> ensure_leaf(const CertKey& ca, X509* ca_cert, bool fresh_ca, const std::string& dir,
                            const LeafSpec& spec, std::vector<std::string>& issued) {
  std::string cert_path = dir + "/" + spec.name + ".crt", key_path = dir + "/" + spec.name + ".key";
  if (!fresh_ca) {
    auto have = read_pair(cert_path, key_path);
    if (have) {
      auto reusable = leaf_reusable(*have, cert_path, key_path, ca_cert, spec);
      if (!reusable) return std::move(reusable).take_status();
      if (*reusable) return std::move(*have);
    } else if (have.status().reason() != Reason::NotFound) {
      return std::move(have).take_status();
    }
  }
  auto ck = issue_cert(ca, spec.common_name, spec.orgs, spec.sans, spec.server_auth, spec.client_auth,
                       kLeafValidityDays);
  if (!ck) return ck;
  if (auto s = write_pair(*ck, cert_path, key_path); !s) return s;
  issued.push_back(spec.name);
  return ck;
}

Status errno_status(const std::string& what, int err) {
  return Status(err == ENOENT ? Reason::NotFound : Reason::InternalError, what + ": " + std::strerror(err));
}

}  // namespace

Result<CertKey> create_ca(const std::string& common_name, int days) {
  auto key = generate_key();
  if (!key) return std::move(key).take_status();
  auto x = new_cert(key->get(), common_name, {}, days);
  if (!x) return std::move(x).take_status();
  if (X509_set_issuer_name(x->get(), X509_get_subject_name(x->get())) != 1) return internal("setting the issuer failed");
  X509V3_CTX ctx{};
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x->get(), x->get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto s = add_ext(x->get(), &ctx, nid, value); !s) return s;
  }
  return finish(x->get(), key->get(), key->get());
}

Result<CertKey> issue_cert(const CertKey& ca, const std::string& common_name,
                           const std::vector<std::string>& organizations, const std::vector<std::string>& sans,
                           bool server_auth, bool client_auth, int days) {
  if (!server_auth && !client_auth)
    return Status(Reason::Invalid, "a certificate needs serverAuth, clientAuth or both");
  auto parsed_sans = parse_sans(sans);
  if (!parsed_sans) return std::move(parsed_sans).take_status();
  auto ca_cert = parse_cert(ca.cert_pem, "CA certificate");
  if (!ca_cert) return std::move(ca_cert).take_status();
  auto ca_key = parse_key(ca.key_pem, "CA key");
  if (!ca_key) return std::move(ca_key).take_status();
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1)
    return internal("the CA certificate does not match the CA key");

  auto key = generate_key();
  if (!key) return std::move(key).take_status();
  auto x = new_cert(key->get(), common_name, organizations, days);
  if (!x) return std::move(x).take_status();
  if (X509_set_issuer_name(x->get(), X509_get_subject_name(ca_cert->get())) != 1)
    return internal("setting the issuer failed");

  X509V3_CTX ctx{};
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert->get(), x->get(), nullptr, nullptr, 0);
  std::string eku = server_auth && client_auth ? "serverAuth,clientAuth" : server_auth ? "serverAuth" : "clientAuth";
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                            std::pair{NID_ext_key_usage, eku.c_str()},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto s = add_ext(x->get(), &ctx, nid, value); !s) return s;
  }
  if (auto s = add_sans(x->get(), *parsed_sans); !s) return s;
  return finish(x->get(), ca_key->get(), key->get());
}

Result<ServerPki> ensure_server_pki(const std::string& data_dir, const std::vector<std::string>& extra_sans) {
  namespace fs = std::filesystem;
  if (data_dir.empty()) return Status(Reason::Invalid, "data directory must not be empty");

  // The serving certificate's names, validated before anything is written.
  std::vector<std::string> server_sans = {"localhost", "127.0.0.1", "::1"};
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' && parse_san(host)) server_sans.emplace_back(host);
  for (const auto& s : extra_sans) {
    if (auto san = parse_san(s); !san) return std::move(san).take_status();
    server_sans.push_back(s);
  }

  ServerPki pki;
  pki.pki_dir = data_dir + "/pki";
  std::error_code ec;
  fs::create_directories(pki.pki_dir, ec);
  if (ec) return Status(Reason::InternalError, "creating " + pki.pki_dir + ": " + ec.message());
  if (::chmod(pki.pki_dir.c_str(), 0700) != 0) return errno_status("chmod " + pki.pki_dir, errno);

  const std::string& dir = pki.pki_dir;
  pki.ca_cert_path = dir + "/ca.crt";
  pki.ca_key_path = dir + "/ca.key";
  pki.server_cert_path = dir + "/server.crt";
  pki.server_key_path = dir + "/server.key";
  pki.admin_cert_path = dir + "/admin.crt";
  pki.admin_key_path = dir + "/admin.key";
  pki.apiserver_client_cert_path = dir + "/apiserver-client.crt";
  pki.apiserver_client_key_path = dir + "/apiserver-client.key";
  pki.node_token_path = data_dir + "/node-token";

  // The CA: created once, then only ever validated. Replacing it would strand every agent and kubeconfig.
  bool fresh_ca = false;
  auto ca_cert_file = read_file(pki.ca_cert_path);
  auto ca_key_file = read_file(pki.ca_key_path);
  bool cert_missing = !ca_cert_file && ca_cert_file.status().reason() == Reason::NotFound;
  bool key_missing = !ca_key_file && ca_key_file.status().reason() == Reason::NotFound;
  if (cert_missing && key_missing) {
    auto ca = create_ca("berth-ca", kCaValidityDays);
    if (!ca) return std::move(ca).take_status();
    if (auto s = write_pair(*ca, pki.ca_cert_path, pki.ca_key_path); !s) return s;
    pki.ca = std::move(*ca);
    pki.issued.push_back("ca");
    fresh_ca = true;
  } else if (cert_missing || key_missing) {
    return Status(Reason::InternalError,
                  (cert_missing ? pki.ca_cert_path : pki.ca_key_path) + " is missing while " +
                      (cert_missing ? pki.ca_key_path : pki.ca_cert_path) +
                      " exists; restore it, or remove both to create a new CA (every agent and kubeconfig must "
                      "then be re-issued)");
  } else if (!ca_cert_file) {
    return std::move(ca_cert_file).take_status();
  } else if (!ca_key_file) {
    return std::move(ca_key_file).take_status();
  } else {
    pki.ca = CertKey{std::move(*ca_cert_file), std::move(*ca_key_file)};
  }

  auto ca_cert = parse_cert(pki.ca.cert_pem, pki.ca_cert_path);
  if (!ca_cert) return std::move(ca_cert).take_status();
  auto ca_key = parse_key(pki.ca.key_pem, pki.ca_key_path);
  if (!ca_key) return std::move(ca_key).take_status();
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return Status(Reason::InternalError, pki.ca_cert_path + " does not match " + pki.ca_key_path);
  }
  if (X509_check_ca(ca_cert->get()) < 1)
    return Status(Reason::InternalError, pki.ca_cert_path + " is not a CA certificate");
  if (seconds_left(ca_cert->get()) <= 0)
    return Status(Reason::InternalError, pki.ca_cert_path + " expired on " + not_after_text(ca_cert->get()));

  const LeafSpec leaves[] = {
      {"server", "berth-server", {}, server_sans, true, false},
      {"admin", "admin", {"system:masters"}, {}, false, true},
      {"apiserver-client", "berth-apiserver", {"system:masters"}, {}, false, true},
  };
  CertKey* outs[] = {&pki.server, &pki.admin, &pki.apiserver_client};
  for (size_t i = 0; i < std::size(leaves); ++i) {
    auto ck = ensure_leaf(pki.ca, ca_cert->get(), fresh_ca, dir, leaves[i], pki.issued);
    if (!ck) return std::move(ck).take_status();
    *outs[i] = std::move(*ck);
  }

  auto token = read_file(pki.node_token_path);
  if (token) {
    pki.node_token = trim(*token);
    bool printable = !pki.node_token.empty();
    for (unsigned char c : pki.node_token) printable = printable && c > 0x20 && c < 0x7f;
    if (!printable)
      return Status(Reason::InternalError, pki.node_token_path + " must hold one non-empty printable token");
  } else if (token.status().reason() == Reason::NotFound) {
    auto fresh = random_hex(32);
    if (!fresh) return std::move(fresh).take_status();
    if (auto s = write_file_atomic(pki.node_token_path, *fresh + "\n", 0600); !s) return s;
    pki.node_token = std::move(*fresh);
    pki.issued.push_back("node-token");
  } else {
    return std::move(token).take_status();
  }
  return pki;
}

Result<Subject> subject_of(const x509_st* cert) {
  if (!cert) return Status(Reason::Unauthorized, "no certificate");
  const X509_NAME* name = X509_get_subject_name(cert);
  Subject out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n < 0) return internal("decoding the certificate subject failed");
    std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
    if (nid == NID_commonName)
      out.common_name = std::move(value);  // the last CN wins, as in Go's pkix.Name (Kubernetes' authenticator)
    else
      out.organizations.push_back(std::move(value));
  }
  return out;
}

Result<Subject> subject_of(const std::string& cert_pem) {
  auto x = parse_cert(cert_pem, "client certificate");
  if (!x) return std::move(x).take_status();
  return subject_of(x->get());
}

Status write_kubeconfig(const std::string& path, const std::string& server_url, const std::string& ca_pem,
                        const CertKey& client, const std::string& user_name) {
  if (server_url.empty()) return Status(Reason::Invalid, "kubeconfig server URL must not be empty");
  if (user_name.empty()) return Status(Reason::Invalid, "kubeconfig user name must not be empty");
  if (auto ca = parse_cert(ca_pem, "kubeconfig CA certificate"); !ca) return std::move(ca).take_status();
  auto cert = parse_cert(client.cert_pem, "kubeconfig client certificate");
  if (!cert) return std::move(cert).take_status();
  auto key = parse_key(client.key_pem, "kubeconfig client key");
  if (!key) return std::move(key).take_status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status(Reason::Invalid, "kubeconfig client certificate does not match its key");
  }
  auto ca64 = base64(ca_pem);
  auto cert64 = base64(client.cert_pem);
  auto key64 = base64(client.key_pem);
  if (!ca64 || !cert64 || !key64) return internal("base64 encoding failed");
  std::string user = yaml_quote(user_name);
  std::string y;
  y += "apiVersion: v1\n";
  y += "kind: Config\n";
  y += "clusters:\n";
  y += "- name: berth\n";
  y += "  cluster:\n";
  y += "    server: " + yaml_quote(server_url) + "\n";
  y += "    certificate-authority-data: " + *ca64 + "\n";
  y += "users:\n";
  y += "- name: " + user + "\n";
  y += "  user:\n";
  y += "    client-certificate-data: " + *cert64 + "\n";
  y += "    client-key-data: " + *key64 + "\n";
  y += "contexts:\n";
  y += "- name: berth\n";
  y += "  context:\n";
  y += "    cluster: berth\n";
  y += "    user: " + user + "\n";
  y += "current-context: berth\n";
  y += "preferences: {}\n";
  return write_file_atomic(path, y, 0600);
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return errno_status("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return errno_status("create temporary file for " + path, errno);
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status(Reason::InternalError, what + " " + tmp + ": " + std::strerror(err));
  };
  if (::fchmod(fd, mode) != 0) return fail("chmod");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status(Reason::InternalError, "close " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status(Reason::InternalError, "rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  // Make the rename itself durable; best effort, as some file systems refuse fsync on directories.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<std::string> random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (bytes > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    return internal("the random number generator failed");
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace berth::net
