# The part of Airflow's dev/breeze/src/airflow_breeze/global_constants.py that
# plans/airflow.yaml and the breeze stand-in read. The Python list is an annotated assignment
# here (Airflow's is a plain one today; the same file annotates others).
from __future__ import annotations

APACHE_AIRFLOW_GITHUB_REPOSITORY = "apache/airflow"
MYSQL_LTS_RELEASES: list[str] = ["8.4"]

# Checked before putting in build cache
ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS: list[str] = ["3.11", "3.12"]
DEFAULT_PYTHON_MAJOR_MINOR_VERSION = ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS[0]

# The stack's second node is linux/386 (an amd64 kernel runs it natively), where Airflow's is
# linux/arm64: the only platform difference from Airflow's list.
ALLOWED_PLATFORMS = ["linux/amd64", "linux/386", "linux/amd64,linux/386"]
ALLOWED_CONSTRAINTS_MODES_CI = ["constraints-source-providers", "constraints", "constraints-no-providers"]
ALLOWED_DISTRIBUTION_FORMATS = ["wheel", "sdist", "both"]
ALLOWED_BACKENDS = ["sqlite", "mysql", "postgres"]
