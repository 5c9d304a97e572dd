# shellcheck shell=bash
# Helpers for the interop tests: a private dockerd, buildgate instances,
# assertions that count passes and failures, and cleanup that always runs.

PASSES=0
FAILS=0
FAILED_NAMES=()
BG_PIDS=()        # buildgate pids we started (stopped with SIGTERM, exit code checked)
DOCKERD_PID=""
D=""              # the run's temp dir (short: unix socket paths are limited)

log() { printf '%s\n' "$*" >&2; }

pass() { PASSES=$((PASSES + 1)); printf 'PASS %s\n' "$1"; }
fail() { FAILS=$((FAILS + 1)); FAILED_NAMES+=("$1"); printf 'FAIL %s: %s\n' "$1" "$2"; }

# need_pkgs PKG... : install Debian packages that are missing.
need_pkgs() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# run_client NAME OUTFILE ARGS... : run bgclient, keep its output in OUTFILE, return its status.
run_client() {
	local out="$1"; shift
	timeout "${CLIENT_TIMEOUT:-180}" "$BGCLIENT" "$@" >"$out" 2>&1
}

# expect_ok NAME ARGS... : client must exit 0; optional grep pattern via EXPECT_RE.
expect_ok() {
	local name="$1"; shift
	local out="$D/out.$(echo "$name" | tr -c 'A-Za-z0-9._-' '_')"
	local rc=0
	run_client "$out" "$@" || rc=$?
	if ((rc == 0)); then
		if [[ -n "${EXPECT_RE:-}" ]] && ! grep -Eq "$EXPECT_RE" "$out"; then
			fail "$name" "output lacks /$EXPECT_RE/: $(tail -n 3 "$out" | tr '\n' ' ')"
			return 1
		fi
		pass "$name"
		return 0
	fi
	fail "$name" "exit $rc: $(tail -n 3 "$out" | tr '\n' ' ')"
	return 1
}

# expect_err NAME CODE ARGS... : client must fail with gRPC code CODE (e.g. PermissionDenied).
expect_err() {
	local name="$1" code="$2"; shift 2
	local out="$D/out.$(echo "$name" | tr -c 'A-Za-z0-9._-' '_')"
	if run_client "$out" "$@"; then
		fail "$name" "succeeded, expected code=$code: $(tail -n 2 "$out" | tr '\n' ' ')"
		return 1
	fi
	if grep -Eq "code=$code" "$out"; then
		pass "$name"
		return 0
	fi
	fail "$name" "expected code=$code, got: $(tail -n 3 "$out" | tr '\n' ' ')"
	return 1
}

# check NAME COMMAND... : a shell assertion.
check() {
	local name="$1"; shift
	if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi
}

wait_socket() { # PATH SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ -S "$1" ]] && return 0
		sleep 0.1
	done
	return 1
}

start_dockerd() {
	mkdir -p "$D/data" "$D/exec"
	dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
		-H "unix://$D/docker.sock" --iptables=false --bridge=none --ip-masq=false \
		>"$D/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	if ! wait_socket "$D/docker.sock" 30; then
		log "dockerd did not start:"; tail -n 20 "$D/dockerd.log" >&2
		return 1
	fi
	# the socket exists slightly before the API answers
	local i
	for ((i = 0; i < 100; i++)); do
		curl -fsS --unix-socket "$D/docker.sock" http://d/_ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "dockerd does not answer /_ping"; return 1
}

stop_dockerd() {
	[[ -n "$DOCKERD_PID" ]] || return 0
	kill -TERM "$DOCKERD_PID" 2>/dev/null
	local i
	for ((i = 0; i < 150; i++)); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$DOCKERD_PID" 2>/dev/null
	wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=""
}

