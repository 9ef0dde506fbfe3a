#!/usr/bin/env bash
# stack.sh starts and stops the local build stack the demo runs on. It installs nothing
# (scripts/install-stack.sh does); it only starts the real programs, all under one directory
# and all on 127.0.0.1:
#
#   stack.sh up     [DIR]   start (or complete) the stack; idempotent
#   stack.sh down   [DIR]   stop every process it started; leaves the files
#   stack.sh env    [DIR]   print the exports (DOCKER_CONFIG, REGISTRY, ...) for `eval`
#   stack.sh status [DIR]   what is running
#   stack.sh purge  [DIR]   down, then remove DIR
#
# DIR defaults to /tmp/refreshd-demo, the path plans/demo.yaml names. Under DIR:
#
#   stack.env              the ports chosen (registry 5000, nodes 12340/12341 unless busy)
#   pids/*.pid, logs/*.log one per process: registry, node0, node1
#   registry/ buildkit/    their state; buildkitd.toml marks the registry http/insecure
#   docker-config/         the DOCKER_CONFIG for buildx (builders live in it, not in ~/.docker)
#   constraints.git        bare repository; branches constraints-main and constraints-1-0
#                          seeded with older files
#   sample.git             the sample project (e2e/sample) as a repository with two branches:
#                          main (python-versions.txt lists every Python of the stack) and the
#                          release branch v1-0-test (only the first Python)
#   project/               a clone of sample.git at main: the workdir of instance demo/main
#                          (edit its index to simulate an upstream release, its
#                          python-versions.txt to add a Python; `up` never overwrites it)
#   project-v1-0/          a clone at v1-0-test: the workdir of instance demo/v1-0-test
#   plans/demo.yaml        plans/demo.yaml with this stack's DIR and ports filled in
#
# The busybox base (Debian's static x86-64 busybox) is pushed as REGISTRY/base/busybox:1 for
# linux/amd64 and linux/386: an amd64 kernel runs it under both, so the second node, pinned
# to linux/386, really executes RUN steps without emulation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# What plans/demo.yaml names; up renders DIR/plans/demo.yaml when the stack differs.
PLAN_DIR=/tmp/refreshd-demo
PLAN_REGISTRY_PORT=5000
PLAN_NODE0_PORT=12340
PLAN_NODE1_PORT=12341
# The ports tried first (tests set them to ports the kernel chose); a busy one moves up.
DEFAULT_DIR=$PLAN_DIR
DEFAULT_REGISTRY_PORT=${STACK_REGISTRY_PORT:-$PLAN_REGISTRY_PORT}
DEFAULT_NODE0_PORT=${STACK_NODE0_PORT:-$PLAN_NODE0_PORT}
DEFAULT_NODE1_PORT=${STACK_NODE1_PORT:-$PLAN_NODE1_PORT}
PYTHONS=${STACK_PYTHONS:-3.11 3.12}
BUILDER=demo_stack # used only to push the base; refreshd provisions the plan's own builder

log() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# port_busy PORT: true when something listens on 127.0.0.1:PORT (or any address).
port_busy() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# pick_port WANT [TAKEN...]: WANT if free, else the first free port above it that is not
# one of TAKEN (ports chosen for pieces not started yet); a bounded search.
pick_port() {
	local p=$1 i
	shift
	for ((i = 0; i < 200; i++)); do
		if ! port_busy "$p" && [[ " $* " != *" $p "* ]]; then
			echo "$p"
			return 0
		fi
		p=$((p + 1))
	done
	die "no free port in $1..$p"
}

# alive NAME: the recorded process NAME runs and is ours (its command line names DIR, so a
# recycled pid is never mistaken for it).
alive() {
	local f=$DIR/pids/$1.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DIR/"
}

# start NAME PORT CMD...: run CMD, which will listen on PORT, in its own session (so its pid
# is its process group; this script has no job control, so setsid execs without forking) with its
# output in logs/NAME.log. A port taken since it was chosen is an error, not a silent
# connection to someone else's server.
start() {
	local name=$1 port=$2
	shift 2
	port_busy "$port" && die "port $port (for $name) is taken by another program; see: ss -ltnp 'sport = :$port'"
	setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
	local pid=$! i cmdline
	echo "$pid" >"$DIR/pids/$name.pid"
	STARTED=("$name" "${STARTED[@]}")
	# Until the child has exec'd, its command line is this script's, which alive does not
	# take for NAME: wait (at most 5 s) for the exec or the child's end, or a slow fork reads
	# as "exited" and stop leaves the real process running (it then holds its port and lock).
	for ((i = 0; i < 100; i++)); do
		cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || break
		[ -z "$cmdline" ] && break # a zombie: it ended
		[[ $cmdline == *"$DIR/"* ]] && break
		sleep 0.05
	done
}
STARTED=() # what this call started, newest first

