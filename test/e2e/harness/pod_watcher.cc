#include "test/e2e/harness/pod_watcher.h"

namespace picket::e2e {
namespace {

using nlohmann::json;

std::string nameOf(const json& pod) { return pod["metadata"].value("name", ""); }

}  // namespace

Result<std::unique_ptr<PodWatcher>> PodWatcher::start(PodRunner& runner, kube::Client& client,
                                                      std::string ns, std::string label_selector,
                                                      PodRunner::RunOptions options) {
  std::unique_ptr<PodWatcher> watcher(
      new PodWatcher(runner, client, std::move(ns), std::move(label_selector), std::move(options)));
  PodWatcher* raw = watcher.get();
  // Readiness changes on the pods' prober threads; they wake waitReady().
  std::function<void()> theirs = std::move(raw->options_.on_readiness_change);
  raw->options_.on_readiness_change = [raw, theirs] {
    if (theirs) theirs();
    std::lock_guard lock(raw->mutex_);
    raw->changed_.notify_all();
  };
  watcher->thread_ = std::jthread([raw](const std::stop_token& stop) { raw->loop(stop); });
  std::unique_lock lock(watcher->mutex_);
  watcher->changed_.wait(lock, [&] { return watcher->listed_; });
  return watcher;
}

PodWatcher::~PodWatcher() {
  thread_.request_stop();
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PodWatcher::loop(const std::stop_token& stop) {
  kube::ListOptions list_options;
  list_options.label_selector = label_selector_;
  std::string version;
  while (!stop.stop_requested()) {
    if (version.empty()) {
      auto listed = client_.list(kube::resources::kPods, ns_, list_options);
      if (listed) {
        version = listed->resource_version;
        for (const json& pod : listed->items) handle(pod, false);
        // Pods that went away while no watch ran.
        std::vector<std::string> gone;
        {
          std::lock_guard lock(mutex_);
          for (const auto& [name, pod] : pods_) {
            bool present = false;
            for (const json& item : listed->items) present = present || nameOf(item) == name;
            if (!present) gone.push_back(name);
          }
        }
        for (const std::string& name : gone) stopPod(name);
      } else {
        std::lock_guard lock(mutex_);
        failures_.push_back("listing pods: " + listed.error().describe());
      }
      {
        std::lock_guard lock(mutex_);
        listed_ = true;
      }
      changed_.notify_all();
      if (!listed) {
        // A failed list is retried after a pause; the stop token ends the pause early.
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
        continue;
      }
    }
    kube::WatchOptions watch;
    watch.resource_version = version;
    watch.label_selector = label_selector_;
    watch.timeout_seconds = 60;
    watch.stop = stop;
    auto ended =
        client_.watch(kube::resources::kPods, ns_, watch, [&](const kube::WatchEvent& event) {
          if (event.type != kube::WatchEventType::kBookmark) {
            handle(event.object, event.type == kube::WatchEventType::kDeleted);
          }
          version = event.object["metadata"].value("resourceVersion", version);
          return !stop.stop_requested();
        });
    if (!ended) {
      if (ended.error().code != ErrorCode::kGone) {
        std::lock_guard lock(mutex_);
        failures_.push_back("watching pods: " + ended.error().describe());
      }
      version.clear();
    } else {
      version = ended->resource_version.empty() ? version : ended->resource_version;
    }
  }
  // Stopped here, on the thread that started them.
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, pod] : pods_) names.push_back(name);
  }
  for (const std::string& name : names) stopPod(name);
}

void PodWatcher::handle(const json& pod, bool deleted) {
  const std::string name = nameOf(pod);
  const json& metadata = pod["metadata"];
  const std::string uid = metadata.value("uid", "");
  bool running;
  {
    std::lock_guard lock(mutex_);
    running = pods_.count(name) > 0;
    if (!running && failed_.count(uid) > 0) return;
  }
  if (deleted || metadata.contains("deletionTimestamp")) {
    if (running) stopPod(name);
    if (!deleted) {
      // Kubelet's final word: the containers are gone, remove the pod now.
      kube::DeleteOptions now;
      now.grace_period_seconds = 0;
      now.precondition_uid = uid;
      client_.remove(kube::resources::kPods, ns_, name, now);
    }
    return;
  }
  if (running) return;
  const json& spec = pod["spec"];
  const std::string node = spec.value("nodeName", "");
  const std::string phase = pod.contains("status") ? pod["status"].value("phase", "") : "";
  if ((!node.empty() && node != runner_.nodeName()) || phase == "Succeeded" || phase == "Failed") {
    return;
  }
  auto started = runner_.run(pod, options_);
  std::lock_guard lock(mutex_);
  if (started) {
    pods_[name] = *started;
  } else {
    failed_[uid] = started.error().message;
    failures_.push_back("pod " + name + ": " + started.error().describe());
  }
  changed_.notify_all();
}

void PodWatcher::stopPod(const std::string& name) {
  RunningPod* pod = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = pods_.find(name);
    if (it == pods_.end()) return;
    pod = it->second;
    pods_.erase(it);
  }
  runner_.stop(pod);
  changed_.notify_all();
}

std::map<std::string, RunningPod*> PodWatcher::pods() const {
  std::lock_guard lock(mutex_);
  return pods_;
}

bool PodWatcher::waitReady(size_t count, std::chrono::milliseconds timeout) {
  // A pod is destroyed only after stopPod() took it out of pods_ under the lock, so every pod
  // read here under the lock is alive.
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    if (pods_.size() != count) return false;
    for (const auto& [name, pod] : pods_) {
      if (!pod->ready()) return false;
    }
    return true;
  });
}

std::vector<std::string> PodWatcher::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

}  // namespace picket::e2e
