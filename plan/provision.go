package plan

import "maps"

// ProvisionAction makes a buildx builder match its declaration and checks its nodes
// (running, native platform). Steps do not write it: expansion adds one before the first
// instance using a builder (a buildx_cache step's, or a step's builder:).
type ProvisionAction struct {
	Builder *Builder
}

func (*ProvisionAction) Kind() string { return "provision" }

// provision returns the provision instance of a builder, adding it on first use.
func (x *expander) provision(name string) string {
	if id, ok := x.provisioned[name]; ok {
		return id
	}
	id := "provision[" + name + "]"
	x.provisioned[name] = id
	x.add(&Instance{
		ID: id, ConcurrencyKey: id, Builder: name, Retry: defaultRetry(), Workdir: x.p.Workdir,
		Env: maps.Clone(x.planEnv), Action: &ProvisionAction{Builder: x.p.Builders[name]},
	})
	return id
}
