#include "init/program.h"

#include <cstdlib>
#include <ostream>

#include "init/host_facts.h"
#include "init/nat_state.h"
#include "init/rules.h"

namespace picket::init {
namespace {

int report(std::ostream& err, const Error& error) {
  err << "picket-init: " << error.message << "\n";
  return error.code == ErrorCode::kForbidden ? kExitNoPrivilege : kExitFailed;
}

Result<std::vector<Family>> families(const Options& options, IptablesRunner& runner,
                                     std::ostream& err) {
  std::vector<Family> out = {Family::kIpv4};
  switch (options.ipv6) {
    case Ipv6Mode::kOn:
      out.push_back(Family::kIpv6);
      break;
    case Ipv6Mode::kOff:
      break;
    case Ipv6Mode::kAuto: {
      auto has_ipv6 = runner.hasGlobalIpv6Address();
      if (!has_ipv6) return makeError(has_ipv6.error());
      if (*has_ipv6) out.push_back(Family::kIpv6);
      err << "picket-init: --ipv6 auto: the pod has " << (*has_ipv6 ? "a" : "no")
          << " global IPv6 address, so IPv6 is " << (*has_ipv6 ? "on" : "off") << "\n";
      break;
    }
  }
  return out;
}

Result<Backend> chosenBackend(const Options& options, IptablesRunner& runner, std::ostream& err) {
  switch (options.backend) {
    case BackendMode::kLegacy:
      return Backend::kLegacy;
    case BackendMode::kNft:
      return Backend::kNft;
    case BackendMode::kAuto:
      break;
  }
  int legacy_rules = runner.countRules(Backend::kLegacy);
  int nft_rules = runner.countRules(Backend::kNft);
  Backend backend = chooseBackend(legacy_rules, nft_rules);
  err << "picket-init: --backend auto: " << legacy_rules << " legacy rules, " << nft_rules
      << " nft rules, so " << backendName(backend) << "\n";
  return backend;
}

int dryRun(const Options& options, IptablesRunner& runner, std::ostream& out, std::ostream& err) {
  auto chosen = families(options, runner, err);
  if (!chosen) return report(err, chosen.error());
  for (size_t i = 0; i < chosen->size(); ++i) {
    if (i > 0) out << "\n";
    out << rules(options, (*chosen)[i]);
  }
  return kExitOk;
}

int change(const Options& options, IptablesRunner& runner, std::ostream& err) {
  auto capabilities = runner.effectiveCapabilities();
  if (!capabilities) return report(err, capabilities.error());
  // NET_ADMIN first, alone: detecting the backend already runs the tools.
  if (!((*capabilities >> kCapNetAdmin) & 1u)) {
    return report(
        err, Error{ErrorCode::kForbidden, missingCapabilityMessage(Backend::kNft), {}, 0, 0, {}});
  }
  auto backend = chosenBackend(options, runner, err);
  if (!backend) return report(err, backend.error());
  if (auto status = requireCapabilities(*capabilities, *backend); !status) {
    return report(err, status.error());
  }
  auto chosen = families(options, runner, err);
  if (!chosen) return report(err, chosen.error());

  const bool cleanup = options.action == Action::kCleanup;
  for (Family family : *chosen) {
    auto saved = runner.saveNat(*backend, family);
    if (!saved) return report(err, saved.error());
    auto state = parseNatState(*saved);
    if (!state) return report(err, state.error());
    std::string text = cleanup ? cleanupRules(*state, family) : applyRules(options, family, *state);
    std::string tool = toolName(*backend, family, /*restore=*/true);
    if (text.empty()) {
      err << "picket-init: " << familyName(family) << ": no picket-init rules to remove\n";
      continue;
    }
    if (auto status = runner.restore(*backend, family, text); !status) {
      return report(err, status.error());
    }
    err << "picket-init: " << familyName(family) << ": " << (cleanup ? "removed" : "applied")
        << " the rules with " << tool << "\n";
  }
  return kExitOk;
}

}  // namespace

int runCommandLine(const std::vector<std::string>& args, IptablesRunner& runner, std::ostream& out,
                   std::ostream& err) {
  auto options = parseOptions(args);
  if (!options) {
    err << "picket-init: " << options.error().message << "\n"
        << "picket-init: nothing was changed; see picket-init --help\n";
    return kExitUsage;
  }
  switch (options->action) {
    case Action::kHelp:
      out << usage();
      return kExitOk;
    case Action::kDryRun:
      return dryRun(*options, runner, out, err);
    case Action::kApply:
    case Action::kCleanup:
      return change(*options, runner, err);
  }
  std::abort();  // every Action is handled above
}

}  // namespace picket::init
