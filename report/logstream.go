package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/refreshd/refreshd/history"
)

// logChunk is how much of a log file is held at once: `refreshd logs` of a run whose step
// wrote a gigabyte uses this much memory, not a gigabyte.
const logChunk = 64 << 10

// WriteLogsJSON writes `refreshd logs -o json` for the steps matching filter: a Logs value
// whose attempts' output is streamed from their files into the JSON strings. A file that
// cannot be read gets its error in the attempt's "error".
func WriteLogsJSON(w io.Writer, r *history.Run, filter string) error {
	sel := *r
	sel.Steps = nil
	for _, s := range r.Steps {
		if StepMatches(s.Instance, filter) {
			sel.Steps = append(sel.Steps, s)
		}
	}
	bw := bufio.NewWriterSize(w, logChunk)
	run, err := json.MarshalIndent(&sel, "  ", "  ")
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	fmt.Fprintf(bw, "{\n  \"run\": %s,\n  \"logs\": [", run)
	first := true
	for _, s := range sel.Steps {
		for _, a := range s.Attempts {
			if !first {
				bw.WriteString(",")
			}
			first = false
			head, _ := json.Marshal(struct {
				Instance string `json:"instance"`
				N        int    `json:"n"`
				Path     string `json:"path"`
			}{s.Instance, a.N, a.Log})
			fmt.Fprintf(bw, "\n    %s, \"output\": \"", head[:len(head)-1])
			var readErr error
			if a.Log != "" {
				readErr = streamJSONString(bw, a.Log)
			}
			bw.WriteString("\"")
			if readErr != nil {
				e, _ := json.Marshal(readErr.Error())
				fmt.Fprintf(bw, ", \"error\": %s", e)
			}
			bw.WriteString("}")
		}
	}
	bw.WriteString("\n  ]\n}\n")
	return bw.Flush()
}

// streamJSONString writes the contents of path escaped for the inside of a JSON string,
// a chunk at a time, never splitting a UTF-8 sequence between chunks.
func streamJSONString(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, logChunk)
	carry := 0
	for {
		n, err := f.Read(buf[carry:])
		n += carry
		cut := n
		if err == nil {
			cut = utf8Boundary(buf[:n])
		}
		if cut > 0 {
			if werr := writeJSONEscaped(w, buf[:cut]); werr != nil {
				return werr
			}
		}
		carry = copy(buf, buf[cut:n])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeJSONEscaped writes b escaped for the inside of a JSON string without allocating:
// quotes, backslashes and control characters escaped, invalid UTF-8 as U+FFFD (as
// encoding/json does).
func writeJSONEscaped(w io.Writer, b []byte) error {
	const hex = "0123456789abcdef"
	var esc [6]byte
	start := 0
	flush := func(i int) error {
		if start < i {
			if _, err := w.Write(b[start:i]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		if err := flush(i); err != nil {
			return err
		}
		n := 2
		esc[0] = '\\'
		switch c {
		case '"', '\\':
			esc[1] = c
		case '\n':
			esc[1] = 'n'
		case '\r':
			esc[1] = 'r'
		case '\t':
			esc[1] = 't'
		default: // another control character, or a byte that is not valid UTF-8 (U+FFFD)
			esc[1], esc[2], esc[3], esc[4], esc[5], n = 'u', '0', '0', hex[c>>4], hex[c&15], 6
			if c >= utf8.RuneSelf {
				esc[2], esc[3], esc[4], esc[5] = 'f', 'f', 'f', 'd'
			}
		}
		if _, err := w.Write(esc[:n]); err != nil {
			return err
		}
		i++
		start = i
	}
	return flush(len(b))
}

// utf8Boundary returns where buf may be cut without splitting a UTF-8 sequence at its end.
func utf8Boundary(buf []byte) int {
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if utf8.FullRune(buf[i:]) {
				return len(buf)
			}
			return i
		}
	}
	return len(buf)
}

// copyPrefixed copies a log file to w a line at a time with prefix before each line, holding
// at most a chunk in memory however long the file or its lines.
func copyPrefixed(w io.Writer, path, prefix string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, logChunk)
	atStart := true
	for {
		piece, err := br.ReadSlice('\n')
		if len(piece) > 0 {
			if atStart {
				io.WriteString(w, prefix)
			}
			if _, werr := w.Write(piece); werr != nil {
				return werr
			}
			atStart = piece[len(piece)-1] == '\n'
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !atStart {
				io.WriteString(w, "\n")
			}
			return nil
		case err != nil:
			return err
		}
	}
}
