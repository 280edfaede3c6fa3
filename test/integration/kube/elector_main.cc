// A kube::LeaderElector in a process of its own, for the leader-election integration test. It
// campaigns for a Lease and prints one line on stdout for each change:
//   leading                 this process became the leader
//   following <identity>    another candidate holds the lease
//   stopped leading         it lost or gave up the lease
//   exited                  after SIGTERM or SIGINT, once the lease is released
//
// Usage: kube_elector_main --kubeconfig PATH --namespace NS --lease NAME --identity ID
//                          [--lease-duration-s 3] [--renew-deadline-ms 2000]
//                          [--retry-period-ms 500]

#include <glog/logging.h>
#include <signal.h>

#include <iostream>
#include <map>
#include <mutex>
#include <string>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/curl_transport.h"
#include "kube/leader_elector.h"

namespace {

std::mutex output_mutex;

// One line, flushed at once: the test reads it while the process runs.
void say(const std::string& line) {
  std::lock_guard lock(output_mutex);
  std::cout << line << std::endl;
}

int usage(const std::string& problem) {
  std::cerr << "kube_elector_main: " << problem
            << "\nusage: kube_elector_main --kubeconfig PATH --namespace NS --lease NAME "
               "--identity ID [--lease-duration-s N] [--renew-deadline-ms N] "
               "[--retry-period-ms N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  std::map<std::string, std::string> flags = {
      {"--kubeconfig", ""},        {"--namespace", ""},         {"--lease", ""},
      {"--identity", ""},          {"--lease-duration-s", "3"}, {"--renew-deadline-ms", "2000"},
      {"--retry-period-ms", "500"}};
  for (int i = 1; i < argc; i += 2) {
    const auto flag = flags.find(argv[i]);
    if (flag == flags.end()) return usage(std::string("unknown argument ") + argv[i]);
    if (i + 1 >= argc) return usage(std::string(argv[i]) + " needs a value");
    flag->second = argv[i + 1];
  }
  for (const char* required : {"--kubeconfig", "--namespace", "--lease", "--identity"}) {
    if (flags[required].empty()) return usage(std::string(required) + " is required");
  }
  int lease_seconds = 0;
  int renew_ms = 0;
  int retry_ms = 0;
  try {
    lease_seconds = std::stoi(flags["--lease-duration-s"]);
    renew_ms = std::stoi(flags["--renew-deadline-ms"]);
    retry_ms = std::stoi(flags["--retry-period-ms"]);
  } catch (const std::exception&) {
    return usage("durations must be whole numbers");
  }

  // Blocked before any thread starts, so every thread inherits the mask and sigwait() below is
  // the only receiver.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = picket::kube::loadKubeconfig(flags["--kubeconfig"]);
  if (!config) {
    std::cerr << "kube_elector_main: " << config.error().describe() << "\n";
    return 1;
  }
  auto transport = picket::kube::CurlTransport::create(*config);
  if (!transport) {
    std::cerr << "kube_elector_main: " << transport.error().describe() << "\n";
    return 1;
  }
  picket::kube::Client client(*transport);

  const std::string identity = flags["--identity"];
  picket::kube::LeaderElectionConfig election;
  election.lease_namespace = flags["--namespace"];
  election.lease_name = flags["--lease"];
  election.identity = identity;
  election.lease_duration = std::chrono::seconds(lease_seconds);
  election.renew_deadline = std::chrono::milliseconds(renew_ms);
  election.retry_period = std::chrono::milliseconds(retry_ms);
  election.on_started_leading = [] { say("leading"); };
  election.on_stopped_leading = [] { say("stopped leading"); };
  election.on_new_leader = [identity](const std::string& holder) {
    if (!holder.empty() && holder != identity) say("following " + holder);
  };
  auto elector = picket::kube::LeaderElector::create(
      picket::kube::clientLeaseStore(client, election.lease_namespace, election.lease_name),
      picket::kube::realClock(), election);
  if (!elector) {
    std::cerr << "kube_elector_main: " << elector.error().describe() << "\n";
    return 1;
  }
  (*elector)->start();

  int received = 0;
  sigwait(&stop_signals, &received);
  (*elector)->stop();
  say("exited");
  return 0;
}
