// Package airflow runs the shipped plans/airflow.yaml itself, night after night, on the real
// stack: an Airflow-shaped repository built from e2e/sample's project with Airflow's layout
// (tree/), a breeze stand-in that does what the plan relies on (tree/dev/breeze), uv and
// docker compose stand-ins (testdata/bin), and a GitHub API stand-in. See README.md.
package airflow
