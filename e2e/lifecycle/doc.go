// Package lifecycle holds the end-to-end tests of `refreshd daemon` as a real process, from
// start to stop: the binary is built once, started with temporary plans, state and sockets,
// driven with signals (reload, stop, kill -9), faults and the CLI, and checked through /proc,
// the control socket and the history it leaves behind.
package lifecycle
