"""What a person sees: the Prefect dashboard's Upcoming tab and the MLflow run page, in headless Chromium.

It starts a Prefect server (SQLite, dashboard on) and ``lstm-pipeline serve`` with an hourly cron, waits for
the scheduler to put runs on the deployment's Upcoming tab, trains once on a small synthetic file into an
embedded MLflow store, starts ``mlflow server`` on that store, and screenshots both pages. It then checks that
the Upcoming tab names a scheduled run and that the MLflow run's first metric section is the LSTM's. Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium``; not a test.

    python -m benchmarks.ui_check --out ui-check
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.synthetic import rows_and_labels


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.5)


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path):
    with open(log, "w") as fh:
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            os.killpg(proc.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


def _data(root: Path) -> Path:
    """Four machines of hourly rows with a planted rise before each failure."""
    frames = []
    for m in range(4):
        x, y = rows_and_labels(400, 3, 12, rate=0.04, seed=m)
        frames.append(pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=400, freq="h"), "machine": f"m{m}",
                                    **{f"sensor_{i}": x[:, i] for i in range(3)}, "failure": y}))
    path = root / "plant.csv"
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def _config(root: Path, data: Path) -> Path:
    tree = {"data": {"path": str(data), "time_col": "timestamp", "entity_col": "machine", "event_col": "failure",
                     "horizon": 3},
            "window": {"length": 12}, "split": {"folds": 2},
            "model": {"hidden": 16, "layers": 1}, "train": {"epochs": 3, "min_steps": 200, "batch_size": 64},
            "register": {"experiment": "ui-check", "model_name": "plant-lstm"}}
    path = root / "plant.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return path


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1900,1200"):
        opts.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    driver = shutil.which("chromedriver")
    if not driver:
        raise SystemExit("needs chromedriver (apt-get install chromium chromium-driver)")
    return webdriver.Chrome(service=Service(driver), options=opts)


def _page_text(browser, url: str, png: Path, settle: float, wait_for: str | None = None) -> str:
    browser.get(url)
    deadline = time.time() + 60
    text = ""
    while time.time() < deadline:
        time.sleep(settle)
        text = browser.find_element("tag name", "body").text
        if wait_for is None or wait_for in text:
            break
    browser.save_screenshot(str(png))
    return text


def prefect_upcoming(root: Path, out: Path, config: Path, browser) -> dict:
    """Serve the deployments with an hourly cron; the Upcoming tab must list a scheduled run."""
    port = _port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "LSTM_PIPELINE_HOME": str(root / "home"),
           "PREFECT_UI_API_URL": api}  # the dashboard calls this API (its default is port 4200)
    env.pop("PREFECT_API_URL", None)
    with _process([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                  env, out / "prefect-server.log") as server:
        _wait(f"{api}/health", server, "prefect server")
        serve_env = {**env, "PREFECT_API_URL": api}
        with _process([sys.executable, "-m", "lstm_app.cli", "serve", "--config", str(config),
                       "--cron", "0 * * * *", "--score-cron", "30 * * * *"], serve_env, out / "serve.log"):
            from prefect.client.orchestration import SyncPrefectClient

            deadline, deployment, scheduled = time.time() + 120, None, []
            while time.time() < deadline and not scheduled:
                time.sleep(2)
                with SyncPrefectClient(api) as client, contextlib.suppress(Exception):
                    deployment = client.read_deployment_by_name("training_pipeline/nightly")
                    scheduled = [r for r in client.read_flow_runs() if r.deployment_id == deployment.id]
            if not scheduled:
                raise RuntimeError("the scheduler created no run within two minutes")
            url = f"http://127.0.0.1:{port}/deployments/deployment/{deployment.id}?tab=Upcoming"
            text = _page_text(browser, url, out / "prefect-upcoming.png", 3, wait_for="Scheduled")
    first = min(scheduled, key=lambda r: r.expected_start_time)
    return {"url": url, "scheduled_runs": len(scheduled), "first": f"{first.expected_start_time:%Y-%m-%d %H:%M %Z}",
            "tab_shows_a_scheduled_run": "Scheduled" in text}


def mlflow_run_page(root: Path, out: Path, config: Path, browser) -> dict:
    """Train once, then open the run's model-metrics tab: the 'lstm' section must come before 'baselines'."""
    env = {**os.environ, "LSTM_PIPELINE_HOME": str(root / "home")}
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    summary = root / "summary.json"
    subprocess.run([sys.executable, "-m", "lstm_app.cli", "train", "--config", str(config),
                    "--summary-json", str(summary)], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=open(out / "train.log", "w"))
    run_url = json.loads(summary.read_text())["mlflow"]["run_url"]
    port = _port()
    store = f"sqlite:///{root / 'home' / 'mlflow.db'}"
    with _process([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", store, "--workers", "1"], env, out / "mlflow-server.log") as server:
        _wait(f"http://127.0.0.1:{port}/health", server, "mlflow server")
        base = f"http://127.0.0.1:{port}"
        page = run_url.replace("http://127.0.0.1:5000", base)
        metrics_page = page.replace("?workflowType", "/model-metrics?workflowType")
        text = _page_text(browser, metrics_page, out / "mlflow-run-metrics.png", 4, wait_for="LSTM")
        experiment = page.split("#/experiments/")[1].split("/")[0]
        table = _page_text(browser, f"{base}/#/experiments/{experiment}/runs?workflowType=machine_learning",
                           out / "mlflow-runs-table.png", 4, wait_for="plant-w12")
    lines = [line.strip() for line in text.splitlines()]
    # chart sections are headed '<name> (<charts>)', e.g. 'LSTM (27)', 'baselines/hgb (24)'
    sections = [line.rsplit(" (", 1)[0] for line in lines if line.endswith(")") and " (" in line
                and line.rsplit(" (", 1)[1][:-1].isdigit()]
    return {"url": metrics_page, "sections_in_order": sections,
            "lstm_first": bool(sections) and sections[0] == "LSTM",
            "runs_table_names_the_run": run_url.split("/runs/")[1].split("?")[0][:6] in table or "plant-w12" in table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ui-check"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = _config(root, _data(root))
        browser = _browser()
        try:
            result = {"prefect": prefect_upcoming(root, out, config, browser),
                      "mlflow": mlflow_run_page(root, out, config, browser)}
        finally:
            browser.quit()
    print(json.dumps(result, indent=2))
    (out / "ui_check.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    ok = result["prefect"]["tab_shows_a_scheduled_run"] and result["mlflow"]["lstm_first"]
    print(f"screenshots in {out}: " + ("both checks hold" if ok else "a check failed"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
