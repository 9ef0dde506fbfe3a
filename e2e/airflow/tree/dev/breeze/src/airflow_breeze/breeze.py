"""A stand-in for Apache Airflow's breeze, for refreshd's end-to-end test of plans/airflow.yaml.

It implements exactly what the plan relies on, with breeze's names, options, environment
variables, files, prompts and side effects (e2e/airflow/README.md lists each with the breeze
source it follows), on the sample project's Dockerfile.ci and the test's real buildkitd nodes
and registry:

  ci-image build [--builder B --prepare-buildx-cache --platform P] --python X |
                 --python-versions "X Y" [--run-in-parallel] [--upgrade-to-newer-dependencies]
  release-management generate-constraints --airflow-constraints-mode MODE ...
  release-management prepare-provider-distributions | prepare-airflow-distributions |
                     prepare-task-sdk-distributions --distribution-format wheel
  testing core-tests --test-type Always --backend sqlite --python X

Where this box has no docker engine (breeze builds CI images into it and runs containers on
it), the stand-in builds on the buildx builder standin.json names and runs tests on the host;
where breeze talks to ghcr.io and api.github.com, it talks to the registry and the GitHub API
stand-in standin.json names. Everything else is as breeze does it.
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from airflow_breeze import branch_defaults, global_constants

AIRFLOW_ROOT_PATH = Path(__file__).resolve().parents[4]
BUILD_DIR = AIRFLOW_ROOT_PATH / ".build"
DIST = AIRFLOW_ROOT_PATH / "dist"
FILES = AIRFLOW_ROOT_PATH / "files"


def standin() -> dict:
    return json.loads((AIRFLOW_ROOT_PATH / "dev" / "breeze" / "standin.json").read_text())


def say(msg: str) -> None:
    print(msg, flush=True)


def fail(msg: str, code: int = 1) -> None:
    print(msg, file=sys.stderr, flush=True)
    sys.exit(code)


# --- options, the way click parses them ------------------------------------------------------

BOOL_TRUE = {"true", "1", "yes", "y", "t", "on"}
BOOL_FALSE = {"false", "0", "no", "n", "f", "off", ""}


def parse(args: list[str], spec: dict[str, tuple]) -> dict:
    """spec: option -> (kind, envvar, default); kind is "flag", "value" or a list of choices.
    Unknown options and extra arguments exit 2 with click's message."""
    values = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name not in spec:
            fail("Error: No such option: %s" % name if arg.startswith("-") else "Error: Got unexpected extra argument (%s)" % arg, 2)
        kind = spec[name][0]
        if kind == "flag":
            if eq:
                fail("Error: Option '%s' does not take a value." % name, 2)
            values[name] = True
        else:
            if eq:
                value = inline
            else:
                i += 1
                if i == len(args):
                    fail("Error: Option '%s' requires an argument." % name, 2)
                value = args[i]
            if isinstance(kind, list) and value not in kind:
                fail("Error: Invalid value for '%s': '%s' is not one of %s." % (name, value, ", ".join("'%s'" % k for k in kind)), 2)
            values[name] = value
        i += 1
    for name, (kind, envvar, default) in spec.items():
        if name in values:
            continue
        env = os.environ.get(envvar) if envvar else None
        if env is not None:
            if kind == "flag":
                if env.lower() not in BOOL_TRUE | BOOL_FALSE:
                    fail("Error: Invalid value for '%s': '%s' is not a valid boolean." % (name, env), 2)
                values[name] = env.lower() in BOOL_TRUE
            elif isinstance(kind, list) and env not in kind:
                fail("Error: Invalid value for '%s': '%s' is not one of %s." % (name, env, ", ".join("'%s'" % k for k in kind)), 2)
            else:
                values[name] = env
        else:
            values[name] = default if kind != "flag" else bool(default)
    return values


ANSWERS = ["y", "n", "q", "yes", "no", "quit"]


def confirm(question: str, answer: str | None) -> None:
    """breeze's user_confirm: the --answer option or the ANSWER variable, else the terminal;
    unattended (no answer on stdin) it gives up and exits 1."""
    if not answer:
        say(question + " [y/n/q]")
        line = sys.stdin.readline().strip().lower() if not sys.stdin.closed else ""
        answer = line
    if answer.lower() not in ("y", "yes"):
        fail("No answer (or not yes) to: %s. Set ANSWER=yes or --answer yes to run unattended." % question)


