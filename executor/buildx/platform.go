package buildx

import (
	"fmt"
	"strings"
)

// Platform is os/arch[/variant], as buildx and BuildKit spell it.
type Platform struct {
	OS, Arch, Variant string
}

// parsePlatform parses "os/arch[/variant]". It does not guess defaults: a plan names
// platforms exactly, and "linux" alone is an error.
func parsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return Platform{}, fmt.Errorf("platform %q: empty or padded component", s)
		}
	}
	p := Platform{OS: strings.ToLower(parts[0]), Arch: strings.ToLower(parts[1])}
	if len(parts) == 3 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p.normalize(), nil
}

// normalize folds spellings that name the same platform: arm64/v8 is arm64, and an arm
// without variant is arm/v7 (what BuildKit and containerd assume).
func (p Platform) normalize() Platform {
	switch {
	case p.Arch == "arm64" && p.Variant == "v8":
		p.Variant = ""
	case p.Arch == "aarch64":
		p.Arch, p.Variant = "arm64", ""
	case p.Arch == "x86_64" || p.Arch == "x86-64":
		p.Arch = "amd64"
	case p.Arch == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Arch == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Arch
	}
	return p.OS + "/" + p.Arch + "/" + p.Variant
}

// CacheTag is the registry cache tag of a platform, the Airflow convention:
// "cache-" + the platform with "/" replaced by "-", e.g. cache-linux-amd64, cache-linux-arm-v7.
func CacheTag(platform string) (string, error) {
	p, err := parsePlatform(platform)
	if err != nil {
		return "", err
	}
	return "cache-" + strings.ReplaceAll(p.String(), "/", "-"), nil
}

// nativeFamilies lists, for a worker's native platform, the other platforms its CPU executes
// without emulation. This is the one place that knowledge lives:
//   - x86-64 runs 32-bit x86 binaries and every x86-64 micro-architecture level up to the
//     worker's own; BuildKit lists v2..v4 only when the CPU supports them, so a listed level
//     is accepted (see Native).
//   - arm64 runs 32-bit arm (v7, v6) on most server and desktop hardware (AArch32 support);
//     some (e.g. Apple M-series, recent Neoverse-only parts) do not, and then BuildKit lists
//     arm/v7 as emulated too. That is the documented assumption.
//   - ppc64le, s390x, riscv64 and others run only themselves.
var nativeFamilies = map[string][]string{
	"linux/amd64": {"linux/386", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4"},
	"linux/arm64": {"linux/arm/v7", "linux/arm/v6"},
}

// Native reports whether a node whose worker's native platform is native runs declared
// without emulation: the same platform, or one of native's compatibility family.
func Native(native, declared string) (bool, error) {
	n, err := parsePlatform(native)
	if err != nil {
		return false, fmt.Errorf("native platform: %w", err)
	}
	d, err := parsePlatform(declared)
	if err != nil {
		return false, fmt.Errorf("declared platform: %w", err)
	}
	if n == d {
		return true, nil
	}
	for _, f := range nativeFamilies[n.String()] {
		if f == d.String() {
			return true, nil
		}
	}
	return false, nil
}
