// Pins the cert-manager release whose own CRD schemas (Certificate, Issuer, ClusterIssuer) the
// chart test chart.cert_manager installs, so the API server validates what the chart renders in
// certManager mode. Nothing here is built: the module is only downloaded into the Go module cache
// (test/certmanager/crds prints where). go.sum pins its content, so the checksum database is not
// needed.
module picket.dev/testcertmanager

go 1.26.0

require github.com/cert-manager/cert-manager v1.21.2
