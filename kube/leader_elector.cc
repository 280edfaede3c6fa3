#include "kube/leader_elector.h"

#include <glog/logging.h>

#include <algorithm>
#include <random>
#include <utility>

namespace picket::kube {

namespace {

tl::unexpected<Error> leaseFieldError(std::string_view field, std::string_view why) {
  return makeError(ErrorCode::kParse, "Lease spec." + std::string(field) + " " + std::string(why),
                   "spec." + std::string(field));
}

// Reads an optional integer field of the spec.
Status readInt(const json& spec, std::string_view field, int& out) {
  const auto it = spec.find(field);
  if (it == spec.end() || it->is_null()) {
    return ok();
  }
  if (!it->is_number_integer()) {
    return leaseFieldError(field, "is not an integer: " + it->dump());
  }
  out = it->get<int>();
  return ok();
}

// Reads an optional MicroTime field of the spec.
Status readTime(const json& spec, std::string_view field, std::optional<SystemTime>& out) {
  const auto it = spec.find(field);
  if (it == spec.end() || it->is_null()) {
    return ok();
  }
  if (!it->is_string()) {
    return leaseFieldError(field, "is not a time string: " + it->dump());
  }
  Result<SystemTime> parsed = parseMicroTime(it->get_ref<const std::string&>());
  if (!parsed) {
    return leaseFieldError(field, parsed.error().message);
  }
  out = *parsed;
  return ok();
}

}  // namespace

Result<LeaseRecord> parseLeaseRecord(const json& lease) {
  LeaseRecord record;
  if (!lease.is_object()) {
    return makeError(ErrorCode::kParse, "Lease is not a JSON object");
  }
  const auto spec = lease.find("spec");
  if (spec == lease.end() || spec->is_null()) {
    return record;
  }
  if (!spec->is_object()) {
    return makeError(ErrorCode::kParse, "Lease spec is not an object", "spec");
  }
  const auto holder = spec->find("holderIdentity");
  if (holder != spec->end() && !holder->is_null()) {
    if (!holder->is_string()) {
      return leaseFieldError("holderIdentity", "is not a string: " + holder->dump());
    }
    record.holder_identity = holder->get<std::string>();
  }
  for (Status status : {readInt(*spec, "leaseDurationSeconds", record.lease_duration_seconds),
                        readInt(*spec, "leaseTransitions", record.lease_transitions),
                        readTime(*spec, "acquireTime", record.acquire_time),
                        readTime(*spec, "renewTime", record.renew_time)}) {
    if (!status) {
      return makeError(status.error());
    }
  }
  return record;
}

json leaseSpec(const LeaseRecord& record) {
  json spec = {{"holderIdentity", record.holder_identity},
               {"leaseDurationSeconds", record.lease_duration_seconds},
               {"leaseTransitions", record.lease_transitions}};
  if (record.acquire_time) {
    spec["acquireTime"] = formatMicroTime(*record.acquire_time);
  }
  if (record.renew_time) {
    spec["renewTime"] = formatMicroTime(*record.renew_time);
  }
  return spec;
}

const char* leaderActionName(LeaderAction action) {
  switch (action) {
    case LeaderAction::kCreate:
      return "create";
    case LeaderAction::kAcquire:
      return "acquire";
    case LeaderAction::kRenew:
      return "renew";
    case LeaderAction::kFollow:
      return "follow";
  }
  return "unknown";
}

LeaderDecision decideLeadership(const std::optional<LeaseRecord>& observed, SteadyTime observed_at,
                                SteadyTime now, SystemTime wall_now, std::string_view identity,
                                std::chrono::seconds lease_duration) {
  const int duration_seconds = static_cast<int>(lease_duration.count());
  if (!observed) {
    return {LeaderAction::kCreate,
            LeaseRecord{std::string(identity), duration_seconds, wall_now, wall_now, 0}};
  }
  if (!observed->holder_identity.empty() && observed->holder_identity == identity) {
    LeaseRecord renewed = *observed;
    renewed.lease_duration_seconds = duration_seconds;
    renewed.renew_time = wall_now;
    if (!renewed.acquire_time) {
      renewed.acquire_time = wall_now;
    }
    return {LeaderAction::kRenew, renewed};
  }
  const std::chrono::seconds observed_duration =
      observed->lease_duration_seconds > 0 ? std::chrono::seconds(observed->lease_duration_seconds)
                                           : lease_duration;
  const bool expired = observed_at + observed_duration <= now;
  if (observed->holder_identity.empty() || expired) {
    return {LeaderAction::kAcquire, LeaseRecord{std::string(identity), duration_seconds, wall_now,
                                                wall_now, observed->lease_transitions + 1}};
  }
  return {LeaderAction::kFollow, *observed};
}

LeaseStore clientLeaseStore(Client& client, const std::string& ns, const std::string& name) {
  LeaseStore store;
  store.get = [&client, ns, name] { return client.get(resources::kLeases, ns, name); };
  store.create = [&client, ns](const json& lease) {
    return client.create(resources::kLeases, ns, lease);
  };
  store.update = [&client, ns](const json& lease) {
    return client.update(resources::kLeases, ns, lease);
  };
  return store;
}

Status validateLeaderElectionConfig(const LeaderElectionConfig& config) {
  if (config.lease_namespace.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "leader election needs a lease namespace",
                     "lease_namespace");
  }
  if (config.lease_name.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "leader election needs a lease name",
                     "lease_name");
  }
  if (config.identity.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "leader election needs a candidate identity",
                     "identity");
  }
  if (config.retry_period <= std::chrono::milliseconds::zero()) {
    return makeError(ErrorCode::kInvalidArgument, "retry period must be positive", "retry_period");
  }
  if (config.renew_deadline <= config.retry_period) {
    return makeError(ErrorCode::kInvalidArgument,
                     "renew deadline (" + std::to_string(config.renew_deadline.count()) +
                         " ms) must be longer than the retry period (" +
                         std::to_string(config.retry_period.count()) + " ms)",
                     "renew_deadline");
  }
  if (config.lease_duration <= config.renew_deadline) {
    return makeError(ErrorCode::kInvalidArgument,
                     "lease duration (" + std::to_string(config.lease_duration.count()) +
                         " s) must be longer than the renew deadline (" +
                         std::to_string(config.renew_deadline.count()) + " ms)",
                     "lease_duration");
  }
  return ok();
}

