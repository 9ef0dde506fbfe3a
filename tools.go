//go:build tools

// Package tools pins the project's dependencies while the code that imports them is written.
package tools

import (
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/docker/cli/cli/config"
	_ "github.com/gofrs/flock"
	_ "github.com/hashicorp/go-retryablehttp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/robfig/cron/v3"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
)
