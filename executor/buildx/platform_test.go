package buildx

import "testing"

func TestNative(t *testing.T) {
	tests := []struct {
		native, declared string
		want             bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/386", true},
		{"linux/amd64", "linux/amd64/v2", true},
		{"linux/amd64", "linux/amd64/v4", true},
		{"linux/amd64", "linux/arm64", false},
		{"linux/amd64", "linux/arm/v7", false},
		{"linux/amd64", "linux/s390x", false},
		{"linux/arm64", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm/v7", true},
		{"linux/arm64", "linux/arm", true},
		{"linux/arm64", "linux/arm/v6", true},
		{"linux/arm64", "linux/amd64", false},
		{"linux/386", "linux/amd64", false},
		{"linux/ppc64le", "linux/ppc64le", true},
		{"linux/riscv64", "linux/amd64", false},
		{"windows/amd64", "linux/amd64", false},
	}
	for _, tt := range tests {
		got, err := Native(tt.native, tt.declared)
		if err != nil {
			t.Fatalf("Native(%q, %q): %v", tt.native, tt.declared, err)
		}
		if got != tt.want {
			t.Errorf("Native(%q, %q) = %v, want %v", tt.native, tt.declared, got, tt.want)
		}
	}
}

func TestCacheTag(t *testing.T) {
	tests := []struct{ platform, want, err string }{
		{"linux/amd64", "cache-linux-amd64", ""},
		{"linux/arm64", "cache-linux-arm64", ""},
		{"linux/arm64/v8", "cache-linux-arm64", ""},
		{"linux/arm/v7", "cache-linux-arm-v7", ""},
		{"Linux/AMD64", "cache-linux-amd64", ""},
		{"linux", "", `platform "linux": want os/arch[/variant]`},
		{"linux//v7", "", `platform "linux//v7": empty or padded component`},
		{"a/b/c/d", "", `platform "a/b/c/d": want os/arch[/variant]`},
	}
	for _, tt := range tests {
		got, err := CacheTag(tt.platform)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("CacheTag(%q) error = %v, want %q", tt.platform, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CacheTag(%q) = %q, %v; want %q", tt.platform, got, err, tt.want)
		}
	}
}
