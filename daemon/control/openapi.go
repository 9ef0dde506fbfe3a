package control

import (
	_ "embed"
	"fmt"

	"gopkg.in/yaml.v3"
)

// openAPIYAML is the OpenAPI 3.1 description of this API (openapi.yaml beside this file),
// served at GET /openapi.yaml and, as JSON, at GET /openapi.json.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the OpenAPI 3.1 description of the control API, as YAML.
func OpenAPI() []byte { return openAPIYAML }

// openAPIValue decodes the description for its JSON form. It is decoded on each request:
// the endpoint is asked rarely, and no decoded copy stays in the daemon's memory.
func openAPIValue() (any, error) {
	var v any
	if err := yaml.Unmarshal(openAPIYAML, &v); err != nil {
		return nil, fmt.Errorf("decode the embedded OpenAPI document: %w", err)
	}
	return v, nil
}
