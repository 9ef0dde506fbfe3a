package daemon

import (
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier speaks the sd_notify protocol.
type Notifier interface {
	Notify(state string)
	// WatchdogTicker ticks at half the watchdog interval when systemd asked for one
	// (WatchdogSec); otherwise it never ticks and costs nothing.
	WatchdogTicker() Ticker
}

// Ticker is a stoppable tick channel.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemdNotifier notifies the socket in $NOTIFY_SOCKET (a no-op when it is unset).
type SystemdNotifier struct{ Log *slog.Logger }

// Notify sends state (newline-separated KEY=VALUE assignments).
func (n SystemdNotifier) Notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.Log.Warn("sd_notify", "err", err)
	}
}

// WatchdogTicker implements Notifier.
func (n SystemdNotifier) WatchdogTicker() Ticker {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.Log.Warn("read systemd watchdog settings", "err", err)
	}
	if err != nil || interval <= 0 {
		return nilTicker{}
	}
	n.Log.Info("systemd watchdog enabled", "interval", interval)
	return timeTicker{time.NewTicker(interval / 2)}
}

type timeTicker struct{ t *time.Ticker }

func (t timeTicker) C() <-chan time.Time { return t.t.C }
func (t timeTicker) Stop()               { t.t.Stop() }

type nilTicker struct{}

func (nilTicker) C() <-chan time.Time { return nil }
func (nilTicker) Stop()               {}

type nopNotifier struct{}

func (nopNotifier) Notify(string)          {}
func (nopNotifier) WatchdogTicker() Ticker { return nilTicker{} }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
