#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/result.h"

namespace picket::e2e {

// Every network namespace, root-namespace link and Kubernetes Node the harness makes is named
// "picket-e2e-<pid>-..." after the process that made it, so a later run can tell leftovers of a
// dead run (whose pid no longer runs) from those of a live one.
inline constexpr std::string_view kNamePrefix = "picket-e2e-";

// kNamePrefix + this process's pid + "-".
std::string ownPrefix();

// The pid in a harness name ("picket-e2e-1234-..." gives 1234); nullopt for any other name.
std::optional<pid_t> harnessOwner(std::string_view name);

// A named network namespace (/run/netns/<name>, as `ip netns add` makes it) with its loopback up.
// Destroying it kills every process still inside and removes it.
class NetworkNamespace {
 public:
  static Result<std::unique_ptr<NetworkNamespace>> create(const std::string& name);

  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;
  ~NetworkNamespace();

  const std::string& name() const { return name_; }
  // /run/netns/<name>.
  std::string path() const;
  // The namespace's inode: /proc/<pid>/ns/net of every process inside links to it.
  ino_t inode() const { return inode_; }

  // Runs `fn` on a new thread that has entered this namespace, and returns what it returns.
  // Sockets `fn` opens belong to the namespace. kIo when the thread cannot enter it.
  template <class Fn>
  auto run(Fn&& fn) const -> Result<std::invoke_result_t<Fn>> {
    using T = std::invoke_result_t<Fn>;
    Status entered = ok();
    if constexpr (std::is_void_v<T>) {
      std::thread([&] {
        entered = enterCurrentThread();
        if (entered) fn();
      }).join();
      if (!entered) return makeError(std::move(entered.error()));
      return {};
    } else {
      std::optional<T> value;
      std::thread([&] {
        entered = enterCurrentThread();
        if (entered) value.emplace(fn());
      }).join();
      if (!entered) return makeError(std::move(entered.error()));
      return std::move(*value);
    }
  }

  // Moves the calling thread into this namespace for good (setns is per thread): for threads
  // that serve one namespace for their whole life.
  Status enterCurrentThread() const;

 private:
  NetworkNamespace(std::string name, ino_t inode) : name_(std::move(name)), inode_(inode) {}

  std::string name_;
  ino_t inode_;
};

// The pids of the processes whose network namespace has inode `inode`.
std::vector<pid_t> processesInNamespace(ino_t inode);

// What a harness left behind, found by name and namespace.
struct Leftovers {
  std::vector<std::string> namespaces;    // under /run/netns
  std::vector<std::string> links;         // in the root namespace
  std::vector<pid_t> processes;           // inside those namespaces
  std::vector<std::string> scratch_dirs;  // /tmp/picket-e2e-<pid>-*: logs, certificates

  bool empty() const {
    return namespaces.empty() && links.empty() && processes.empty() && scratch_dirs.empty();
  }
  // One line per leftover, for a failure message.
  std::string describe() const;
};

// The leftovers of the harness run by process `owner` (this process by default).
Leftovers findLeftovers(pid_t owner = ::getpid());

// Removes the leftovers of every harness run whose process has ended (killed by SIGKILL, say,
// which no cleanup survives): kills the processes inside its namespaces, deletes the namespaces
// and its root-namespace links and scratch dirs. Returns what it removed.
Leftovers sweepDeadRuns();

}  // namespace picket::e2e
