#include "nodeagent/probes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "nodeagent/runtime.h"

namespace berth::nodeagent {

namespace {

std::string host_port(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Connects with a deadline; returns the fd or -1 with a Go-like error message.
int dial(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  std::string port_s = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    error = "dial tcp: lookup " + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    ::freeaddrinfo(res);
    return -1;
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  std::string where = "dial tcp " + host_port(host, port) + ": ";
  if (rc != 0 && errno != EINPROGRESS) {
    error = where + "connect: " + std::strerror(errno);
    std::transform(error.begin() + where.size(), error.end(), error.begin() + where.size(),
                   [](unsigned char c) { return std::tolower(c); });
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) {
      error = where + "i/o timeout";
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      error = where + "connect: " + std::strerror(err);
      std::transform(error.begin() + where.size(), error.end(), error.begin() + where.size(),
                     [](unsigned char c) { return std::tolower(c); });
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

int resolve_port(const json& port, const json* container) {
  if (port.is_number_integer()) return static_cast<int>(port.get<int64_t>());
  if (port.is_string()) {
    std::string s = port.get<std::string>();
    if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) return std::atoi(s.c_str());
    if (container) {
      const json& ports = at(*container, {"ports"});
      if (ports.is_array())
        for (const auto& p : ports)
          if (jstr(p, {"name"}) == s) return static_cast<int>(jint(p, {"containerPort"}));
    }
  }
  return -1;
}

}  // namespace

ProbeResult tcp_connect(const std::string& host, int port, std::chrono::milliseconds timeout) {
  std::string error;
  int fd = dial(host, port, timeout, error);
  if (fd < 0) return {ProbeResult::Kind::Failure, error};
  ::close(fd);
  return {ProbeResult::Kind::Success, ""};
}

ProbeResult http_get(const std::string& scheme_in, const std::string& host, int port, const std::string& path_in,
                     const json& headers, std::chrono::milliseconds timeout) {
  std::string scheme = scheme_in.empty() ? "http" : scheme_in;
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string path = path_in.empty() ? "/" : (path_in[0] == '/' ? path_in : "/" + path_in);
  std::string url = scheme + "://" + host_port(host, port) + path;
  auto deadline = SteadyClock::now() + timeout;
  std::string error;
  int fd = dial(host, port, timeout, error);
  if (fd < 0) return {ProbeResult::Kind::Failure, "Get \"" + url + "\": " + error};
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  auto cleanup = [&] {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
    ::close(fd);
  };
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    return static_cast<int>(std::max<long long>(0, left));
  };
  auto timeout_result = [&] {
    cleanup();
    return ProbeResult{ProbeResult::Kind::Failure,
                       "Get \"" + url + "\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"};
  };
  if (scheme == "https") {
    // The kubelet does not verify probe certificates.
    ctx = SSL_CTX_new(TLS_client_method());
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host.c_str());
    for (;;) {
      int r = SSL_connect(ssl);
      if (r == 1) break;
      int e = SSL_get_error(ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        cleanup();
        return {ProbeResult::Kind::Failure, "Get \"" + url + "\": tls handshake failed"};
      }
      pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      if (::poll(&p, 1, remaining()) <= 0) return timeout_result();
    }
  }
  std::string host_header = host_port(host, port);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_header +
                        "\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n";
  if (headers.is_array()) {
    for (const auto& h : headers) {
      std::string name = jstr(h, {"name"});
      if (name.empty()) continue;
      if (strcasecmp(name.c_str(), "host") == 0) {
        request.replace(request.find("Host: "), 6 + host_header.size(), "Host: " + jstr(h, {"value"}));
        continue;
      }
      request += name + ": " + jstr(h, {"value"}) + "\r\n";
    }
  }
  request += "\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ssl ? SSL_write(ssl, request.data() + sent, static_cast<int>(request.size() - sent))
                    : ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (!ssl && n < 0 && errno != EAGAIN && errno != EINTR) {
      std::string msg = std::strerror(errno);
      cleanup();
      return {ProbeResult::Kind::Failure, "Get \"" + url + "\": " + msg};
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining()) <= 0) return timeout_result();
  }
  std::string response;
  while (response.find("\r\n") == std::string::npos && response.size() < 65536) {
    char buf[4096];
    ssize_t n = ssl ? SSL_read(ssl, buf, sizeof(buf)) : ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      response.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 && !ssl) break;
    if (ssl) {
      int e = SSL_get_error(ssl, static_cast<int>(n));
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) break;
    } else if (errno != EAGAIN && errno != EINTR) {
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remaining()) <= 0) return timeout_result();
  }
  cleanup();
  // "HTTP/1.1 200 OK"
  auto sp = response.find(' ');
  int code = sp == std::string::npos ? 0 : std::atoi(response.c_str() + sp + 1);
  if (code == 0) return {ProbeResult::Kind::Failure, "Get \"" + url + "\": EOF"};
  if (code >= 200 && code < 400) return {ProbeResult::Kind::Success, ""};
  return {ProbeResult::Kind::Failure, "HTTP probe failed with statuscode: " + std::to_string(code)};
}

ProbeResult run_handler(const json& h, const ProbeTarget& t, std::chrono::milliseconds timeout) {
  if (at(h, {"exec"}).is_object()) {
    std::vector<std::string> cmd;
    const json& c = at(h, {"exec", "command"});
    if (c.is_array())
      for (const auto& a : c) cmd.push_back(a.is_string() ? a.get<std::string>() : "");
    if (!t.runtime || t.container_id.empty()) return {ProbeResult::Kind::Unknown, "container is not running"};
    auto r = t.runtime->exec(t.container_id, cmd, timeout);
    std::string joined;
    for (std::size_t i = 0; i < cmd.size(); ++i) joined += (i ? " " : "") + cmd[i];
    if (r.timed_out) return {ProbeResult::Kind::Failure, "command \"" + joined + "\" timed out"};
    if (r.exit_code == 0) return {ProbeResult::Kind::Success, r.output};
    std::string out = r.output;
    if (out.empty()) out = "command \"" + joined + "\" exited with " + std::to_string(r.exit_code);
    return {ProbeResult::Kind::Failure, out};
  }
  if (at(h, {"httpGet"}).is_object()) {
    const json& g = h["httpGet"];
    int port = resolve_port(at(g, {"port"}), t.container);
    if (port <= 0) return {ProbeResult::Kind::Failure, "unable to resolve the probe's port " + at(g, {"port"}).dump()};
    std::string host = jstr(g, {"host"}, t.pod_ip);
    return http_get(jstr(g, {"scheme"}, "HTTP"), host, port, jstr(g, {"path"}, "/"), at(g, {"httpHeaders"}), timeout);
  }
  if (at(h, {"tcpSocket"}).is_object()) {
    const json& s = h["tcpSocket"];
    int port = resolve_port(at(s, {"port"}), t.container);
    if (port <= 0) return {ProbeResult::Kind::Failure, "unable to resolve the probe's port " + at(s, {"port"}).dump()};
    return tcp_connect(jstr(s, {"host"}, t.pod_ip), port, timeout);
  }
  if (at(h, {"sleep"}).is_object()) {
    auto want = std::chrono::seconds(jint(h, {"sleep", "seconds"}));
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(want, timeout));
    return {ProbeResult::Kind::Success, ""};
  }
  if (at(h, {"grpc"}).is_object()) {
    // Without a gRPC client, a connection that opens is the best signal we have.
    return tcp_connect(t.pod_ip, static_cast<int>(jint(h, {"grpc", "port"})), timeout);
  }
  return {ProbeResult::Kind::Unknown, "unknown handler"};
}

}  // namespace berth::nodeagent
