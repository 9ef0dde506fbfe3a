// Command dashload is the client side of bench/dashboard.sh: it loads a running daemon's
// dashboard, metrics and control socket the way the attacks of issue 20 did, and prints
// the daemon's peak resident memory, its CPU and the latencies that matter under each
// load. It only prints numbers; it asserts nothing.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type config struct {
	http, metrics, socket, refreshd string
	pid                             int
	bigRun, liveRun, liveStep       string
	readers, followers, streamFlood int
}

func main() {
	var c config
	flag.StringVar(&c.http, "http", "", "the dashboard's address")
	flag.StringVar(&c.metrics, "metrics", "", "the /metrics address")
	flag.StringVar(&c.socket, "socket", "", "the control socket")
	flag.StringVar(&c.refreshd, "refreshd", "refreshd", "the refreshd binary (for refreshd status)")
	flag.IntVar(&c.pid, "pid", 0, "the daemon's pid")
	flag.StringVar(&c.bigRun, "big-run", "", "a run with many step instances")
	flag.StringVar(&c.liveRun, "live-run", "", "a running run")
	flag.StringVar(&c.liveStep, "live-step", "", "its step that prints lines")
	flag.IntVar(&c.readers, "readers", 40, "concurrent readers of a page")
	flag.IntVar(&c.followers, "followers", 32, "followers of the live step")
	flag.IntVar(&c.streamFlood, "stream-flood", 64, "clients that open the live step's stream and never read it (the dashboard's stream cap)")
	phases := flag.String("phases", "pages,follow,floods", "what to run")
	flag.Parse()
	for _, p := range strings.Split(*phases, ",") {
		switch p {
		case "pages":
			c.pages()
		case "follow":
			c.follow()
		case "floods":
			c.floods()
		}
	}
}

// sampler records the daemon's peak resident memory while it runs.
type sampler struct {
	pid  int
	stop chan struct{}
	done chan int64
}

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

func sample(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, rss(pid))
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) peakMiB() float64 {
	close(s.stop)
	return float64(<-s.done) / 1024
}

// cpuTicks is the daemon's user+system time in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// client opens a new connection for every request, as a scraper or a browser behind a
// flood would: a kept-alive connection would skip the accept a flood holds up.
var client = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

// get fetches u and returns the time it took and the bytes of the body.
func get(u string) (time.Duration, int64, error) {
	start := time.Now()
	resp, err := client.Get(u)
	if err != nil {
		return time.Since(start), 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s", resp.Status)
	}
	return time.Since(start), n, err
}

func durations(ds []time.Duration) string {
	slices.Sort(ds)
	return fmt.Sprintf("median %.3f s, max %.3f s", ds[len(ds)/2].Seconds(), ds[len(ds)-1].Seconds())
}

