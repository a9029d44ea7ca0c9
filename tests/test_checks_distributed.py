"""The checkers of notebook distributed: each passes a right answer and rejects typical wrong ones with an explanation."""
import pytest

from mlcourse import checks


def test_tf_config_checker(capsys):
    def good(n, i, port):
        return {"cluster": {"worker": [f"localhost:{port + k}" for k in range(n)]}, "task": {"type": "worker", "index": i}}

    checks.check_tf_config(good)
    assert "✅ Exercise 5.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Only 'task' differs"):
        checks.check_tf_config(lambda n, i, p: {**good(n, i, p), "task": {"type": "worker", "index": 0}})
    with pytest.raises(AssertionError, match="all addresses"):
        checks.check_tf_config(lambda n, i, p: {**good(n, i, p), "cluster": {"worker": [f"localhost:{p + i}"]}})


def test_scaled_learning_rate_checker(capsys):
    checks.check_scaled_learning_rate(lambda lr, b0, b: lr * b / b0)
    assert "✅ Exercise 5.2 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="k times the batch"):
        checks.check_scaled_learning_rate(lambda lr, b0, b: lr * (b / b0) ** 0.5)
