// Package refresh holds refreshd's end-to-end tests: the real binary as a daemon, driven over
// its control socket and CLI, refreshing the sample project (e2e/sample) with plans/demo.yaml
// on a scripts/stack.sh stack (real buildkitd nodes, docker buildx, docker-registry, a bare
// git repository); the full flow, a simulated upstream release, and fault drills. See the
// "End-to-end drills" in docs/development.md.
package refresh
