package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lspClient speaks the Language Server Protocol (JSON-RPC 2.0 with Content-Length framing)
// to a language server on its stdin and stdout, as an editor does.
type lspClient struct {
	t      *testing.T
	in     io.WriteCloser
	mu     sync.Mutex // guards writes
	nextID int

	diagMu sync.Mutex
	diags  map[string][]lspDiagnostic // by document URI, the last set published
	seen   chan string                // URIs as their diagnostics arrive
	result map[int]chan json.RawMessage
}

type lspDiagnostic struct {
	Range struct {
		Start struct{ Line, Character int } `json:"start"`
	} `json:"range"`
	Severity int    `json:"severity"` // 1 error, 2 warning, 3 information, 4 hint
	Message  string `json:"message"`
	Source   string `json:"source"`
}

type lspMessage struct {
	ID     *json.RawMessage `json:"id,omitempty"`
	Method string           `json:"method,omitempty"`
	Params json.RawMessage  `json:"params,omitempty"`
	Result json.RawMessage  `json:"result,omitempty"`
	Error  json.RawMessage  `json:"error,omitempty"`
}

func (c *lspClient) send(v map[string]any) {
	v["jsonrpc"] = "2.0"
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b); err != nil {
		c.t.Errorf("write to the language server: %v", err)
	}
}

// request sends a request and returns a channel for its result.
func (c *lspClient) request(method string, params any) <-chan json.RawMessage {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.result[id] = ch
	c.mu.Unlock()
	c.send(map[string]any{"id": id, "method": method, "params": params})
	return ch
}

func (c *lspClient) notify(method string, params any) {
	c.send(map[string]any{"method": method, "params": params})
}

// read handles the server's messages until its stdout closes: results of our requests,
// published diagnostics, and the server's own requests (answered with null, or with the
// yaml settings for workspace/configuration).
func (c *lspClient) read(out io.Reader, settings any) {
	r := bufio.NewReader(out)
	for {
		length := -1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				length, _ = strconv.Atoi(v)
			}
		}
		if length < 0 {
			return
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var m lspMessage
		if err := json.Unmarshal(body, &m); err != nil {
			continue
		}
		switch {
		case m.Method == "textDocument/publishDiagnostics":
			var p struct {
				URI         string          `json:"uri"`
				Diagnostics []lspDiagnostic `json:"diagnostics"`
			}
			if json.Unmarshal(m.Params, &p) == nil {
				c.diagMu.Lock()
				c.diags[p.URI] = p.Diagnostics
				c.diagMu.Unlock()
				c.seen <- p.URI
			}
		case m.Method != "" && m.ID != nil: // a request from the server
			var result any
			if m.Method == "workspace/configuration" {
				var p struct{ Items []any }
				json.Unmarshal(m.Params, &p)
				items := make([]any, len(p.Items))
				for i := range items {
					items[i] = settings
				}
				result = items
			}
			c.send(map[string]any{"id": m.ID, "result": result})
		case m.ID != nil: // a result
			var id int
			if json.Unmarshal(*m.ID, &id) == nil {
				c.mu.Lock()
				ch := c.result[id]
				c.mu.Unlock()
				if ch != nil {
					ch <- m.Result
				}
			}
		}
	}
}

// yamlLanguageServerVerdicts opens every file in yaml-language-server with the schema
// associated (the modeline editors use, "# yaml-language-server: $schema=...") and returns
// the error-level diagnostics of each, as an editor would show them.
func yamlLanguageServerVerdicts(t *testing.T, server, schema string, files []string) map[string][]lspDiagnostic {
	t.Helper()
	cmd := exec.Command(server, "--stdio")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", server, err)
	}
	defer func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	settings := map[string]any{"validate": true, "hover": false, "completion": false, "format": map[string]any{"enable": false},
		"schemaStore": map[string]any{"enable": false}, "schemas": map[string]any{}}
	c := &lspClient{t: t, in: in, diags: map[string][]lspDiagnostic{}, seen: make(chan string, 1024), result: map[int]chan json.RawMessage{}}
	go c.read(out, settings)

	root, _ := filepath.Abs(filepath.Dir(files[0]))
	select {
	case <-c.request("initialize", map[string]any{"processId": os.Getpid(), "rootUri": "file://" + root,
		"capabilities": map[string]any{"workspace": map[string]any{"configuration": true}, "textDocument": map[string]any{"publishDiagnostics": map[string]any{}}}}):
	case <-time.After(30 * time.Second):
		t.Fatal("yaml-language-server did not answer initialize within 30s")
	}
	c.notify("initialized", map[string]any{})
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"yaml": settings}})

	// Documents are opened in batches, each closed once its diagnostics are in, so the
	// server holds a bounded number at a time. Every document gets diagnostics published
	// (an empty list when it is clean); after a batch's, a quiet second for late
	// revisions.
	uris := map[string]string{}
	final := map[string][]lspDiagnostic{}
	const batch = 2000
	for i := 0; i < len(files); i += batch {
		var opened []string
		for _, f := range files[i:min(i+batch, len(files))] {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			uri := "file://" + abs
			uris[uri] = f
			opened = append(opened, uri)
			text := "# yaml-language-server: $schema=file://" + schema + "\n" + string(data)
			c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
		}
		inBatch := map[string]bool{}
		for _, u := range opened {
			inBatch[u] = true
		}
		got := map[string]bool{}
		deadline := time.After(120 * time.Second)
		for len(got) < len(opened) {
			select {
			case u := <-c.seen:
				if inBatch[u] {
					got[u] = true
				}
			case <-deadline:
				t.Fatalf("yaml-language-server published diagnostics for %d of %d files within 120s", len(got), len(opened))
			}
		}
		for quiet := false; !quiet; {
			select {
			case <-c.seen:
			case <-time.After(time.Second):
				quiet = true
			}
		}
		// Closing a document publishes an empty list for it: keep what it had.
		c.diagMu.Lock()
		for _, uri := range opened {
			final[uri] = c.diags[uri]
		}
		c.diagMu.Unlock()
		for _, uri := range opened {
			c.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
		}
	}
	verdicts := map[string][]lspDiagnostic{}
	for uri, f := range uris {
		var errs []lspDiagnostic
		for _, d := range final[uri] {
			if d.Severity == 1 {
				errs = append(errs, d)
			}
		}
		verdicts[f] = errs
	}
	return verdicts
}
