# Airflow's dev/breeze/src/airflow_breeze/branch_defaults.py: the branch this tree is, and its
# constraints branch (a release branch sets "v3-3-test" and "constraints-3-3").
AIRFLOW_BRANCH = "main"
DEFAULT_AIRFLOW_CONSTRAINTS_BRANCH = "constraints-main"
DEBIAN_VERSION = "bookworm"
