import pytest

def test_ok():
    assert True

def test_fails():
    assert 1 == 2, "one is not two"

class TestProviders:
    def test_http(self):
        pass

    @pytest.mark.parametrize("py", ["3.10", "3.14"])
    def test_pins(self, py):
        assert py != "3.14"

@pytest.mark.skip(reason="not on this box")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_error(broken):
    pass
