// Package testkit is what refreshd's tests share that is not the build stack (that is
// internal/teststack): golden files rewritten with -update, the rule for tests that need an
// external program (skip under -short; skip with the reason when it is missing; fail when
// REFRESHD_REQUIRE_STACK is set), free ports, a NOTIFY_SOCKET receiver, bounded waiting,
// and one harness that builds the refreshd binary and runs it as a daemon.
//
// It imports no refreshd package, so the tests of any package, internal ones included, can
// use it without an import cycle.
package testkit