# wait_for NAME WHAT CMD...: retry CMD up to 150 times, 0.1 s apart (about 15 s plus the
# commands' own time), failing early if the process NAME died.
wait_for() {
	local name=$1 what=$2 i
	shift 2
	for ((i = 0; i < 150; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ! alive "$name"; then
			tail -n 20 "$DIR/logs/$name.log" >&2 || true
			die "$name exited while waiting for $what (log: $DIR/logs/$name.log)"
		fi
		sleep 0.1
	done
	tail -n 20 "$DIR/logs/$name.log" >&2 || true
	die "$what not ready after 15 s (log: $DIR/logs/$name.log)"
}

load_env() {
	REGISTRY_PORT=$DEFAULT_REGISTRY_PORT NODE0_PORT=$DEFAULT_NODE0_PORT NODE1_PORT=$DEFAULT_NODE1_PORT
	if [ -f "$DIR/stack.env" ]; then
		# shellcheck disable=SC1091
		. "$DIR/stack.env"
	fi
}

save_env() {
	cat >"$DIR/stack.env" <<EOF
REGISTRY_PORT=$REGISTRY_PORT
NODE0_PORT=$NODE0_PORT
NODE1_PORT=$NODE1_PORT
EOF
}

# choose_port NAME VAR [TAKEN...]: keep the port in VAR (recorded in stack.env, else the
# default) while NAME runs on it or while it is free; otherwise take the next free port not
# in TAKEN, and say so.
choose_port() {
	local name=$1 var=$2 def cur
	shift 2
	def=${!var}
	if alive "$name"; then
		return 0
	fi
	cur=$(pick_port "$def" "$@")
	if [ "$cur" != "$def" ]; then
		log "port $def is busy: $name uses $cur (recorded in $DIR/stack.env)"
	fi
	printf -v "$var" '%s' "$cur"
}

print_env() {
	cat <<EOF
export REFRESHD_DEMO_DIR=$DIR
export DOCKER_CONFIG=$DIR/docker-config
export REGISTRY=127.0.0.1:$REGISTRY_PORT
export BUILDKIT_NODE0=tcp://127.0.0.1:$NODE0_PORT
export BUILDKIT_NODE1=tcp://127.0.0.1:$NODE1_PORT
export CONSTRAINTS_REPO=$DIR/constraints.git
export REFRESHD_DEMO_PROJECT=$DIR/project
export REFRESHD_DEMO_PLANS=$DIR/plans
EOF
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "$c not found: run scripts/install-stack.sh (make install-stack)"
	done
}

up_registry() {
	if alive registry; then
		return 0
	fi
	mkdir -p "$DIR/registry/data"
	cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
	start registry "$REGISTRY_PORT" docker-registry serve "$DIR/registry/config.yml"
	wait_for registry "registry on 127.0.0.1:$REGISTRY_PORT" curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
	log "registry 127.0.0.1:$REGISTRY_PORT (pid $(cat "$DIR/pids/registry.pid"))"
}

# otel_socket NAME: the node's own OTEL trace socket (buildkitd's default,
# /run/buildkit/otel-grpc.sock, is shared by every buildkitd on the machine: concurrent
# stacks would remove it under each other). A unix socket path must fit in 108 bytes, so a
# long DIR falls back to a short path named by a hash of DIR.
otel_socket() {
	local p=$DIR/buildkit/$1.otel.sock
	if [ ${#p} -ge 100 ]; then
		p=/tmp/refreshd-otel-$(printf '%s' "$DIR" | sha256sum | cut -c1-16)-$1.sock
	fi
	echo "$p"
}

up_node() {
	local name=$1 port=$2
	if alive "$name"; then
		return 0
	fi
	mkdir -p "$DIR/buildkit/$name"
	start "$name" "$port" buildkitd --config "$DIR/buildkit/buildkitd.toml" --root "$DIR/buildkit/$name" \
		--addr "tcp://127.0.0.1:$port" --otel-socket-path "$(otel_socket "$name")"
	wait_for "$name" "buildkitd $name on 127.0.0.1:$port" buildctl --addr "tcp://127.0.0.1:$port" debug workers
	log "buildkitd $name tcp://127.0.0.1:$port (pid $(cat "$DIR/pids/$name.pid"))"
}

# up_base pushes REGISTRY/base/busybox:1 for linux/amd64 and linux/386 unless it is there.
up_base() {
	local ref=127.0.0.1:$REGISTRY_PORT/base/busybox:1
	if curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://127.0.0.1:$REGISTRY_PORT/v2/base/busybox/manifests/1"; then
		return 0
	fi
	local bb
	bb=$(command -v busybox)
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' || die "$bb is not statically linked: install busybox-static"
	mkdir -p "$DIR/base"
	cp "$bb" "$DIR/base/busybox"
	cat >"$DIR/base/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
EOF
	export DOCKER_CONFIG=$DIR/docker-config
	docker buildx rm "$BUILDER" >/dev/null 2>&1 || true
	docker buildx create --name "$BUILDER" --driver remote --node "${BUILDER}0" \
		--platform linux/amd64 "tcp://127.0.0.1:$NODE0_PORT" >/dev/null
	docker buildx create --name "$BUILDER" --append --node "${BUILDER}1" \
		--platform linux/386 "tcp://127.0.0.1:$NODE1_PORT" >/dev/null
	docker buildx build --builder "$BUILDER" --platform linux/amd64,linux/386 --progress quiet \
		-t "$ref" --push "$DIR/base" >/dev/null ||
		die "push the busybox base to $ref failed (logs: $DIR/logs/)"
	log "base image $ref (linux/amd64, linux/386)"
}

# up_constraints creates DIR/constraints.git with branch constraints-main holding the
# constraint files of the sample's pinned (not upgraded) resolution, dated 2024-01-01: the
# "older constraints" a first refresh upgrades.
up_constraints() {
	local repo=$DIR/constraints.git
	if [ -d "$repo" ]; then
		git --git-dir="$repo" rev-parse --verify -q refs/heads/constraints-main >/dev/null ||
			die "$repo exists but has no branch constraints-main"
		# A stack made before the release branch: give it one, from the seed.
		git --git-dir="$repo" rev-parse --verify -q refs/heads/constraints-1-0 >/dev/null ||
			git --git-dir="$repo" branch constraints-1-0 "$(git --git-dir="$repo" rev-list --max-parents=0 constraints-main | tail -1)"
		return 0
	fi
	local tmp py mode s=$ROOT/e2e/sample
	tmp=$(mktemp -d)
	git init -q --bare --initial-branch=constraints-main "$repo.tmp"
	git init -q --initial-branch=constraints-main "$tmp/clone"
	for py in $PYTHONS; do
		busybox sh "$s/scripts/resolve.sh" "$s/deps.txt" "$s/index/packages.txt" "$py" false >"$tmp/pins-$py"
		for mode in constraints constraints-source-providers constraints-no-providers; do
			GENERATED_AT=2024-01-01T00:00:00Z busybox sh "$s/scripts/constraints.sh" \
				"$mode" "$py" "$tmp/pins-$py" "$tmp/pins-$py" "$tmp/gen-$py"
		done
		cp "$tmp/gen-$py"/constraints*.txt "$tmp/clone/"
	done
	(
		cd "$tmp/clone"
		git add .
		git -c user.name=stack.sh -c user.email=stack@localhost commit -q \
			-m "Seed constraints for Python ${PYTHONS// /, } (pinned versions)"
		git push -q "$repo.tmp" constraints-main
		git push -q "$repo.tmp" constraints-main:constraints-1-0
	)
	mv "$repo.tmp" "$repo"
	rm -rf "$tmp"
	log "constraints repository $repo (constraints-main seeded)"
}

# up_sample creates DIR/sample.git from e2e/sample: main lists every Python of the stack in
# python-versions.txt (the list the demo plan reads from the tree), the release branch
# v1-0-test only the first one, as an older release line supports fewer.
up_sample() {
	local repo=$DIR/sample.git tmp py first=${PYTHONS%% *}
	[ ! -d "$repo" ] || return 0
	tmp=$(mktemp -d)
	git init -q --bare --initial-branch=main "$repo.tmp"
	cp -r "$ROOT/e2e/sample" "$tmp/tree"
	rm -rf "$tmp/tree/files"
	: >"$tmp/tree/python-versions.txt"
	for py in $PYTHONS; do
		echo "$py" >>"$tmp/tree/python-versions.txt"
	done
	(
		cd "$tmp/tree"
		git init -q --initial-branch=main
		git add .
		git -c user.name=stack.sh -c user.email=stack@localhost commit -q -m "sample project"
		git push -q "$repo.tmp" main
		git checkout -q -b v1-0-test
		echo "$first" >python-versions.txt
		# --allow-empty: with one Python (STACK_PYTHONS=3.11) the branch lists what main does.
		git -c user.name=stack.sh -c user.email=stack@localhost commit -q --allow-empty -am "v1-0-test: Python $first only"
		git push -q "$repo.tmp" v1-0-test
	)
	mv "$repo.tmp" "$repo"
	rm -rf "$tmp"
	log "sample repository $repo (main: ${PYTHONS// /, }; v1-0-test: $first)"
}

up_project() {
	up_sample
	if [ ! -d "$DIR/project" ]; then
		git clone -q --branch main "$DIR/sample.git" "$DIR/project"
		log "project $DIR/project (sample.git at main)"
	fi
	if [ ! -d "$DIR/project-v1-0" ]; then
		git clone -q --branch v1-0-test "$DIR/sample.git" "$DIR/project-v1-0"
		log "project $DIR/project-v1-0 (sample.git at v1-0-test)"
	fi
	# The shipped plan names the default DIR and ports; fill in this stack's.
	mkdir -p "$DIR/plans"
	if [ -f "$ROOT/plans/demo.yaml" ]; then
		sed -e "s#127\.0\.0\.1:$PLAN_REGISTRY_PORT\\b#127.0.0.1:$REGISTRY_PORT#g" \
			-e "s#tcp://127\.0\.0\.1:$PLAN_NODE0_PORT\\b#tcp://127.0.0.1:$NODE0_PORT#g" \
			-e "s#tcp://127\.0\.0\.1:$PLAN_NODE1_PORT\\b#tcp://127.0.0.1:$NODE1_PORT#g" \
			-e "s#$PLAN_DIR\\b#$DIR#g" \
			"$ROOT/plans/demo.yaml" >"$DIR/plans/demo.yaml.tmp"
		mv "$DIR/plans/demo.yaml.tmp" "$DIR/plans/demo.yaml"
	fi
}

cmd_up() {
	need docker-registry buildkitd buildctl docker git curl busybox runc ss setsid file
	docker buildx version >/dev/null 2>&1 || die "docker buildx plugin missing: run scripts/install-stack.sh"
	mkdir -p "$DIR/pids" "$DIR/logs" "$DIR/buildkit" "$DIR/docker-config"
	load_env
	choose_port registry REGISTRY_PORT
	choose_port node0 NODE0_PORT "$REGISTRY_PORT"
	choose_port node1 NODE1_PORT "$REGISTRY_PORT" "$NODE0_PORT"
	save_env
	cat >"$DIR/buildkit/buildkitd.toml" <<EOF
[registry."127.0.0.1:$REGISTRY_PORT"]
  http = true
  insecure = true
[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
EOF
	# On a failure half-way, stop what this call started: nothing is left behind.
	UP_DONE=0
	trap 'if [ "$UP_DONE" != 1 ] && [ ${#STARTED[@]} -gt 0 ]; then log "up failed: stopping ${STARTED[*]}"; for n in "${STARTED[@]}"; do stop "$n"; done; fi' EXIT
	up_registry
	up_node node0 "$NODE0_PORT"
	up_node node1 "$NODE1_PORT"
	up_base
	up_constraints
	up_project
	UP_DONE=1
	log "up: $DIR (eval \"\$(scripts/stack.sh env $DIR)\")"
}

# stop NAME: SIGTERM, then SIGKILL after 10 s, to the process group NAME leads (start ran it
# under setsid, so the group is exactly NAME and its children, e.g. buildkitd's runc); the pid
# file goes once the process is gone.
stop() {
	local name=$1 pid i
	[ -f "$DIR/pids/$name.pid" ] || return 0
	if alive "$name"; then
		pid=$(cat "$DIR/pids/$name.pid")
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$name" || break
			sleep 0.1
		done
		if alive "$name"; then
			log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				alive "$name" || break
				sleep 0.1
			done
		fi
		alive "$name" && die "$name (pid $pid) is still running"
		log "stopped $name (pid $pid)"
	fi
	rm -f "$DIR/pids/$name.pid"
}

cmd_down() {
	[ -d "$DIR" ] || return 0
	# Nodes first: a build in flight may still be talking to the registry.
	stop node1
	stop node0
	stop registry
	# buildkitd's runc containers die with it; a leftover would name DIR in its command line.
	local left
	left=$({ pgrep -f -- "$DIR/" || true; } | while read -r p; do
		grep -qF stack.sh "/proc/$p/cmdline" 2>/dev/null || echo "$p"
	done)
	[ -z "$left" ] || die "processes still use $DIR: $(echo "$left" | tr '\n' ' ')"
}

cmd_status() {
	load_env
	local name
	for name in registry node0 node1; do
		if alive "$name"; then
			printf '%-9s running (pid %s)\n' "$name" "$(cat "$DIR/pids/$name.pid")"
		else
			printf '%-9s stopped\n' "$name"
		fi
	done
}

[ $# -ge 1 ] || usage
cmd=$1
DIR=${2:-$DEFAULT_DIR}
case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
DIR=${DIR%/}
case $cmd in
up) cmd_up ;;
down) cmd_down ;;
env)
	[ -f "$DIR/stack.env" ] || die "no stack in $DIR: run stack.sh up $DIR"
	load_env
	print_env
	;;
status) cmd_status ;;
purge)
	cmd_down
	rm -rf "$DIR"
	;;
*) usage ;;
esac