Result<std::unique_ptr<LeaderElector>> LeaderElector::create(LeaseStore store, Clock& clock,
                                                             LeaderElectionConfig config) {
  if (Status valid = validateLeaderElectionConfig(config); !valid) {
    return makeError(valid.error());
  }
  if (!store.get || !store.create || !store.update) {
    return makeError(ErrorCode::kInvalidArgument, "lease store lacks get, create or update");
  }
  return std::unique_ptr<LeaderElector>(
      new LeaderElector(std::move(store), clock, std::move(config)));
}

LeaderElector::LeaderElector(LeaseStore store, Clock& clock, LeaderElectionConfig config)
    : store_(std::move(store)), clock_(clock), config_(std::move(config)) {
  if (config_.random) {
    random_ = config_.random;
  } else {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    random_ = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    CHECK(!started_) << "leader elector " << config_.identity << ": start() called twice";
    started_ = true;
  }
  thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
}

void LeaderElector::stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

bool LeaderElector::isLeader() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return leading_;
}

std::string LeaderElector::leader() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return leader_;
}

void LeaderElector::observe(const std::optional<LeaseRecord>& record, SteadyTime now) {
  if (record != observed_record_) {
    observed_record_ = record;
    observed_at_ = now;
  }
  const std::string holder = record ? record->holder_identity : std::string();
  bool changed = false;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (holder != leader_) {
      leader_ = holder;
      changed = true;
    }
  }
  if (changed && !holder.empty()) {
    LOG(INFO) << "lease " << config_.lease_namespace << "/" << config_.lease_name << ": new leader "
              << holder;
    if (config_.on_new_leader) {
      config_.on_new_leader(holder);
    }
  }
}

bool LeaderElector::tryAcquireOrRenew() {
  std::lock_guard<std::mutex> attempt(attempt_mutex_);
  const std::string lease_name = config_.lease_namespace + "/" + config_.lease_name;
  Result<json> current = store_.get();
  std::optional<LeaseRecord> record;
  if (current) {
    Result<LeaseRecord> parsed = parseLeaseRecord(*current);
    if (!parsed) {
      LOG(ERROR) << "lease " << lease_name << " cannot be read: " << parsed.error().describe();
      return false;
    }
    record = *parsed;
    lease_object_ = std::move(*current);
  } else if (current.error().code == ErrorCode::kNotFound) {
    lease_object_.reset();
  } else {
    LOG(WARNING) << "lease " << lease_name << ": get failed: " << current.error().describe();
    return false;
  }
  const SteadyTime now = clock_.now();
  observe(record, now);

  const LeaderDecision decision =
      decideLeadership(observed_record_, observed_at_, now, clock_.systemNow(), config_.identity,
                       config_.lease_duration);
  if (decision.action == LeaderAction::kFollow) {
    return false;
  }
  Result<json> written = writeLocked(decision.record, now);
  if (!written) {
    const ErrorCode code = written.error().code;
    if (code == ErrorCode::kConflict || code == ErrorCode::kAlreadyExists) {
      LOG(INFO) << "lease " << lease_name << ": lost a race to "
                << leaderActionName(decision.action) << " it";
    } else {
      LOG(WARNING) << "lease " << lease_name << ": " << leaderActionName(decision.action)
                   << " failed: " << written.error().describe();
    }
    return false;
  }
  if (decision.action != LeaderAction::kRenew) {
    LOG(INFO) << "lease " << lease_name << ": " << config_.identity << " acquired it ("
              << leaderActionName(decision.action) << ")";
  }
  return true;
}

