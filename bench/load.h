// A load generator for the API benchmarks: many keep-alive HTTPS connections, each one client
// sending a request as soon as its last answer arrived, driven by a few event-loop threads
// rather than a thread per connection. With a thread per client, 64 blocked threads woken once
// per answer cost the shared 2-core machine ~50 us of CPU per request in the load generator
// alone; the server's figures are the same either way. No Asio in this header.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "client/client.h"

namespace berth::bench {

struct LoadOptions {
  client::Config config;  // server (https://<IP>:<port>), CA, client certificate or token, user agent
  int connections = 64;
  int threads = 2;        // event loops; the connections are shared out among them
};

// The next request a connection sends: false when the run is over for that connection.
// Called from the event-loop threads, concurrently.
using NextRequest = std::function<bool(std::string& method, std::string& path, std::string& body)>;

struct LoadResult {
  std::vector<double> latencies_ms;  // of the answers with the expected status
  std::size_t errors = 0;            // other answers, and transport failures
  std::string first_error;
  double seconds = 0;                // from the first request to the last answer
};

// Opens every connection (TLS handshake included), calls started(), then runs until next()
// has said false on every connection. Fails (errors, first_error) when connections cannot
// be opened.
LoadResult run_load(const LoadOptions& options, const NextRequest& next, int expected_status,
                    const std::function<void()>& started);

}  // namespace berth::bench
