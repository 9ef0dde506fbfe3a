"""The "Always" core tests of the Airflow-shaped sample: checks on the pins the CI image of
one Python was built with (files/constraints-<py>/constraints-source-providers-<py>.txt), run
by the breeze stand-in's `testing core-tests --test-type Always`."""
import os
import unittest


def pins():
    py = os.environ["PYTHON_MAJOR_MINOR_VERSION"]
    path = os.path.join("files", "constraints-%s" % py, "constraints-source-providers-%s.txt" % py)
    with open(path) as f:
        return dict(line.strip().split("==", 1) for line in f if "==" in line and not line.startswith("#"))


class TestPins(unittest.TestCase):
    def test_core_dependencies_pinned(self):
        for name in ("attrs", "click", "jinja2", "pendulum"):
            self.assertIn(name, pins())

    def test_httpx_below_1(self):
        # The http provider uses an API httpx 1.0 removed.
        major = int(pins()["httpx"].split(".")[0])
        self.assertLess(major, 1, "httpx %s is not supported by the http provider" % pins()["httpx"])


if __name__ == "__main__":
    unittest.main()
