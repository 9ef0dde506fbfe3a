"""The sample project's code: what the airflow/ tree is to Airflow's CI image."""

VERSION = "1.0.0"