# --- environment checks (perform_environment_checks) ----------------------------------------

def perform_environment_checks() -> None:
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("Unknown docker-compose version.\nAt least 2.14.0 needed! Please upgrade!\n"
             "See https://docs.docker.com/compose/install/ for installation instructions.")
    say("Good version of docker-compose: %s" % r.stdout.strip().split()[-1])


def get_and_use_docker_context(context: str) -> str:
    """docker_command_utils.get_and_use_docker_context: a context of the builder's name,
    created (an error when it exists, ignored) and made docker's current one."""
    if context == "autodetect":
        context = "default"
    subprocess.run(["docker", "context", "create", context], capture_output=True)
    r = subprocess.run(["docker", "context", "use", context], capture_output=True)
    if r.returncode:
        say("[warning]Could no use context %r. Continuing with current context" % context)
    return context


def login_to_github_docker_registry(registry: str) -> None:
    """With a GITHUB_TOKEN, breeze's image build logs out of ghcr.io and in again with the
    token. `docker login` needs the engine this box lacks, so the stand-in writes what it
    writes: the token as the registry's credentials in DOCKER_CONFIG/config.json."""
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        return
    say("Logging in to %s with GITHUB_TOKEN" % registry)
    path = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    auth = base64.b64encode(("breeze:" + token).encode()).decode()
    config.setdefault("auths", {})[registry] = {"auth": auth}
    path.write_text(json.dumps(config, indent="\t"))


