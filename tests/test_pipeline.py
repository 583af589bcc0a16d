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


def test_present_folds_code_and_states_the_parameters_once(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell('config = "configs/smoke.yaml"\nbeta = 40', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('config = "configs/cpu.yaml"', metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("y = 2", metadata={"tags": ["remove-input"]})]
    path = tmp_path / "05_label_redistribution.ipynb"
    nbformat.write(nb, path)
    pipeline._present(path, {"nb": "05_label_redistribution", "params": {"config": "configs/cpu.yaml", "beta": 30}})
    cells = nbformat.read(path, as_version=4).cells
    tags = [c.metadata.get("tags", []) for c in cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]          # both parameters cells hidden
    line = cells[3].source                                                 # the one line, after the injected cell
    assert "`config = 'configs/cpu.yaml'`" in line and "`beta = 30`" in line and "`distance = 'cosine'`" in line
    assert tags[4] == ["hide-input"] and tags[5] == ["remove-input"]       # code folded; explicit tags kept
    assert sum("Parameters of this execution" in c.source for c in cells) == 1
