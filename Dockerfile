# One image with every Picket program: picket-webhook, picket-operator, picket-init, picketctl.
# Envoy is not in it: the sidecar runs the upstream image (the chart's proxy.image).
#
#   docker build -t ghcr.io/picket/picket:0.1.0 .
#
# Both stages are Debian bookworm, so the runtime libraries are the very versions the build
# linked against.

# ---- build ---------------------------------------------------------------------------------------
FROM debian:bookworm AS build
# The build set of scripts/setup.sh. clang is among them because configuring the project needs it
# (test/fuzz builds its targets with clang), even though only the programs are built here.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config git curl openssl ca-certificates \
      libboost-dev libboost-system-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev \
      nlohmann-json3-dev libgoogle-glog-dev libgtest-dev libgmock-dev libbenchmark-dev \
      libexpected-dev libgoogle-perftools-dev \
      clang clang-format clang-tidy libclang-rt-14-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# -Werror is for development (make build, CI): an optimiser's false positive in a newer compiler
# must not stop an image build.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPICKET_WERROR=OFF \
 && cmake --build /build --target picket-webhook picket-operator picket-init picketctl \
 && strip /build/bin/picket-webhook /build/bin/picket-operator /build/bin/picket-init \
      /build/bin/picketctl

# ---- runtime -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# The shared libraries the programs link (libcurl4 brings its own), and iptables for picket-init:
# bookworm's package has both backends (iptables-nft-*, iptables-legacy-*, ip6tables-*).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libcurl4 libssl3 libyaml-cpp0.7 libgoogle-glog0v6 libtcmalloc-minimal4 iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/picket-webhook /build/bin/picket-operator /build/bin/picket-init \
     /build/bin/picketctl /usr/local/bin/
# Non-root by default. picket-init needs root for iptables: the injector gives its init container
# runAsUser 0 and the capabilities it needs (webhook/internal/sidecar.cc).
USER 65532:65532
# The chart names the program to run; alone, the image lists picketctl's commands.
CMD ["picketctl", "--help"]
