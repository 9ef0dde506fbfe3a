package apitest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Case is one request generated from the description, and the answer it calls for.
type Case struct {
	Op     string // operationId; "" for a method the path does not have
	Method string
	Path   string // escaped, parameters filled in
	Query  url.Values
	// Body, when not nil, is sent as application/json.
	Body []byte
	// Want is the status the description calls for: 400 for a request it rejects, 404 for a
	// path value that names nothing, 405 for a method the path does not have; 0 for a valid
	// request, whose answer depends on the daemon's state (the caller knows it).
	Want int
	Why  string
}

// Request builds c's request to http://refreshd.
func (c Case) Request() (*http.Request, error) {
	u := "http://refreshd" + c.Path
	if len(c.Query) > 0 {
		u += "?" + c.Query.Encode()
	}
	var req *http.Request
	var err error
	if c.Body != nil {
		req, err = http.NewRequest(c.Method, u, strings.NewReader(string(c.Body)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest(c.Method, u, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", c, err)
	}
	return req, nil
}

func (c Case) String() string {
	q := ""
	if len(c.Query) > 0 {
		q = "?" + c.Query.Encode()
	}
	return fmt.Sprintf("%s %s%s (%s)", c.Method, c.Path, q, c.Why)
}

// Generate derives requests from every path, method, parameter and body of the
// description: for each operation a valid request, one per valid sample of each query
// parameter (its enum values, its default, its bounds), one per sample its schema rejects
// (a wrong type, a number out of range, a value outside the enum or the pattern), one per
// path parameter value that names nothing (unknown, empty, "..", an escaped slash, a NUL,
// an option-like value, a 4 KiB value), a body the schema rejects where the operation takes
// one, and every other method of the path. known gives, per path parameter name, a value
// that names something that exists (a plan, a run).
func Generate(doc *openapi3.T, known map[string]string) ([]Case, error) {
	var cases []Case
	paths := doc.Paths.InMatchingOrder()
	slices.Sort(paths)
	for _, template := range paths {
		item := doc.Paths.Value(template)
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			op := ops[m]
			params := append(slices.Clone(item.Parameters), op.Parameters...)
			base := map[string]string{}
			for _, p := range params {
				if p.Value.In != openapi3.ParameterInPath {
					continue
				}
				v, ok := known[p.Value.Name]
				if !ok {
					return nil, fmt.Errorf("%s %s: no known value for path parameter %q", m, template, p.Value.Name)
				}
				base[p.Value.Name] = v
			}
			path := fill(template, base)
			one := func(q url.Values, want int, why string) {
				cases = append(cases, Case{Op: op.OperationID, Method: m, Path: path, Query: q, Want: want, Why: why})
			}
			one(nil, 0, "valid")
			one(url.Values{"unknown-parameter": {"1"}}, 0, "an unknown query parameter is ignored")
			for _, p := range params {
				switch p.Value.In {
				case openapi3.ParameterInQuery:
					for _, v := range validSamples(p.Value.Schema) {
						one(url.Values{p.Value.Name: {v}}, 0, fmt.Sprintf("query %s=%q, which the schema accepts", p.Value.Name, v))
					}
					for _, v := range invalidSamples(p.Value.Schema) {
						one(url.Values{p.Value.Name: {v}}, http.StatusBadRequest, fmt.Sprintf("query %s=%q, which the schema rejects", p.Value.Name, v))
					}
				case openapi3.ParameterInPath:
					for _, v := range unknownPathValues() {
						vals := maps(base, p.Value.Name, v)
						cases = append(cases, Case{Op: op.OperationID, Method: m, Path: fill(template, vals), Want: http.StatusNotFound,
							Why: fmt.Sprintf("path %s=%q names nothing", p.Value.Name, v)})
					}
				}
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil && rb.Value.Content.Get("application/json") != nil {
				for _, b := range []string{"{", `"a string"`, "[]"} {
					cases = append(cases, Case{Op: op.OperationID, Method: m, Path: path, Body: []byte(b), Want: http.StatusBadRequest,
						Why: fmt.Sprintf("body %s, which the schema rejects", b)})
				}
			}
		}
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if ops[m] != nil {
				continue
			}
			vals := map[string]string{}
			for name, v := range known {
				vals[name] = v
			}
			cases = append(cases, Case{Method: m, Path: fill(template, vals), Want: http.StatusMethodNotAllowed,
				Why: "a method the path does not have"})
		}
	}
	return cases, nil
}

// fill puts each value, escaped as a path segment, in place of its {name}.
func fill(template string, vals map[string]string) string {
	for name, v := range vals {
		template = strings.ReplaceAll(template, "{"+name+"}", url.PathEscape(v))
	}
	return template
}

func maps(base map[string]string, name, v string) map[string]string {
	out := make(map[string]string, len(base))
	for k, x := range base {
		out[k] = x
	}
	out[name] = v
	return out
}

// unknownPathValues name nothing, whatever the parameter: they must answer 404, never a
// redirect, a 500 or another resource.
func unknownPathValues() []string {
	return []string{"nosuch", "", "..", ".", "a/b", "x\x00y", "--help", "-1", "%", strings.Repeat("x", 4096), "échec", "<script>"}
}

// validSamples are values the schema accepts: its enum, its default, its bounds (1e5 when
// it has no maximum), or a
// plain value of its type.
func validSamples(ref *openapi3.SchemaRef) []string {
	if ref == nil || ref.Value == nil {
		return []string{"x"}
	}
	s := ref.Value
	if s.Type.Is(openapi3.TypeArray) {
		return validSamples(s.Items)
	}
	var out []string
	for _, e := range s.Enum {
		out = append(out, fmt.Sprint(e))
	}
	if len(out) > 0 {
		return out
	}
	switch {
	case s.Type.Is(openapi3.TypeInteger):
		lo := 0.0
		if s.Min != nil {
			lo = *s.Min
		}
		hi := 100000.0
		if s.Max != nil {
			hi = *s.Max
		}
		out = append(out, strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(lo+1, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
		if s.Default != nil {
			out = append(out, fmt.Sprint(s.Default))
		}
	case s.Pattern != "":
		out = append(out, "NAME=value", "NAME=", "N=a=b")
	default:
		out = append(out, "x", "a b", "échec")
	}
	return out
}

// invalidSamples are values the schema rejects.
func invalidSamples(ref *openapi3.SchemaRef) []string {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	if s.Type.Is(openapi3.TypeArray) {
		return invalidSamples(s.Items)
	}
	var out []string
	if len(s.Enum) > 0 {
		out = append(out, "maybe")
	}
	if s.Type.Is(openapi3.TypeInteger) {
		out = append(out, "abc", "1.5")
		if s.Min != nil {
			out = append(out, strconv.FormatFloat(*s.Min-1, 'f', -1, 64))
		}
		if s.Max != nil {
			out = append(out, strconv.FormatFloat(*s.Max+1, 'f', -1, 64))
		}
	}
	if s.Pattern != "" {
		out = append(out, "noequals", "=value")
	}
	return out
}
