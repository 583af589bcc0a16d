"""The main job's plan and its rule for re-executing notebooks."""
from chromo import config, pipeline


def test_plan_covers_every_notebook_and_run():
    cfg = config.load("cpu")
    steps = pipeline.plan(cfg)
    nbs = {s["nb"] for s in steps}
    assert nbs == {p.stem for p in (config.project_root() / "notebooks").glob("*.ipynb")}
    trains = [s for s in steps if s["nb"] == "02_train"]
    assert len(trains) == sum(len(m) for m in cfg.models.values())
    assert all(s["params"]["config"] == "configs/cpu.yaml" for s in steps)


def test_stamp_changes_with_parameters_and_sources():
    cfg = config.load("smoke")
    step = pipeline.plan(cfg)[0]
    a = pipeline.stamp(step, cfg, "data", "src")
    assert a == pipeline.stamp(step, cfg, "data", "src")
    assert a != pipeline.stamp({**step, "params": {**step["params"], "seed": 1}}, cfg, "data", "src")
    assert a != pipeline.stamp(step, cfg, "data", "src2")
    assert a != pipeline.stamp(step, cfg, "data2", "src")


def test_toc_lists_the_plan(tmp_path):
    cfg = config.load("smoke")
    pipeline.write_toc(cfg, tmp_path)
    toc = (tmp_path / "_toc.yml").read_text()
    for s in pipeline.plan(cfg):
        assert f"notebooks/{s['out']}" in toc
