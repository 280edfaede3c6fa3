# Shared by up, down and env (sourced, not run): where the control plane keeps its state and how
# to recognise and stop exactly the processes that `up` started.
#
# State dir layout (${PICKET_CLUSTER_DIR:-/tmp/picket-cluster}):
#   .picket-cluster      marker: only a folder holding it is ever removed
#   kubeconfig           admin kubeconfig (client certificate in group system:masters)
#   env                  KEY=VALUE lines: KUBECONFIG, PICKET_APISERVER_URL, PICKET_ETCD_ENDPOINT, ...
#   owner                who created it: "user", or the --owner given to up (ctest uses "ctest")
#   holders/NAME.PID     one per process (a ctest run) that ran `up --owner NAME` and has not
#                        run `down --owner NAME` yet
#   <component>.pid      pid of etcd, kube-apiserver, kube-controller-manager
#   logs/<component>.log their output
#   pki/, etcd/          certificates and keys, etcd's data

cluster_state=${PICKET_CLUSTER_DIR:-/tmp/picket-cluster}
cluster_state=${cluster_state%/}
# The lock sits beside the state dir, so it outlives `down` removing the dir.
cluster_lock="$cluster_state.lock"
# Stop order: clients of the API server first, etcd last.
cluster_components=(kube-controller-manager kube-apiserver etcd)

# Takes the state dir's lock (fd 8) for the rest of the calling script, waiting for another up or
# down of the same dir to finish.
cluster_lock() {
  mkdir -p "$(dirname "$cluster_state")"
  exec 8>"$cluster_lock"
  if ! flock -n 8; then
    echo "cluster: waiting for another up/down of $cluster_state..." >&2
    flock 8
  fi
}

# Prints the recorded pid of component $1 and succeeds only if that process still runs the
# component's program with this state dir on its command line, so a recycled pid or another
# cluster's process is never taken for ours.
cluster_live_pid() {
  local name=$1 pid argv0 cmdline
  [ -f "$cluster_state/$name.pid" ] || return 1
  pid=$(<"$cluster_state/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # A zombie or a gone process has an empty command line; both read as not running.
  cmdline=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  argv0=${cmdline%%$'\n'*}
  [ "${argv0##*/}" = "$name" ] || return 1
  [[ $cmdline == *"$cluster_state/"* ]] || return 1
  echo "$pid"
}

# Stops every component whose recorded pid is still ours, one after the other in stop order (the
# API server shuts down quickly only while etcd still answers): SIGTERM, then SIGKILL after 10 s.
cluster_stop_all() {
  local name pid deadline
  for name in "${cluster_components[@]}"; do
    pid=$(cluster_live_pid "$name") || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while pid=$(cluster_live_pid "$name"); do
      if ((SECONDS >= deadline)); then
        echo "cluster: $name ($pid) ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
}

# Records the process that ran `up --owner $1` (the caller's parent: the ctest run) as a holder.
cluster_add_holder() {
  mkdir -p "$cluster_state/holders"
  : >"$cluster_state/holders/$1.$PPID"
}

# Prints the pids of holders still running, forgetting those that are gone (a ctest run that was
# killed never runs its cleanup).
cluster_live_holders() {
  local file pid
  local -a live=()
  for file in "$cluster_state"/holders/*; do
    [ -e "$file" ] || continue
    pid=${file##*.}
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      live+=("$pid")
    else
      rm -f "$file"
    fi
  done
  echo "${live[*]}"
}

# Removes the state dir, refusing to touch a folder that `up` did not create.
cluster_remove_state() {
  [ -e "$cluster_state" ] || return 0
  if [ ! -f "$cluster_state/.picket-cluster" ] && [ -n "$(ls -A "$cluster_state")" ]; then
    echo "cluster: $cluster_state is not a Picket control plane state dir; not removing it" >&2
    return 1
  fi
  rm -rf "$cluster_state"
}

# Prints the value of KEY from the state dir's env file.
cluster_env_value() {
  sed -n "s/^$1=//p" "$cluster_state/env" 2>/dev/null | head -n1
}

# Succeeds if every component is running and the API server answers /readyz.
cluster_healthy() {
  local name url
  [ -f "$cluster_state/env" ] || return 1
  for name in "${cluster_components[@]}"; do
    cluster_live_pid "$name" >/dev/null || return 1
  done
  url=$(cluster_env_value PICKET_APISERVER_URL)
  [ -n "$url" ] || return 1
  cluster_curl "$url/readyz" >/dev/null
}

# curl as the cluster's admin, trusting the cluster's CA.
cluster_curl() {
  local pki="$cluster_state/pki"
  curl --silent --show-error --fail --max-time 5 --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"
}
