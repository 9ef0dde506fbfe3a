package proc

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// pipeReader copies one output pipe of a process to a writer. It knows whether it is
// waiting for data (in Read) or handing data on (in Write), so that giving up on a pipe an
// escaped process still holds never cuts output a slow writer has not taken yet.
type pipeReader struct {
	r, w *os.File
	dst  io.Writer
	done chan struct{}
	// readingSince is the UnixNano at which the current Read began; 0 while not in Read.
	readingSince atomic.Int64

	mu   sync.Mutex
	werr error // the first error of dst
}

func newPipeReader(dst io.Writer) (*pipeReader, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	if dst == nil {
		dst = io.Discard
	}
	return &pipeReader{r: r, w: w, dst: dst, done: make(chan struct{})}, nil
}

// start closes this process's write end (the children hold theirs) and starts copying.
func (p *pipeReader) start() {
	p.w.Close()
	go p.copy()
}

// abort closes both ends of a pipe that was never started.
func (p *pipeReader) abort() {
	p.w.Close()
	p.r.Close()
}

func (p *pipeReader) copy() {
	defer close(p.done)
	defer p.r.Close()
	buf := make([]byte, 32<<10)
	for {
		p.readingSince.Store(time.Now().UnixNano())
		n, rerr := p.r.Read(buf)
		p.readingSince.Store(0)
		if n > 0 {
			// Keep reading after a writer error: a process blocked on a full pipe would
			// otherwise hang until its timeout.
			if _, err := p.dst.Write(buf[:n]); err != nil {
				p.mu.Lock()
				if p.werr == nil {
					p.werr = err
				}
				p.mu.Unlock()
				p.dst = io.Discard
			}
		}
		if rerr != nil {
			return
		}
	}
}

// drain waits for the copy to reach EOF. It gives up, closing the pipe, only when the copy
// has been waiting for data for idle without any arriving: the group is gone by now, so the
// holder is a process that left it. It reports whether EOF was reached.
func (p *pipeReader) drain(idle time.Duration) bool {
	begin := time.Now().UnixNano()
	tick := time.NewTicker(idle / 8)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return true
		case <-tick.C:
			// Waiting since the group ended at the earliest.
			since := p.readingSince.Load()
			if since != 0 && time.Since(time.Unix(0, max(since, begin))) >= idle {
				// Closing the read end makes the blocked Read return; the holder gets
				// SIGPIPE or EPIPE on its next write.
				p.r.Close()
				<-p.done
				return false
			}
		}
	}
}

func (p *pipeReader) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}