Result<json> LeaderElector::writeLocked(const LeaseRecord& record, SteadyTime now) {
  Result<json> written = [&] {
    if (!lease_object_) {
      return store_.create(
          {{"apiVersion", resources::kLeases.apiVersion()},
           {"kind", resources::kLeases.kind},
           {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
           {"spec", leaseSpec(record)}});
    }
    // Written over the object as read, so its resourceVersion makes a racing write fail and
    // fields we do not manage (labels, newer spec fields) survive.
    json lease = *lease_object_;
    lease["spec"].update(leaseSpec(record));
    return store_.update(lease);
  }();
  if (!written) {
    return written;
  }
  // What the server stored (times at microsecond precision) is what the next read will show;
  // observing it now keeps that read from counting as a change.
  Result<LeaseRecord> stored = parseLeaseRecord(*written);
  observe(stored ? *stored : record, now);
  lease_object_ = *written;
  return written;
}

bool LeaderElector::release() {
  std::lock_guard<std::mutex> attempt(attempt_mutex_);
  if (!observed_record_ || observed_record_->holder_identity != config_.identity ||
      !lease_object_) {
    return false;
  }
  const SystemTime wall_now = clock_.systemNow();
  const LeaseRecord released{"", 1, wall_now, wall_now, observed_record_->lease_transitions};
  Result<json> written = writeLocked(released, clock_.now());
  if (!written) {
    LOG(WARNING) << "lease " << config_.lease_namespace << "/" << config_.lease_name
                 << ": release failed: " << written.error().describe();
    return false;
  }
  LOG(INFO) << "lease " << config_.lease_namespace << "/" << config_.lease_name << ": released by "
            << config_.identity;
  return true;
}

bool LeaderElector::waitFor(std::chrono::nanoseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  const SteadyTime deadline =
      clock_.now() + std::chrono::duration_cast<SteadyTime::duration>(delay);
  return !clock_.waitUntil(lock, cv_, deadline, [&] { return stopping_; });
}

void LeaderElector::setLeading(bool leading) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    leading_ = leading;
  }
  const auto& callback = leading ? config_.on_started_leading : config_.on_stopped_leading;
  if (callback) {
    callback();
  }
}

void LeaderElector::run(const std::stop_token& stop) {
  SteadyTime last_renewal{};
  bool leading = false;
  while (!stop.stop_requested()) {
    if (!leading) {
      if (tryAcquireOrRenew()) {
        leading = true;
        last_renewal = clock_.now();
        setLeading(true);
        continue;
      }
      // Jitter, as client-go's 1.2 factor, spreads candidates that start together.
      const double jitter = 1.0 + 1.2 * std::clamp(random_(), 0.0, 1.0);
      if (!waitFor(std::chrono::duration_cast<std::chrono::nanoseconds>(config_.retry_period *
                                                                        jitter))) {
        break;
      }
      continue;
    }
    if (!waitFor(config_.retry_period)) {
      break;
    }
    if (tryAcquireOrRenew()) {
      last_renewal = clock_.now();
      continue;
    }
    // Seeing another holder means someone took the lease over: stop at once rather than wait for
    // the deadline, so two leaders never act together longer than necessary.
    const std::string holder = leader();
    if (holder != config_.identity) {
      LOG(WARNING) << "lease " << config_.lease_namespace << "/" << config_.lease_name
                   << ": now held by " << (holder.empty() ? "nobody" : holder) << "; stepping down";
      leading = false;
      setLeading(false);
    } else if (clock_.now() - last_renewal >= config_.renew_deadline) {
      LOG(WARNING) << "lease " << config_.lease_namespace << "/" << config_.lease_name
                   << ": no renewal succeeded within the renew deadline; stepping down";
      leading = false;
      setLeading(false);
    }
  }
  if (leading) {
    release();
    setLeading(false);
  }
}

}  // namespace picket::kube
