package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on the shipped unit. verify wants the
// ExecStart binary to exist, so the unit is checked with its path pointed at a copy.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testkit.Need(t, "systemd-analyze")[0]
	unit, err := os.ReadFile("../systemd/refreshd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/usr/local/bin/refreshd reload ", "Restart=on-failure", "StateDirectory=refreshd",
		"ConfigurationDirectory=refreshd", "RuntimeDirectory=refreshd", "User=refreshd",
		"SupplementaryGroups=docker", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
		"RestrictAddressFamilies=", "WatchdogSec=", "KillMode=mixed"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	// Step logs live in the state directory; a plan's kill_grace must not be overridden.
	// A reload through kill -HUP returns before the daemon reloaded and never fails.
	for _, unwanted := range []string{"LogsDirectory=", "--kill-grace", "kill -HUP"} {
		if strings.Contains(string(unit), unwanted) {
			t.Errorf("unit has %s", unwanted)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "refreshd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "refreshd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/refreshd", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