// concurrent GETs u from n clients at once.
func (c *config) concurrent(what, u string) {
	base := rss(c.pid)
	s := sample(c.pid)
	var mu sync.Mutex
	var ds []time.Duration
	var size int64
	var wg sync.WaitGroup
	for range c.readers {
		wg.Go(func() {
			d, n, err := get(u)
			if err != nil {
				fmt.Printf("  %s: %v\n", what, err)
			}
			mu.Lock()
			ds, size = append(ds, d), max(size, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("%d concurrent %s: %s a page (%.1f KiB each); daemon RSS %.1f MiB before, peak %.1f MiB\n",
		c.readers, what, durations(ds), float64(size)/1024, float64(base)/1024, s.peakMiB())
}

// status times `refreshd status` n times.
func (c *config) status(n int) string {
	var ds []time.Duration
	for range n {
		start := time.Now()
		cmd := exec.Command(c.refreshd, "status", "--socket", c.socket)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			return fmt.Sprintf("failed after %.2f s: %v: %s", d.Seconds(), err, strings.TrimSpace(stderr.String()))
		}
		ds = append(ds, d)
	}
	return durations(ds)
}

func (c *config) metricsLatency(n int) string {
	var ds []time.Duration
	for range n {
		d, _, err := get("http://" + c.metrics + "/metrics")
		if err != nil {
			return fmt.Sprintf("failed after %.2f s: %v", d.Seconds(), err)
		}
		ds = append(ds, d)
	}
	return durations(ds)
}

func (c *config) pages() {
	if c.bigRun == "" {
		return
	}
	fmt.Printf("refreshd status (idle): %s\n", c.status(5))
	c.concurrent("GET /runs/"+c.bigRun, "http://"+c.http+"/runs/"+url.PathEscape(c.bigRun))
	c.concurrent("GET /", "http://"+c.http+"/")
	fmt.Printf("refreshd status (after): %s\n", c.status(5))
}

// follow opens the followers of the live step, reads them for 10 s, and reports the
// daemon's CPU meanwhile and how long status takes.
func (c *config) follow() {
	if c.liveRun == "" {
		return
	}
	u := "http://" + c.http + "/events?" + url.Values{"run": {c.liveRun}, "step": {c.liveStep}}.Encode()
	// The daemon's CPU without followers first: the run itself costs some.
	b0, bstart := cpuTicks(c.pid), time.Now()
	time.Sleep(5 * time.Second)
	baseline := float64(cpuTicks(c.pid)-b0) / 100 / time.Since(bstart).Seconds()
	ctx, cancel := context.WithCancel(context.Background())
	var lines sync.Map
	var wg sync.WaitGroup
	for i := range c.followers {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			n := 0
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					n++
					lines.Store(i, n)
				}
			}
		})
	}
	time.Sleep(time.Second)
	t0 := cpuTicks(c.pid)
	start := time.Now()
	st := c.status(3)
	time.Sleep(10*time.Second - time.Since(start))
	cpu := float64(cpuTicks(c.pid)-t0) / 100 / time.Since(start).Seconds()
	cancel()
	wg.Wait()
	total, reading := 0, 0
	lines.Range(func(_, v any) bool { total += v.(int); reading++; return true })
	fmt.Printf("%d followers of one live step for 10 s: daemon CPU %.2f cores (%.2f without followers just before: the run itself); %d followers got %d lines; refreshd status meanwhile: %s\n",
		c.followers, cpu, baseline, reading, total, st)
}

// flood opens n connections with open; they stay open until the returned func is called.
func flood(n int, open func() (net.Conn, error)) (func(), error) {
	var conns []net.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		c, err := open()
		if err != nil {
			closeAll()
			return nil, err
		}
		conns = append(conns, c)
	}
	return closeAll, nil
}

func (c *config) floods() {
	// Clients that open a live stream and never read it, as many as the streams allowed.
	if c.liveRun != "" {
		path := "/events?" + url.Values{"run": {c.liveRun}, "step": {c.liveStep}}.Encode()
		done, err := flood(c.streamFlood, func() (net.Conn, error) {
			conn, err := net.Dial("tcp", c.http)
			if err == nil {
				fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, c.http)
			}
			return conn, err
		})
		if err == nil {
			time.Sleep(time.Second)
			start := time.Now()
			first := "no line"
			if resp, err := client.Get("http://" + c.http + path); err == nil {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "data: ") || strings.HasPrefix(sc.Text(), "event: ") {
						first = fmt.Sprintf("%q after %.3f s", sc.Text(), time.Since(start).Seconds())
						break
					}
				}
				resp.Body.Close()
			} else {
				first = err.Error()
			}
			fmt.Printf("%d non-reading followers: a new follower's first line: %s; /metrics %s; status %s\n",
				c.streamFlood, first, c.metricsLatency(3), c.status(3))
			done()
		} else {
			fmt.Printf("non-reading followers: %v\n", err)
		}
	}
	// 300 connections that send nothing, to the metrics listener.
	done, err := flood(300, func() (net.Conn, error) { return net.Dial("tcp", c.metrics) })
	if err != nil {
		fmt.Printf("silent connections: %v\n", err)
	} else {
		time.Sleep(time.Second)
		fmt.Printf("300 silent connections to the metrics listener: /metrics %s\n", c.metricsLatency(5))
		done()
	}
	// 1,000 connections to the control socket that send nothing.
	done, err = flood(1000, func() (net.Conn, error) { return net.Dial("unix", c.socket) })
	if err != nil {
		fmt.Printf("idle socket connections: %v\n", err)
	} else {
		time.Sleep(time.Second)
		fmt.Printf("1000 idle control-socket connections: refreshd status %s\n", c.status(5))
		done()
	}
}
