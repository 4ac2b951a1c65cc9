"""LSTM_PIPELINE_DATA_ROOTS: with roots set, a path that resolves outside them is refused in one line."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lstm_core.data import DataError
from lstm_pipeline.data_roots import ENV_VAR, OutsideDataRoots, check, confine, parse_roots, roots_from_env


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (the data root, with sub/ and in.csv), root2/ (a sibling whose name starts like it), outside/."""
    tmp = Path(os.path.realpath(tmp_path))
    root, root2, outside = tmp / "root", tmp / "root2", tmp / "outside"
    for folder in (root / "sub", root2, outside):
        folder.mkdir(parents=True)
    for path in (root / "in.csv", root2 / "in.csv", outside / "secret.csv"):
        path.write_text("t,x\n1,2\n")
    return {"tmp": tmp, "root": root, "root2": root2, "outside": outside}


def test_parse_roots_splits_on_pathsep_skips_blanks_and_refuses_relative_roots(tree):
    root, root2 = tree["root"], tree["root2"]
    assert parse_roots(f"{root}{os.pathsep}{os.pathsep} {root2} ") == (root, root2)
    assert parse_roots(None) == () and parse_roots("") == () and parse_roots(os.pathsep) == ()
    with pytest.raises(ValueError, match="'data' is not an absolute folder"):
        parse_roots(f"{root}{os.pathsep}data")


def test_a_file_inside_a_root_is_returned_resolved(tree):
    root = tree["root"]
    assert confine(root / "in.csv", (root,)) == root / "in.csv"
    assert confine(str(root / "sub" / ".." / "in.csv"), (root,)) == root / "in.csv"  # .. that stays inside
    assert confine(root / "sub" / "new.parquet", (root,)) == root / "sub" / "new.parquet"  # an output to be
    assert confine(tree["root2"] / "in.csv", (tree["outside"], tree["root2"])) == tree["root2"] / "in.csv"


def test_a_file_outside_every_root_is_refused_in_one_line_naming_path_and_roots(tree):
    root, secret = tree["root"], tree["outside"] / "secret.csv"
    with pytest.raises(OutsideDataRoots) as caught:
        confine(secret, (root, tree["root2"]), "data file")
    message = str(caught.value)
    assert message == (f"data file {secret} is outside the data roots {root}{os.pathsep}{tree['root2']} "
                       f"({ENV_VAR}); put the file under one of them or change the path")
    assert "\n" not in message
    assert isinstance(caught.value, DataError) and isinstance(caught.value, ValueError)


def test_a_sibling_folder_sharing_the_roots_name_prefix_is_outside(tree):
    # /x/root2/in.csv starts with the characters of /x/root but is not below it
    with pytest.raises(OutsideDataRoots):
        confine(tree["root2"] / "in.csv", (tree["root"],))


def test_dotdot_that_climbs_out_of_the_root_is_refused_with_what_it_resolves_to(tree):
    root = tree["root"]
    sneaky = f"{root}/sub/../../outside/secret.csv"
    with pytest.raises(OutsideDataRoots) as caught:
        confine(sneaky, (root,), "data file")
    assert str(caught.value).startswith(
        f"data file {sneaky} (resolves to {tree['outside'] / 'secret.csv'}) is outside the data roots {root} ")


def test_a_symlink_inside_the_root_that_points_out_is_refused(tree):
    root = tree["root"]
    (root / "link.csv").symlink_to(tree["outside"] / "secret.csv")
    (root / "linked-dir").symlink_to(tree["outside"], target_is_directory=True)
    with pytest.raises(OutsideDataRoots, match="resolves to .*outside/secret.csv"):
        confine(root / "link.csv", (root,))
    # an output written through a symlinked folder lands outside as well, even though the file does not exist
    with pytest.raises(OutsideDataRoots, match="resolves to .*outside/new.parquet"):
        confine(root / "linked-dir" / "new.parquet", (root,))


def test_a_symlink_that_stays_inside_the_roots_and_a_symlinked_root_are_allowed(tree):
    root, outside = tree["root"], tree["outside"]
    (root / "alias.csv").symlink_to(root / "in.csv")
    assert confine(root / "alias.csv", (root,)) == root / "in.csv"
    # the root is named through a link: paths under the link and under its target are both inside
    (tree["tmp"] / "data").symlink_to(root, target_is_directory=True)
    roots = parse_roots(str(tree["tmp"] / "data"))
    assert roots == (root,)
    assert confine(tree["tmp"] / "data" / "in.csv", roots) == root / "in.csv"
    with pytest.raises(OutsideDataRoots):
        confine(outside / "secret.csv", roots)


def test_a_relative_path_is_taken_from_the_working_folder(tree, monkeypatch):
    monkeypatch.chdir(tree["root"])
    assert confine("in.csv", (tree["root"],)) == tree["root"] / "in.csv"
    monkeypatch.chdir(tree["outside"])
    with pytest.raises(OutsideDataRoots):
        confine("secret.csv", (tree["root"],))


def test_unset_or_empty_env_means_no_restriction(tree, monkeypatch):
    secret = tree["outside"] / "secret.csv"
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert roots_from_env() == ()
    assert check(secret, "data file") is secret  # unchanged, not even resolved
    monkeypatch.setenv(ENV_VAR, "")
    assert check("../anywhere.csv", "output") == "../anywhere.csv"


