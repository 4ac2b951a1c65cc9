"""lstm_core is a pure library: it imports without Prefect, MLflow or Great Expectations, and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKED = ("prefect", "mlflow", "great_expectations")

# A meta-path finder placed first: any import of a blocked top-level name fails, as if it were not installed.
IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    BLOCKED = {blocked!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked by test_purity: " + name)
            return None

    sys.meta_path.insert(0, Block())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    refused = []
    for name in BLOCKED:  # the block works: a direct import fails
        try:
            importlib.import_module(name)
        except ImportError:
            refused.append(name)

    import lstm_core
    modules = []
    for info in pkgutil.walk_packages(lstm_core.__path__, "lstm_core."):
        importlib.import_module(info.name)
        modules.append(info.name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({{"refused": sorted(refused), "modules": modules, "leaked": leaked}}))
    """
)


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_every_lstm_core_module_imports_without_orchestration_packages(tmp_path: Path) -> None:
    proc = run_python(IMPORT_ALL.format(blocked=set(BLOCKED)), tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["refused"] == sorted(BLOCKED)
    assert report["leaked"] == []
    expected = {"lstm_core.config", "lstm_core.data", "lstm_core.windows", "lstm_core.splits", "lstm_core.resample",
                "lstm_core.model", "lstm_core.train", "lstm_core.evaluate", "lstm_core.scoring", "lstm_core.metrics",
                "lstm_core.baselines", "lstm_core.ensemble", "lstm_core.datasets", "lstm_core.datasets.beijing", "lstm_core.datasets.cmapss"}
    assert expected <= set(report["modules"])


def test_importing_lstm_core_creates_no_files(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    home = tmp_path / "home"  # where a pipeline home would go if an import made one
    env = {**os.environ, "LSTM_PIPELINE_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    code = ("import importlib, pkgutil, lstm_core\n"
            "for i in pkgutil.walk_packages(lstm_core.__path__, 'lstm_core.'):\n"
            "    importlib.import_module(i.name)\n"
            "print('ok')\n")
    proc = run_python(code, work, env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert sorted(p.name for p in work.rglob("*")) == []
    assert not home.exists()
    assert not (work / ".lstm_pipeline").exists()