def run(cmd: list[str]) -> int:
    say("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=AIRFLOW_ROOT_PATH).returncode


def build_args(python: str, upgrade: bool, commit: str) -> list[str]:
    cfg = standin()
    return ["--build-arg", "PYTHON_VERSION=%s" % python,
            "--build-arg", "UPGRADE=%s" % str(upgrade).lower(),
            "--build-arg", "BASE_IMAGE=%s" % cfg["base_image"],
            "--build-arg", "INSTALL_WORK_MB=%d" % cfg.get("install_work_mb", 20),
            "--label", "org.opencontainers.image.revision=%s" % commit]


def in_parallel(items, fn, parallel: bool) -> list[int]:
    if not parallel:
        return [fn(x) for x in items]
    codes = [1] * len(items)

    def one(i, x):
        codes[i] = fn(x)
    threads = [threading.Thread(target=one, args=(i, x)) for i, x in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def pythons(opts: dict) -> list[str]:
    if opts.get("--python"):
        chosen = [opts["--python"]]
    elif opts.get("--python-versions"):
        chosen = opts["--python-versions"].split()
    else:
        chosen = list(global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS)
    for py in chosen:
        if py not in global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS:
            fail("Error: Invalid value for '--python': '%s' is not one of %s." % (py, global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS), 2)
    return chosen


def image_marker(python: str) -> Path:
    return BUILD_DIR / "ci-image" / ("python%s.json" % python)


def cache_image(python: str, repository: str) -> str:
    return "%s/%s/%s/ci/python%s" % (standin()["registry"], repository, branch_defaults.AIRFLOW_BRANCH, python)


# --- ci-image build ---------------------------------------------------------------------------

def ci_image_build(args: list[str]) -> None:
    opts = parse(args, {
        "--python": (global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS, "PYTHON_MAJOR_MINOR_VERSION", None),
        "--python-versions": ("value", "PYTHON_VERSIONS", None),
        "--run-in-parallel": ("flag", "RUN_IN_PARALLEL", False),
        "--upgrade-to-newer-dependencies": ("flag", "UPGRADE_TO_NEWER_DEPENDENCIES", False),
        "--answer": (ANSWERS, "ANSWER", None),
        "--builder": ("value", "BUILDER", "autodetect"),
        "--platform": (global_constants.ALLOWED_PLATFORMS, "PLATFORM", "linux/amd64"),
        "--prepare-buildx-cache": ("flag", "PREPARE_BUILDX_CACHE", False),
        "--commit-sha": ("value", "COMMIT_SHA", ""),
        "--github-repository": ("value", "GITHUB_REPOSITORY", global_constants.APACHE_AIRFLOW_GITHUB_REPOSITORY),
    })
    perform_environment_checks()
    versions = pythons(opts)
    upgrade = opts["--upgrade-to-newer-dependencies"]
    login_to_github_docker_registry(standin()["registry"])
    if opts["--prepare-buildx-cache"]:
        # build_cache: one `docker buildx build` per platform, one after another, stopping at
        # the first failure (the docker/buildx#1044 workaround), each with its cache-to ref.
        for python in versions:
            for platform in opts["--platform"].split(","):
                builder = get_and_use_docker_context(opts["--builder"])
                ref = "%s:cache-%s" % (cache_image(python, opts["--github-repository"]), platform.replace("/", "-"))
                code = run(["docker", "buildx", "build", "--builder", builder, "--progress=auto", "--pull",
                            *build_args(python, upgrade, opts["--commit-sha"]),
                            "--target", "main", ".", "-f", "Dockerfile.ci", "--platform", platform,
                            "--cache-to=type=registry,ref=%s,mode=max" % ref])
                if code != 0:
                    fail("Error when building the cache for %s, Python %s" % (platform, python), code)
        return
    confirm("Are you sure you want to rebuild the CI images for Python %s%s?" % (
        " ".join(versions), " with upgraded dependencies" if upgrade else ""), opts["--answer"])
    get_and_use_docker_context(opts["--builder"])
    engine = standin()["engine_builder"]

    def build(python: str) -> int:
        code = run(["docker", "buildx", "build", "--builder", engine, "--progress", "plain", "--pull",
                    *build_args(python, upgrade, opts["--commit-sha"]),
                    "--target", "main", ".", "-f", "Dockerfile.ci", "--platform", "linux/amd64",
                    "--output", "type=cacheonly"])
        if code == 0:
            image_marker(python).parent.mkdir(parents=True, exist_ok=True)
            image_marker(python).write_text(json.dumps({"upgrade": upgrade, "commit": opts["--commit-sha"]}))
        return code
    codes = in_parallel(versions, build, opts["--run-in-parallel"])
    if any(codes):
        fail("Error when building CI images for Python %s" % " ".join(v for v, c in zip(versions, codes) if c))


# --- release-management ---------------------------------------------------------------------

NOW = datetime.datetime.now().isoformat()
PREFIX = {
    "constraints-no-providers": """
#
# This constraints file was automatically generated on {now}
# via `uv sync --resolution highest` for the "{branch}" branch of Airflow.
# This variant of constraints install just the 'bare' 'apache-airflow' package build from the HEAD of
# the branch, without installing any of the providers.
#
# Those constraints represent the "newest" dependencies airflow could use, if providers did not limit
# Airflow in any way.
#
""",
    "constraints-source-providers": """
#
# This constraints file was automatically generated on {now}
# via `uv sync --resolution highest for the "{branch}" branch of Airflow.
# This variant of constraints install uses the HEAD of the branch version of both
# 'apache-airflow' package and all available community provider distributions.
#
# Those constraints represent the dependencies that are used by all pull requests when they are build in CI.
# They represent "latest" and greatest set of constraints that HEAD of the "apache-airflow" package should
# Install with "HEAD" of providers. Those are the only constraints that are used by our CI builds.
#
""",
    "constraints": """
#
# This constraints file was automatically generated on {now}
# via `uv pip install --resolution highest` for the "{branch}" branch of Airflow.
# This variant of constraints install uses the HEAD of the branch version for 'apache-airflow' but installs
# the providers from PIP-released packages at the moment of the constraint generation.
#
""",
}


def provider_wheels() -> list[str]:
    """get_locally_build_distribution_specs: name==version of every provider wheel in dist/."""
    specs = []
    for wheel in sorted(DIST.glob("apache_airflow_providers_*.whl")):
        parts = wheel.name.split("-")
        specs.append("%s==%s" % (parts[0].replace("_", "-"), parts[1]))
    return specs


def download_latest_constraint_file(mode: str, python: str, repository: str, out: Path) -> bool:
    url = "%s/repos/%s/contents/%s-%s.txt?ref=%s" % (
        standin()["github_api"], repository, mode, python, branch_defaults.DEFAULT_AIRFLOW_CONSTRAINTS_BRANCH)
    headers = {"Accept": "application/vnd.github.v3.raw"}
    if os.environ.get("GITHUB_TOKEN"):
        headers["Authorization"] = "Bearer %s" % os.environ["GITHUB_TOKEN"]
    else:
        say("No GITHUB_TOKEN - using non-authenticated request.")
    say("Downloading constraints file from %s" % url)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            out.write_bytes(r.read())
    except urllib.error.HTTPError as e:  # requests' raise_for_status
        print("%d Client Error: %s for url: %s" % (e.code, e.reason, url), file=sys.stderr, flush=True)
        return False
    return True


def generate_constraints(args: list[str]) -> None:
    opts = parse(args, {
        "--airflow-constraints-mode": (global_constants.ALLOWED_CONSTRAINTS_MODES_CI, "AIRFLOW_CONSTRAINTS_MODE", "constraints-source-providers"),
        "--python": (global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS, "PYTHON_MAJOR_MINOR_VERSION", None),
        "--python-versions": ("value", "PYTHON_VERSIONS", None),
        "--run-in-parallel": ("flag", "RUN_IN_PARALLEL", False),
        "--answer": (ANSWERS, "ANSWER", None),
        "--github-repository": ("value", "GITHUB_REPOSITORY", global_constants.APACHE_AIRFLOW_GITHUB_REPOSITORY),
    })
    perform_environment_checks()
    mode = opts["--airflow-constraints-mode"]
    versions = pythons(opts)
    confirm("Are you sure you want to generate constraints? Did you build the CI images with upgraded dependencies?", opts["--answer"])
    if mode == "constraints":
        for prefix in ("apache_airflow-", "apache_airflow_task_sdk-", "apache_airflow_providers_"):
            if not list(DIST.glob(prefix + "*.whl")):
                fail("No %s*.whl in %s: the PyPI constraints install apache-airflow[all] from the distributions prepared there" % (prefix, DIST))
    exclude = set(provider_wheels()) if mode == "constraints" else set()
    engine = standin()["engine_builder"]

    def one(python: str) -> int:
        marker = image_marker(python)
        if not marker.exists():
            print("The CI image for Python %s is not built: run breeze ci-image build first" % python, file=sys.stderr)
            return 1
        upgrade = json.loads(marker.read_text())["upgrade"]
        with tempfile.TemporaryDirectory() as tmp:
            code = run(["docker", "buildx", "build", "--builder", engine, "--progress", "plain",
                        *build_args(python, upgrade, ""), "--build-arg", "CONSTRAINTS_MODE=%s" % mode,
                        "--target", "constraints", "--no-cache-filter", "constraints-gen", "-f", "Dockerfile.ci",
                        "--platform", "linux/amd64", "--output", "type=local,dest=%s" % tmp, "."])
            if code != 0:
                return code
            lines = (Path(tmp) / ("%s-%s.txt" % (mode, python))).read_text().splitlines()
        pins = [line for line in lines if line and not line.startswith("#") and line not in exclude]
        out = FILES / ("constraints-%s" % python)
        out.mkdir(parents=True, exist_ok=True)
        current = out / ("%s-%s.txt" % (mode, python))
        current.write_text(PREFIX[mode].format(now=NOW, branch=branch_defaults.AIRFLOW_BRANCH) + "".join(p + "\n" for p in pins))
        say("Constraints generated to file: %s. Wrote %d lines" % (current, len(pins)))
        original = out / ("original-%s-%s.txt" % (mode, python))
        if not download_latest_constraint_file(mode, python, opts["--github-repository"], original):
            return 1
        diff = subprocess.run(["diff", "--ignore-matching-lines=#", str(original), str(current)], capture_output=True, text=True)
        diff_file = out / ("diff-%s-%s.md" % (mode, python))
        if diff.returncode == 0:
            say("No changes in constraints files. exiting")
            diff_file.unlink(missing_ok=True)
        else:
            diff_file.write_text("Dependencies %s updated for Python %s\n\n```diff\n%s```\n" % (mode, python, diff.stdout))
        return 0
    codes = in_parallel(versions, one, opts["--run-in-parallel"])
    if any(codes):
        fail("Error generating %s constraints for Python %s" % (mode, " ".join(v for v, c in zip(versions, codes) if c)))


def write_wheel(name: str, version: str) -> None:
    DIST.mkdir(exist_ok=True)
    wheel = DIST / ("%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version))
    import zipfile
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("%s-%s.dist-info/METADATA" % (name.replace("-", "_"), version),
                   "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))
    say("Prepared %s" % wheel.name)


def prepare_distributions(kind: str, args: list[str]) -> None:
    spec = {"--distribution-format": (global_constants.ALLOWED_DISTRIBUTION_FORMATS, "DISTRIBUTION_FORMAT", "wheel")}
    if kind == "provider":
        spec["--include-not-ready-providers"] = ("flag", "INCLUDE_NOT_READY_PROVIDERS", False)
    parse(args, spec)
    version = (AIRFLOW_ROOT_PATH / "version.txt").read_text().strip()
    if kind == "airflow":
        write_wheel("apache-airflow", version)
        write_wheel("apache-airflow-core", version)
    elif kind == "task-sdk":
        write_wheel("apache-airflow-task-sdk", "1.0.0")
    else:
        # The providers of the tree at their versions in the tree (deps.txt's pins).
        for line in (AIRFLOW_ROOT_PATH / "deps.txt").read_text().splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[2] == "provider":
                write_wheel(fields[0], fields[1])


# --- testing ------------------------------------------------------------------------------------

def core_tests(args: list[str]) -> None:
    opts = parse(args, {
        "--test-type": ("value", "TEST_TYPE", "All"),
        "--backend": (global_constants.ALLOWED_BACKENDS, "BACKEND", "sqlite"),
        "--python": (global_constants.ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS, "PYTHON_MAJOR_MINOR_VERSION",
                     global_constants.DEFAULT_PYTHON_MAJOR_MINOR_VERSION),
    })
    perform_environment_checks()
    python = opts["--python"]
    if not image_marker(python).exists():
        fail("The CI image for Python %s is not built: run breeze ci-image build first" % python)
    test_type = opts["--test-type"].lower()
    os.environ["PYTHON_MAJOR_MINOR_VERSION"] = python
    os.chdir(AIRFLOW_ROOT_PATH)
    suite = unittest.defaultTestLoader.discover(str(AIRFLOW_ROOT_PATH / "tests" / test_type), top_level_dir=str(AIRFLOW_ROOT_PATH / "tests" / test_type))
    ids = [t.id() for t in iter_tests(suite)]  # before running: a run drops the tests it ran
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    # pytest's --junitxml report, where run_tests.py writes it.
    failed = {t.id(): tb for t, tb in result.failures + result.errors}
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name="pytest", tests=str(len(ids)), failures=str(len(result.failures)),
                       errors=str(len(result.errors)), skipped="0")
    for test_id in ids:
        classname, _, name = test_id.rpartition(".")
        case = ET.SubElement(ts, "testcase", classname=classname, name=name, time="0.001")
        if test_id in failed:
            ET.SubElement(case, "failure", message=failed[test_id].strip().splitlines()[-1]).text = failed[test_id]
    FILES.mkdir(exist_ok=True)
    ET.ElementTree(root).write(FILES / ("test_result-%s-%s.xml" % (test_type, opts["--backend"])), encoding="utf-8", xml_declaration=True)
    if not result.wasSuccessful():
        sys.exit(1)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


COMMANDS = {
    ("ci-image", "build"): ci_image_build,
    ("release-management", "generate-constraints"): generate_constraints,
    ("release-management", "prepare-provider-distributions"): lambda a: prepare_distributions("provider", a),
    ("release-management", "prepare-airflow-distributions"): lambda a: prepare_distributions("airflow", a),
    ("release-management", "prepare-task-sdk-distributions"): lambda a: prepare_distributions("task-sdk", a),
    ("testing", "core-tests"): core_tests,
}


def main() -> int:
    args = sys.argv[1:]
    command = COMMANDS.get(tuple(args[:2]))
    if command is None:
        fail("Error: No such command: %s (the stand-in implements %s)" % (" ".join(args[:2]), ", ".join(" ".join(c) for c in COMMANDS)), 2)
    command(args[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
