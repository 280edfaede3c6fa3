#pragma once

// MutatingWebhookConfigurations for tests of what picket-operator keeps in them (the caBundle).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace picket::test_support {

// A MutatingWebhookConfiguration `name` with one webhook per entry of `webhook_names`, each
// pointing at the Service `service_namespace`/`service` (port 443, path /mutate) for pod
// creations, and none of them ever called: their namespaceSelector and objectSelector ask for the
// label picket.dev/never-<service_namespace>=true, which nothing carries, with failurePolicy
// Ignore and a 1 s timeout, so tests that create pods meanwhile are not held up by it. No
// caBundle: that is the operator's to set. (The webhook a test's API server does call is
// integration::podWebhookConfiguration, test/integration/webhook_fixture.h.)
nlohmann::json uncallableWebhookConfiguration(
    const std::string& name, const std::string& service_namespace, const std::string& service,
    const std::vector<std::string>& webhook_names = {"inject.picket.dev"});

}  // namespace picket::test_support
