// Package sample holds the tests of the sample project in this directory: a project shaped
// like Apache Airflow's CI (Dockerfile.ci, a dependency index, constraint files) that the demo
// plan refreshes, and of scripts/stack.sh, which starts the stack the demo runs on. The
// project itself is shell and a Dockerfile; see README.md.
package sample
