"""Deployments of both flows: names, schedules, default parameters and the dashboard form's schema."""
from __future__ import annotations

import pytest

from lstm_app.serve import ServeError, build_deployments
from lstm_core.config import DataConfig, ScoreConfig, TrainConfig, load_config


def _config(**extra):
    return load_config(None, {"data.path": "plant/telemetry.csv", "data.time_col": "timestamp",
                              "data.event_col": "failure", "data.horizon": 3, "train.epochs": 7, **extra})


def _by_flow(deployments):
    return {d.flow_name: d for d in deployments}


def test_two_deployments_with_cron_in_the_time_zone_and_the_config_as_default():
    cfg = _config()
    got = _by_flow(build_deployments(cfg, ScoreConfig(data="plant/today.csv"), cron="15 1 * * *",
                                     score_cron="0 * * * *", timezone="Europe/Berlin"))
    assert set(got) == {"training_pipeline", "batch_scoring"}
    train, score = got["training_pipeline"], got["batch_scoring"]
    assert (train.name, score.name) == ("nightly", "nightly")
    assert train.entrypoint == "flows.training.training_pipeline"
    assert score.entrypoint == "flows.scoring.batch_scoring"
    assert [(s.schedule.cron, s.schedule.timezone) for s in train.schedules] == [("15 1 * * *", "Europe/Berlin")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in score.schedules] == [("0 * * * *", "Europe/Berlin")]
    assert train.parameters == {"config": cfg.model_dump(mode="json")}
    assert train.parameters["config"]["train"]["epochs"] == 7
    # scoring defaults to the model this training config registers, as champion
    assert score.parameters["params"]["model_name"] == "telemetry-lstm"
    assert score.parameters["params"]["alias"] == "champion"
    assert "lstm-pipeline" in train.tags and "lstm-pipeline" in score.tags


def test_the_form_schema_carries_every_description():
    train, score = build_deployments(_config())
    schema = train._parameter_openapi_schema.model_dump()
    assert schema["properties"]["config"]["$ref"] == "#/definitions/PipelineConfig"
    epochs = schema["definitions"]["TrainConfig"]["properties"]["epochs"]
    assert epochs["description"] == TrainConfig.model_fields["epochs"].description
    assert epochs["default"] == TrainConfig.model_fields["epochs"].default
    for name, section in schema["definitions"].items():
        assert section.get("description"), f"section {name} has no description in the form"
        for field, prop in section.get("properties", {}).items():
            if "$ref" not in prop:  # a section: described by its own definition
                assert prop.get("description"), f"{name}.{field} has no description in the form"
    scoring = score._parameter_openapi_schema.model_dump()["definitions"]["ScoreConfig"]["properties"]
    assert scoring["alias"]["description"] == ScoreConfig.model_fields["alias"].description


def test_the_form_requires_the_data_file_and_nothing_else():
    """The dashboard labels a field '(Optional)' unless the schema requires it: the data file is required."""
    from prefect.utilities.schema_tools import validate

    train, score = build_deployments(load_config(None, {}))
    schema = train._parameter_openapi_schema.model_dump()
    required = {name: d.get("required", []) for name, d in schema["definitions"].items()}
    assert required["DataConfig"] == ["path"] and not any(v for k, v in required.items() if k != "DataConfig")
    assert schema["definitions"]["DataConfig"]["properties"]["path"]["description"] == \
        DataConfig.model_fields["path"].description
    assert score._parameter_openapi_schema.model_dump()["definitions"]["ScoreConfig"]["required"] == ["data"]
    given = load_config(None, {"data.path": "plant/telemetry.csv"}).model_dump(mode="json")
    validate({"config": given}, schema, raise_on_error=True)  # a run with the file starts
    for missing in (None, ""):
        given["data"]["path"] = missing
        with pytest.raises(Exception, match="path"):  # the form refuses it before a run is created
            validate({"config": given}, schema, raise_on_error=True)


def test_no_schedule_and_no_data_mean_on_demand_only():
    train, score = build_deployments(_config(), ScoreConfig(data="x.csv"), schedule=False)
    assert train.schedules == [] and score.schedules == []
    train, score = build_deployments(load_config(None, {}))  # no data file anywhere: nothing to run nightly
    assert train.schedules == [] and score.schedules == []
    assert score.parameters["params"]["model_name"] is None


@pytest.mark.parametrize(("kwargs", "message"), [({"cron": "every night"}, "schedule 'every night'"),
                                                 ({"timezone": "Mars/Base"}, "time zone 'Mars/Base'")])
def test_bad_schedule_is_refused_by_name(kwargs, message):
    with pytest.raises(ServeError, match=message):
        build_deployments(_config(), **kwargs)


@pytest.mark.parametrize("api", ["ephemeral", "postgres-server"])
def test_deployments_register_with_the_api_and_read_back(home, api, request):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = request.getfixturevalue("prefect_pg_server") if api == "postgres-server" else None
    if url is None:
        request.getfixturevalue("prefect_harness")
    with temporary_settings({PREFECT_API_URL: url} if url else {}):
        for deployment in build_deployments(_config(), ScoreConfig(data="plant/today.csv"), timezone="Asia/Tokyo"):
            deployment.apply()
        with get_client(sync_client=True) as client:
            train = client.read_deployment_by_name("training_pipeline/nightly")
            score = client.read_deployment_by_name("batch_scoring/nightly")
            if url:
                assert str(client.api_url).rstrip("/") == url  # the Postgres-backed server, not the harness
    assert [(s.schedule.cron, s.schedule.timezone) for s in train.schedules] == [("0 2 * * *", "Asia/Tokyo")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in score.schedules] == [("0 4 * * *", "Asia/Tokyo")]
    assert train.parameters["config"]["data"]["path"] == "plant/telemetry.csv"
    props = train.parameter_openapi_schema["definitions"]["TrainConfig"]["properties"]
    assert props["epochs"]["description"] == TrainConfig.model_fields["epochs"].description
    assert score.parameters["params"]["data"] == "plant/today.csv"
    # one training run at a time: an overlapping tick is cancelled instead of resuming the running one's MLflow run
    assert train.global_concurrency_limit.limit == 1
    assert train.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert (score.global_concurrency_limit.limit, score.concurrency_options.collision_strategy) == (1, "ENQUEUE")


def test_serve_without_a_prefect_server_says_what_to_start(home, monkeypatch):
    from lstm_app.serve import serve_forever

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ServeError, match="prefect server start"):
        serve_forever(build_deployments(_config()))
