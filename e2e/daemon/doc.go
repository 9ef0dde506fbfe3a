// Package daemon holds the tests of `refreshd daemon` as a real process: the binary is
// built once, started with temporary plans, state and sockets, driven with signals and the
// CLI, and checked through /proc, the control socket and the history it leaves behind.
package daemon
