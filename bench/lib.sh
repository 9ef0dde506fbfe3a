# bench/lib.sh: what the benchmark scripts on the real stack share. Source it after setting
# ROOT (the repository) and DIR (a scratch directory whose cleanup the caller traps).

# stack_up builds the binary under test unless REFRESHD names one, starts scripts/stack.sh
# in DIR (its log is shown only when it fails) and takes the stack's environment.
stack_up() {
	if [ -z "${REFRESHD:-}" ]; then
		REFRESHD=$DIR/refreshd
		(cd "$ROOT" && go build -o "$REFRESHD" ./cmd/refreshd)
	fi
	bash "$ROOT/scripts/stack.sh" up "$DIR" >"$DIR.up.log" 2>&1 || {
		cat "$DIR.up.log" >&2
		exit 1
	}
	rm -f "$DIR.up.log"
	eval "$(bash "$ROOT/scripts/stack.sh" env "$DIR")"
}
