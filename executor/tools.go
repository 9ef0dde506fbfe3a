package executor

// Tools are the outside programs and clients that built-in actions drive. The zero value
// uses the programs on PATH and the default docker configuration.
type Tools struct {
	Docker       string // docker CLI (with the buildx plugin); default "docker"
	Buildctl     string // buildctl, for the emulation guard; default "buildctl"
	Git          string // default "git"
	DockerConfig string // DOCKER_CONFIG for buildx builder state and registry credentials; "" = default
}