def test_check_reads_the_roots_from_the_environment(tree, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"{tree['outside']}{os.pathsep}{tree['root']}")
    assert check(tree["root"] / "in.csv", "data file") == tree["root"] / "in.csv"
    monkeypatch.setenv(ENV_VAR, str(tree["root"]))
    with pytest.raises(OutsideDataRoots, match=r"^output .*secret\.csv is outside"):
        check(tree["outside"] / "secret.csv", "output")
    assert check(tree["outside"] / "secret.csv", "output", environ={}) == tree["outside"] / "secret.csv"


def test_the_load_task_refuses_a_data_file_outside_the_roots_before_reading_it(tree, monkeypatch, home):
    from lstm_core.config import PipelineConfig
    from tasks.data import load_data

    monkeypatch.setenv(ENV_VAR, str(tree["root"]))
    read = []
    monkeypatch.setattr("tasks.data.read_table", lambda path, **kw: read.append(path))
    config = PipelineConfig.model_validate({"data": {"path": str(tree["outside"] / "secret.csv"), "time_col": "t"}})
    with pytest.raises(OutsideDataRoots, match=r"^data file .*secret\.csv is outside the data roots"):
        load_data.fn(config)
    assert read == []  # refused before the file was opened


def test_the_load_task_reads_a_file_inside_the_roots(tree, monkeypatch, home):
    from lstm_core.config import PipelineConfig
    from tasks.data import load_data

    monkeypatch.setenv(ENV_VAR, str(tree["root"]))
    (tree["root"] / "rows.csv").write_text("t,x,y\n" + "".join(f"{i},{i * 0.5},{i % 2}\n" for i in range(20)))
    config = PipelineConfig.model_validate({"data": {"path": str(tree["root"] / "sub" / ".." / "rows.csv"),
                                                     "time_col": "t", "label_col": "y"}})
    loaded = load_data.fn(config)
    assert loaded["fingerprint"]["rows"] == 20


def test_the_score_task_refuses_an_output_outside_the_roots_before_writing(tree, monkeypatch):
    """score_windows with everything but the path check stubbed: the output goes through the roots."""
    import pandas as pd

    from lstm_core.config import PipelineConfig, ScoreConfig
    from tasks import scoring as scoring_tasks

    written = []
    frame = pd.DataFrame({"prediction": [0, 1]})
    monkeypatch.setattr(scoring_tasks, "_scorer", lambda model: None)
    monkeypatch.setattr(scoring_tasks.scoring, "scoring_spec", lambda scorer, config: None)
    monkeypatch.setattr(scoring_tasks.artifacts, "get_table", lambda uri: frame)
    monkeypatch.setattr(scoring_tasks, "apply_missing", lambda rows, spec, missing, limit: (rows, 0))
    monkeypatch.setattr(scoring_tasks, "score_frame", lambda scorer, rows: rows)
    monkeypatch.setattr(scoring_tasks.scoring, "with_model", lambda frame, model: frame)
    monkeypatch.setattr(scoring_tasks.scoring, "write", lambda frame, out: written.append(out) or Path(out))
    monkeypatch.setattr(scoring_tasks, "get_run_logger", lambda: type("Log", (), {"info": lambda *a: None})())
    model = {"config": PipelineConfig().model_dump()}
    monkeypatch.setenv(ENV_VAR, str(tree["root"]))

    def score(out: Path) -> dict:
        params = ScoreConfig.model_validate({"data": str(tree["root"] / "in.csv"), "out": str(out)})
        return scoring_tasks.score_windows.fn({"table_uri": "x"}, model, params)

    with pytest.raises(OutsideDataRoots, match=r"^output .*scores\.parquet \(resolves to .*outside/scores"):
        score(tree["root"] / ".." / "outside" / "scores.parquet")
    assert written == []
    assert score(tree["root"] / "scores.parquet")["path"] == str(tree["root"] / "scores.parquet")
    assert written == [tree["root"] / "scores.parquet"]


def test_the_scoring_load_task_refuses_a_data_file_outside_the_roots_before_reading_it(tree, monkeypatch):
    from lstm_core.config import PipelineConfig, ScoreConfig
    from tasks import scoring as scoring_tasks

    monkeypatch.setenv(ENV_VAR, str(tree["root"]))
    read = []
    monkeypatch.setattr(scoring_tasks, "read_table", lambda path, **kw: read.append(path))
    params = ScoreConfig.model_validate({"data": str(tree["outside"] / "secret.csv")})
    with pytest.raises(OutsideDataRoots, match=r"^data file .*secret\.csv is outside the data roots"):
        scoring_tasks.load_scoring_data.fn(params, {"config": PipelineConfig().model_dump()})
    assert read == []


def test_the_load_stage_cache_key_never_stats_a_file_outside_the_roots(tree, monkeypatch, home):
    from lstm_core.config import PipelineConfig
    from tasks.policy import StageCache

    monkeypatch.setenv(ENV_VAR, str(tree["root"]))
    statted = []
    real_stat = os.stat
    monkeypatch.setattr("tasks.policy.os.stat", lambda p, *a, **k: statted.append(p) or real_stat(p, *a, **k))
    config = PipelineConfig.model_validate({"data": {"path": str(tree["outside"] / "secret.csv"), "time_col": "t"}})
    ctx = type("Ctx", (), {"task": None, "result_store": None})()
    assert StageCache(sections=("data",), data_file=True).compute_key(ctx, {"config": config}, {}) is None
    assert statted == []