# start_buildgate NAME ARGS... : start $BUILDGATE_BIN, its stderr in $D/NAME.err, pid in BG_PID_<NAME>.
# Waits for the first unix:// --listen socket.
start_buildgate() {
	local name="$1"; shift
	local sock="" a prev=""
	for a in "$@"; do
		[[ "$prev" == "--listen" && "$a" == unix://* ]] && sock="${a#unix://}" && break
		prev="$a"
	done
	"$BUILDGATE_BIN" "$@" >"$D/$name.out" 2>"$D/$name.err" &
	local pid=$!
	BG_PIDS+=("$pid:$name")
	printf -v "BG_PID_$name" '%s' "$pid"
	if [[ -n "$sock" ]] && ! wait_socket "$sock" 10; then
		log "buildgate $name did not create $sock:"; tail -n 20 "$D/$name.err" >&2
		return 1
	fi
	kill -0 "$pid" 2>/dev/null
}

# stop_buildgate NAME : SIGTERM, wait, check exit 0 and no sanitizer reports.
stop_buildgate() {
	local name="$1" entry pid="" rest=() rc i
	for entry in "${BG_PIDS[@]}"; do
		if [[ "${entry#*:}" == "$name" ]]; then pid="${entry%%:*}"; else rest+=("$entry"); fi
	done
	BG_PIDS=("${rest[@]}")
	[[ -n "$pid" ]] || return 0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"; rc=$?
		fail "buildgate-$name-alive" "buildgate $name had already exited (status $rc): $(tail -n 5 "$D/$name.err" | tr '\n' ' ')"
		return 1
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"; wait "$pid" 2>/dev/null
		fail "buildgate-$name-exit" "did not exit within 15 s of SIGTERM"
		return 1
	fi
	wait "$pid"; rc=$?
	if grep -Eq "ERROR: AddressSanitizer|LeakSanitizer|runtime error:" "$D/$name.err"; then
		fail "buildgate-$name-sanitizer" "$(grep -E -m3 "ERROR: AddressSanitizer|LeakSanitizer|runtime error:" "$D/$name.err" | tr '\n' ' ') (see $name.err)"
		cp "$D/$name.err" "${KEEP_LOGS:-/tmp}/buildgate-$name.err.$$" 2>/dev/null
		return 1
	fi
	if ((rc != 0)); then
		fail "buildgate-$name-exit" "exit status $rc after SIGTERM: $(tail -n 3 "$D/$name.err" | tr '\n' ' ')"
		return 1
	fi
	pass "buildgate-$name-exit"
}

# fd and RSS of a process
proc_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# backend_conns PID SOCKET-PATH: how many connections process PID holds to
# the unix socket at SOCKET-PATH (the server ends whose peer is one of PID's sockets).
backend_conns() {
	local pid="$1" path="$2"
	local mine; mine=" $(ls -l "/proc/$pid/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ') "
	ss -xn 2>/dev/null | awk -v p="$path" '$5 == p {print $8}' | while read -r peer; do
		[[ "$mine" == *" $peer "* ]] && echo x
	done | wc -l
}
proc_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

cleanup() {
	local entry pid
	for entry in "${BG_PIDS[@]}"; do
		pid="${entry%%:*}"
		kill -TERM "$pid" 2>/dev/null
	done
	for entry in "${BG_PIDS[@]}"; do
		pid="${entry%%:*}"
		timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	done
	BG_PIDS=()
	# clients we may have left running
	[[ -n "${HANG_PID:-}" ]] && kill -KILL "$HANG_PID" 2>/dev/null
	[[ -n "${HOLD_PID:-}" ]] && kill -KILL "$HOLD_PID" 2>/dev/null
	stop_dockerd
	if [[ -n "$D" && -d "$D" ]]; then
		if [[ -n "${KEEP_LOGS:-}" ]]; then
			mkdir -p "$KEEP_LOGS" && cp "$D"/*.err "$D"/*.log "$D"/out.* "$KEEP_LOGS"/ 2>/dev/null
		fi
		# dockerd may leave mounts behind (overlay2, netns, plugins)
		local m
		grep -F " $D/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
			umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
		rm -rf "$D" 2>/dev/null || { sleep 1; rm -rf "$D"; }
	fi
}
