#include "test/e2e/harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "test/e2e/harness/process.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;

bool alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::optional<ino_t> inodeOf(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return info.st_ino;
}

// A root-namespace link carries its owner's name as its alias (ifalias), since link names are
// limited to 15 characters.
std::string aliasOf(const std::string& link) {
  std::ifstream file("/sys/class/net/" + link + "/ifalias");
  std::string alias;
  std::getline(file, alias);
  return alias;
}

void killAll(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
}

}  // namespace

std::string ownPrefix() { return std::string(kNamePrefix) + std::to_string(::getpid()) + "-"; }

// Names of test/e2e/init ("picket-e2e-init-...") have no pid and are not ours.
std::optional<pid_t> harnessOwner(std::string_view name) {
  if (name.rfind(kNamePrefix, 0) != 0) return std::nullopt;
  name.remove_prefix(kNamePrefix.size());
  size_t digits = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9 || digits == name.size() || name[digits] != '-') {
    return std::nullopt;
  }
  return static_cast<pid_t>(std::atol(std::string(name.substr(0, digits)).c_str()));
}

Result<std::unique_ptr<NetworkNamespace>> NetworkNamespace::create(const std::string& name) {
  if (name.empty() || name.size() > 200 || name.find('/') != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument, "bad network namespace name \"" + name + "\"");
  }
  auto added = runToolOrFail({"ip", "netns", "add", name});
  if (!added) return makeError(std::move(added.error()));
  auto inode = inodeOf("/run/netns/" + name);
  std::unique_ptr<NetworkNamespace> netns(new NetworkNamespace(name, inode.value_or(0)));
  if (!inode) return makeError(ErrorCode::kIo, "/run/netns/" + name + " vanished");
  auto up = runToolOrFail({"ip", "-n", name, "link", "set", "lo", "up"});
  if (!up) return makeError(std::move(up.error()));
  return netns;
}

NetworkNamespace::~NetworkNamespace() {
  // A process left inside would keep the namespace (and its veth) alive after `ip netns del`.
  killAll(processesInNamespace(inode_));
  runTool({"ip", "netns", "del", name_});
}

std::string NetworkNamespace::path() const { return "/run/netns/" + name_; }

Status NetworkNamespace::enterCurrentThread() const {
  const int fd = ::open(path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return makeError(ErrorCode::kIo, "opening " + path() + ": " + std::strerror(errno));
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    return makeError(ErrorCode::kIo, "entering " + name_ + ": " + std::strerror(error));
  }
  return ok();
}

std::vector<pid_t> processesInNamespace(ino_t inode) {
  std::vector<pid_t> pids;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto ns = inodeOf(entry.path().string() + "/ns/net");
    if (ns && *ns == inode) pids.push_back(static_cast<pid_t>(std::atol(name.c_str())));
  }
  return pids;
}

std::string Leftovers::describe() const {
  std::string text;
  for (const std::string& name : namespaces) text += "network namespace " + name + "\n";
  for (const std::string& dir : scratch_dirs) text += "scratch dir " + dir + "\n";
  for (const std::string& link : links) text += "root-namespace link " + link + "\n";
  for (pid_t pid : processes) {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string command;
    std::getline(cmdline, command, '\0');
    text += "process " + std::to_string(pid) + " (" + command + ")\n";
  }
  return text;
}

namespace {

// Everything of runs whose owner satisfies `select`.
Leftovers collect(const std::function<bool(pid_t)>& select) {
  Leftovers found;
  std::error_code error;
  std::set<ino_t> inodes;
  for (const auto& entry : fs::directory_iterator("/run/netns", error)) {
    const std::string name = entry.path().filename().string();
    auto owner = harnessOwner(name);
    if (!owner || !select(*owner)) continue;
    found.namespaces.push_back(name);
    if (auto inode = inodeOf(entry.path().string())) inodes.insert(*inode);
  }
  for (const auto& entry : fs::directory_iterator("/sys/class/net", error)) {
    const std::string link = entry.path().filename().string();
    auto owner = harnessOwner(aliasOf(link));
    if (owner && select(*owner)) found.links.push_back(link);
  }
  for (ino_t inode : inodes) {
    for (pid_t pid : processesInNamespace(inode)) found.processes.push_back(pid);
  }
  for (const auto& entry : fs::directory_iterator("/tmp", error)) {
    auto owner = harnessOwner(entry.path().filename().string());
    if (owner && select(*owner)) found.scratch_dirs.push_back(entry.path().string());
  }
  return found;
}

}  // namespace

Leftovers findLeftovers(pid_t owner) {
  return collect([owner](pid_t pid) { return pid == owner; });
}

Leftovers sweepDeadRuns() {
  Leftovers dead = collect([](pid_t pid) { return !alive(pid); });
  killAll(dead.processes);
  for (const std::string& name : dead.namespaces) runTool({"ip", "netns", "del", name});
  for (const std::string& link : dead.links) runTool({"ip", "link", "del", link});
  std::error_code error;
  for (const std::string& dir : dead.scratch_dirs) fs::remove_all(dir, error);
  return dead;
}

}  // namespace picket::e2e
