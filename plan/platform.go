package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// platformPattern is the shape of a platform: os/arch[/variant], lower case.
var platformPattern = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9.]+)?$`)

// platformOS and platformArch are the GOOS and GOARCH values buildx (containerd's platforms
// package) takes as they are. A typo such as linux/386x is otherwise accepted by buildx's
// parser and only fails later, on a node pinned to nothing or in emulation.
var (
	platformOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios",
		"js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	platformArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64",
		"mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
)

// platformVariant tells the variants of an architecture (GOAMD64, GOARM and the arm64 ISA
// levels containerd normalises); an architecture not listed has none.
var platformVariant = map[string]*regexp.Regexp{
	"amd64": regexp.MustCompile(`^v[1-4]$`),
	"arm":   regexp.MustCompile(`^v[5-8]$`),
	"arm64": regexp.MustCompile(`^v8(\.[0-9])?$|^v9(\.[0-5])?$`),
}

const platformExamples = "like linux/amd64, linux/arm64, linux/386 or linux/arm/v7"

// checkPlatform returns why s is not a platform buildx builds for, "" when it is.
func checkPlatform(s string) string {
	if !platformPattern.MatchString(s) {
		return fmt.Sprintf("bad platform %q; want os/arch[/variant] in lower case, %s", s, platformExamples)
	}
	parts := strings.Split(s, "/")
	os, arch := parts[0], parts[1]
	switch {
	case !slices.Contains(platformOS, os):
		return fmt.Sprintf("bad platform %q: unknown os %q; want one of %s, %s", s, os, strings.Join(platformOS, ", "), platformExamples)
	case !slices.Contains(platformArch, arch):
		return fmt.Sprintf("bad platform %q: unknown architecture %q; want one of %s, %s", s, arch, strings.Join(platformArch, ", "), platformExamples)
	case len(parts) == 3 && (platformVariant[arch] == nil || !platformVariant[arch].MatchString(parts[2])):
		return fmt.Sprintf("bad platform %q: %s has no variant %q; variants: amd64/v1..v4, arm/v5..v8, arm64/v8[.N], v9[.N]; %s", s, arch, parts[2], platformExamples)
	}
	return ""
}
