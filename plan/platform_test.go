package plan

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPlatformSchemaPattern: schema.json accepts the platforms checkPlatform accepts, from
// the same os, architecture and variant lists.
func TestPlatformSchemaPattern(t *testing.T) {
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	got, want := schema.Defs["platform"].Pattern, platformSchemaPattern()
	if got != want {
		t.Fatalf("schema.json $defs.platform.pattern\n%s\nwant\n%s", got, want)
	}
	re := regexp.MustCompile(want)
	for _, p := range []string{"linux/amd64", "linux/386", "linux/arm/v7", "linux/arm64/v8.2", "windows/amd64/v3",
		"linux/386x", "linus/amd64", "linux/386/v7", "linux/arm64/v7", "linux", "Linux/ARM64"} {
		if schemaOK, goOK := re.MatchString(p), checkPlatform(p) == ""; schemaOK != goOK {
			t.Errorf("%s: schema accepts %v, checkPlatform accepts %v", p, schemaOK, goOK)
		}
	}
}

// platformSchemaPattern is the platform pattern of schema.json, made from the same lists
// (TestPlatformSchemaPattern keeps the two equal).
func platformSchemaPattern() string {
	return `^(` + strings.Join(platformOS, "|") + `)/(` +
		`amd64(/v[1-4])?|arm(/v[5-8])?|arm64(/v8(\.[0-9])?|/v9(\.[0-5])?)?|` +
		strings.Join(slices.DeleteFunc(slices.Clone(platformArch), func(a string) bool { return platformVariant[a] != nil }), "|") + `)$`
}
