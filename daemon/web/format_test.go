package web

import (
	"fmt"
	"testing"
)

// TestExtras: fields a newer record carries (params, a source commit) are listed, objects
// of scalars as pairs; fields with a view of their own are not.
func TestExtras(t *testing.T) {
	type newerRun struct {
		ID           string            `json:"id"`
		Params       map[string]string `json:"params,omitempty"`
		SourceCommit string            `json:"source_commit,omitempty"`
		Vars         map[string]any    `json:"vars,omitempty"`
		Count        int               `json:"count"`
	}
	got := extras(newerRun{ID: "r", Params: map[string]string{"ref": "main", "python": "3.12"}, SourceCommit: "0daec98",
		Vars: map[string]any{"list": []string{"a", "b"}}, Count: 3}, "id")
	want := `[{count 3 []} {params  [{python 3.12} {ref main}]} {source_commit 0daec98 []} {vars {"list":["a","b"]} []}]`
	if fmt.Sprint(got) != want {
		t.Errorf("extras:\n got %v\nwant %s", got, want)
	}
}
