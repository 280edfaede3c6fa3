// Command etcd is the upstream etcd server at the version the pinned Kubernetes release requires.
// `go install` of etcd is refused (its module uses replace directives), so it is linked here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
