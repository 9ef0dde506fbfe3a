package plan

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestSchemaActions holds plan/schema.json to builtinActions, both ways: the step's oneOf
// of actions and its action properties are exactly the table's keys, an object action has
// its $defs entry, and each rule of the table (which actions may name secrets:, write a
// report:, define outputs:, have a matrix, run after a failure) is the schema's allOf rule.
func TestSchemaActions(t *testing.T) {
	var schema struct {
		Defs map[string]map[string]any `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	step := schema.Defs["step"]
	keys := actionKeys()

	var oneOf []string
	for _, alt := range jsonList(step["oneOf"]) {
		oneOf = append(oneOf, jsonStrings(jsonObj(alt)["required"])...)
	}
	if !slices.Equal(oneOf, keys) {
		t.Errorf("$defs/step oneOf requires %q; builtinActions has %q", oneOf, keys)
	}
	props := jsonObj(step["properties"])
	for _, k := range keys {
		p := jsonObj(props[k])
		if p == nil {
			t.Errorf("$defs/step has no property %s for the action", k)
			continue
		}
		if ref, ok := p["$ref"].(string); ok && (ref != "#/$defs/"+k || schema.Defs[k] == nil) {
			t.Errorf("$defs/step property %s refers to %s; want #/$defs/%s, defined", k, ref, k)
		}
	}
	rules := map[string]map[string]any{} // the if's one required key -> the then
	for _, r := range jsonList(step["allOf"]) {
		if req := jsonStrings(jsonObj(jsonObj(r)["if"])["required"]); len(req) == 1 {
			rules[req[0]] = jsonObj(jsonObj(r)["then"])
		}
	}
	for key := range rules {
		if !slices.Contains(keys, key) && props[key] == nil {
			t.Errorf("$defs/step has an allOf rule for %s, which is neither an action nor a step key", key)
		}
	}
	checkKeyRules(t, rules)
	checkActionRules(t, rules)
}

// checkKeyRules compares the schema's rules "a step with secrets: (report:, outputs:) has
// one of these actions" with the actions builtinActions lets have them.
func checkKeyRules(t *testing.T, rules map[string]map[string]any) {
	for _, tc := range []struct {
		key string
		has func(actionKind) bool
	}{
		{"secrets", func(k actionKind) bool { return k.secrets }},
		{"report", func(k actionKind) bool { return k.report }},
		{"outputs", func(k actionKind) bool { return k.outputs }},
	} {
		var want []string
		for _, k := range builtinActions() {
			if tc.has(k) {
				want = append(want, k.key)
			}
		}
		then := rules[tc.key]
		got := jsonStrings(then["required"])
		for _, alt := range jsonList(then["anyOf"]) {
			got = append(got, jsonStrings(jsonObj(alt)["required"])...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("schema lets a step with %s: have the actions %q; builtinActions says %q", tc.key, got, want)
		}
	}
}

// checkActionRules compares the schema's rules "a step with ACTION has no matrix (runs
// only with when: success)" with builtinActions.
func checkActionRules(t *testing.T, rules map[string]map[string]any) {
	for _, k := range builtinActions() {
		then := rules[k.key]
		noMatrix := slices.Equal(jsonStrings(jsonObj(then["not"])["required"]), []string{"matrix"})
		if noMatrix != (k.noMatrix != "") {
			t.Errorf("schema says a %s step may have a matrix: %v; builtinActions: %v", k.key, !noMatrix, k.noMatrix == "")
		}
		successOnly := jsonObj(jsonObj(then["properties"])["when"])["const"] == "success"
		if successOnly != (k.successOnly != "") {
			t.Errorf("schema says a %s step runs only with when: success: %v; builtinActions: %v", k.key, successOnly, k.successOnly != "")
		}
	}
}

// TestActionKinds expands testdata/full (a step of every action) and checks each
// instance's Kind is its step's action key (provision for what expansion adds).
func TestActionKinds(t *testing.T) {
	plans, err := LoadDir("testdata/full")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range plans {
		g, err := Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range g.Instances {
			want := "provision"
			if in.Step != nil {
				want = in.Step.action().kind.key
			}
			if got := in.Action.Kind(); got != want {
				t.Errorf("%s: instance %s has kind %s, want %s", p.Name, in.ID, got, want)
			}
			seen[want] = true
		}
	}
	for _, k := range ActionKinds() {
		if !seen[k] {
			t.Errorf("no instance of %s in testdata/full: add a step doing it", k)
		}
	}
}

func jsonObj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func jsonList(v any) []any         { l, _ := v.([]any); return l }

func jsonStrings(v any) []string {
	var out []string
	for _, e := range jsonList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
