// berth-agent: the node agent alone, for nodes. The same code as `berth agent`, linked without
// the API server, the store (RocksDB) and the controllers: the agent and each container's shim
// then load a third of the shared libraries. Fewer libraries to map and relocate are most of the
// agent's idle memory and of a shim's start-up time. It takes the same flags as `berth agent`
// (with or without the word "agent" first), and its shims are itself.
#include <cstring>

#include "nodeagent/agent.h"
#include "nodeagent/util.h"

int main(int argc, char** argv) {
  berth::nodeagent::tune_agent_memory();
  // argv[0] stands for "agent", as in `berth agent ...` (agent_main skips it).
  if (argc > 1 && std::strcmp(argv[1], "agent") == 0) return berth::nodeagent::agent_main(argc - 1, argv + 1);
  return berth::nodeagent::agent_main(argc, argv);
}
