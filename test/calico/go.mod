// Pins the Calico release whose own CRD schemas the integration tests install, so the API server
// validates every policy Picket writes against Calico's schema. Nothing here is built: the module
// is only downloaded into the Go module cache (test/calico/crds prints where). go.sum pins its
// content, so the checksum database is not needed.
module picket.dev/testcalico

go 1.26.0

// Calico v3.31.0.
require github.com/projectcalico/calico v0.0.0-20251021213802-b1f3c43f8437
