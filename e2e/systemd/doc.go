// Package systemd holds the test of refreshd's unit under a real systemd: systemd 252 boots
// as PID 1 of a systemd-nspawn container (a debootstrapped Debian 12, cached by
// scripts/install-stack.sh), refreshd is installed by the README's steps, and the unit is
// driven with systemctl, journalctl and the CLI through nsenter. TestDebianPackage installs
// the package make deb builds there instead (apt install, upgrade, remove, purge).
package systemd
