"""The package's structure (imports, literals, private names), the configuration, the record,
the fit loop, atomic writes and the results root."""

import ast
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from dpllib import DplError
from dpllib.config import CellConfig, evaluation_interval, training_steps
from dpllib.files import atomic_write
from dpllib.paths import preset_results_dir, results_root
from dpllib.registry import benchmarks
from dpllib.results import make_record
from dpllib.training.loop import BatchOrder, FitCheckpoint, NonFiniteLoss, Trainee, fit

from .conftest import REPO


PACKAGE = REPO / "dpllib"


def _modules() -> dict[str, ast.Module]:
    """dpllib's modules by dotted name, parsed."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text()))
    return out


def _imports(name: str, path: Path, tree: ast.Module, known: set[str]) -> set[str]:
    """The dpllib modules ``name`` imports, anywhere in it (functions too): ``from .x import y``
    is an edge to ``x.y`` when that is a module, else to ``x``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name}


def test_no_import_circle_in_dpllib():
    modules = _modules()
    graph = {name: _imports(name, path, tree, set(modules)) for name, (path, tree) in modules.items()}
    done, path_of = set(), []

    def visit(node):  # depth-first; a node on the current path seen again is a circle
        if node in path_of:
            raise AssertionError("import circle: " + " -> ".join(path_of[path_of.index(node):] + [node]))
        if node in done:
            return
        path_of.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        path_of.pop()
        done.add(node)

    for name in graph:
        visit(name)
    # the layering the registry relies on: nothing below the use cases imports one, or the engine
    lower = [name for name in graph if name in ("dpllib.registry", "dpllib.config", "dpllib.results")
             or name.startswith("dpllib.grid")]
    assert not any(m.startswith(("dpllib.benchmarks", "dpllib.training")) for name in lower for m in graph[name])


def test_a_use_case_imports_dpllib_only_through_dpllib_benchmark():
    """Each use case (dpllib/benchmarks/*.py) takes everything from dpllib.benchmark; every name
    that module offers resolves (some on first use)."""
    import dpllib.benchmark

    modules = _modules()
    use_cases = {name: modules[name] for name in modules if name.startswith("dpllib.benchmarks.")}
    assert set(use_cases) == {f"dpllib.benchmarks.{b}" for b in benchmarks()}
    for name, (path, tree) in use_cases.items():
        imported = {m for m in _imports(name, path, tree, set(modules)) if m.startswith("dpllib")}
        assert imported == {"dpllib.benchmark"}, (name, imported)
    assert all(getattr(dpllib.benchmark, n) is not None for n in dpllib.benchmark.__all__)


def test_each_benchmark_is_named_in_at_most_two_modules_besides_its_own():
    modules = _modules()
    for bench in benchmarks():
        naming = {name for name, (_, tree) in modules.items() for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value == bench}
        naming.discard(f"dpllib.benchmarks.{bench}")
        assert len(naming) <= 2, (bench, sorted(naming))


def test_no_private_name_crosses_a_module_line():
    modules = _modules()
    crossing = []
    for name, (_, tree) in modules.items():
        imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
                    for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                crossing += [f"{name} imports {a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                crossing.append(f"{name} uses {node.value.id}.{node.attr}")
    assert not crossing, crossing


def test_functions_are_short_and_the_grid_is_split_by_job():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines" for name, (_, tree) in _modules().items()
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 60]
    assert not long, long
    grid = {path.name: len(path.read_text().splitlines()) for path in (PACKAGE / "grid").glob("*.py")}
    assert len(grid) >= 6 and max(grid.values()) <= 350, grid


def test_training_steps_and_evaluation_interval():
    assert training_steps({"steps": 7, "epochs": None, "batch_size": 4}, 1000) == 7
    assert training_steps({"steps": None, "epochs": 3, "batch_size": 8}, 100) == 3 * 12
    assert training_steps({"steps": None, "epochs": 2, "batch_size": 8}, 5) == 2  # at least one batch an epoch
    assert evaluation_interval({"steps": 50, "eval_every": 10, "batch_size": 4}, 100) == 10
    assert evaluation_interval({"steps": None, "epochs": 5, "eval_every": 1, "batch_size": 8}, 100) == 12


def test_cell_config_settings_apply_batch_size_and_overrides():
    cfg = CellConfig("autoencoding", "baseline", dataset="cifar10", batch_size=7, overrides={"steps": 3})
    assert cfg.settings()["batch_size"] == 7 and cfg.settings()["steps"] == 3
    with pytest.raises(DplError, match="unknown budget overrides"):
        CellConfig.from_dict({"benchmark": "autoencoding", "network": "baseline", "dataset": "cifar10",
                              "overrides": {"stepz": 1}})


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.0))


def _trainee(name: str, scores: list[float], losses: list[float]):
    model = Scalar()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    it_scores, it_losses = iter(scores), iter(losses)

    def step(batch):
        opt.zero_grad()
        (model.w - batch).pow(2).backward()
        opt.step()
        return next(it_losses)

    return Trainee(name, model, opt, step, lambda: next(it_scores))


def test_fit_keeps_the_best_checkpoint_and_validates_on_schedule():
    # w moves 0 -> 2*1 -> ... (SGD on (w - step)^2); validation after steps 2, 4, 5 scores 1, 3, 2
    t = _trainee("a", [1.0, 3.0, 2.0], [0.5] * 5)
    report = fit([t], lambda i: torch.tensor(float(i + 1)), 5, "test", eval_every=2, progress=False)["a"]
    assert [s for s, _ in report["val_curve"]] == [2, 4, 5] and report["best_step"] == 4
    assert t.model.w.item() == pytest.approx(t.best_state["w"].item())
    assert len(report["loss_curve"]) == 5 and report["seconds_per_step"] > 0


def test_a_warm_started_fit_validates_its_start_but_chooses_among_trained_steps():
    """Step 0 (the warm start) joins the validation curve even when it scores best; the
    checkpoint kept is the best trained one, and the record's rows say start vs fine-tuning."""
    from dpllib.training.points import validation_rows

    t = _trainee("a", [9.0, 1.0, 3.0], [0.5] * 4)
    report = fit([t], lambda i: torch.tensor(float(i + 1)), 4, "test", eval_every=2, progress=False,
                 validate_start=True)["a"]
    assert report["val_curve"] == [[0, 9.0], [2, 1.0], [4, 3.0]] and report["best_step"] == 4
    rows = {r["split"]: r["value"] for r in validation_rows(report["val_curve"], "p", "a")}
    assert rows == pytest.approx({"warm_start": 9.0, "fine_tuning_mean": 2.0, "fine_tuning_sd": 2**0.5})
    assert validation_rows([[2, 1.0], [4, 3.0]], "p", "a") == []  # no warm start validated


@pytest.mark.parametrize("curves, met", [
    # issue 19's offline segmentation: every validation after the warm start lower, falling
    ({0: [0.160, 0.155, 0.150, 0.146, 0.142, 0.139, 0.137], 1: [0.158, 0.15, 0.147, 0.145, 0.14, 0.139, 0.136]}, False),
    # fluctuation: one seed's warm start on a high, the other's on a low
    ({0: [0.244, 0.233, 0.203, 0.214, 0.235, 0.226, 0.213], 1: [0.177, 0.189, 0.185, 0.21, 0.214, 0.188, 0.187]}, True),
])
def test_the_fine_tuning_check_tells_a_fall_from_fluctuation(curves, met):
    """The segmentation baseline 'does not get worse while fine-tuning' check: a warm start
    followed by falling validations fails it; validations that move around the warm start by
    their usual amount pass it."""
    import pandas as pd

    from dpllib.benchmarks import segmentation
    from dpllib.training.points import validation_rows

    rows = [{**r, "seed": seed, "status": "ok", "network": "baseline"}
            for seed, curve in curves.items()
            for r in validation_rows([[10 * i, v] for i, v in enumerate(curve)], None, "baseline")]
    checks = segmentation.learning_checks(pd.DataFrame(rows), pd.DataFrame())
    [check] = [c for c in checks if "fine-tuning" in c.check]
    assert check.met is met


def test_fit_trains_several_models_on_the_same_batches():
    seen = {"a": [], "b": []}
    trainees = [Trainee(n, Scalar(), None, lambda b, n=n: seen[n].append(float(b)) or 0.1) for n in seen]
    fit(trainees, lambda i: torch.tensor(float(i)), 3, "test", progress=False)
    assert seen["a"] == seen["b"] == [0.0, 1.0, 2.0]


def test_fit_stops_on_a_non_finite_loss():
    t = _trainee("a", [], [0.1, math.nan, 0.1])
    with pytest.raises(NonFiniteLoss, match="a became nan at step 2"):
        fit([t], lambda i: torch.tensor(0.0), 3, "test", progress=False)


def test_make_record_turns_an_exception_into_a_failed_record():
    cfg = CellConfig("autoencoding", "baseline", dataset="cifar10")
    record, examples = make_record(cfg, lambda: 1 / 0)
    assert record["status"] == "failed" and record["rows"] == [] and examples == {}
    assert "ZeroDivisionError" in record["error"] and "Traceback" in record["traceback"]
    record, examples = make_record(cfg, lambda: {"rows": [], "examples": {"x": 1}})
    assert record["status"] == "ok" and "examples" not in record and examples == {"x": 1}


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = atomic_write(tmp_path / "a.json", json.dumps({"v": 1}))

    def broken(tmp):
        tmp.write_text('{"v": ')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_one_rule_for_the_results_root(monkeypatch, tmp_path):
    monkeypatch.delenv("DPL_RESULTS", raising=False)
    assert results_root() == REPO / "results"  # a source checkout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DPL_RESULTS", "relative/res")
    assert results_root() == tmp_path / "relative" / "res"
    assert preset_results_dir("tiny") == tmp_path / "relative" / "res" / "tiny"
    assert preset_results_dir("tiny", "elsewhere") == tmp_path / "elsewhere"


def _regression(order_seed: int = 0):
    """A small model fitted to noisy data with Adam, validated on held-out data."""
    torch.manual_seed(0)
    x, w = torch.randn(64, 5), torch.randn(5, 1)
    y = x @ w + 0.1 * torch.randn(64, 1)
    model = nn.Linear(5, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    order = BatchOrder(48, 8, torch.Generator().manual_seed(order_seed))

    def step(idx):
        loss = (model(x[idx]) - y[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    trainee = Trainee("m", model, opt, step, lambda: -(model(x[48:]) - y[48:]).pow(2).mean().item())
    return trainee, order


def test_a_resumed_fit_ends_where_an_uninterrupted_one_ends(tmp_path):
    whole, order = _regression()
    expected = fit([whole], lambda i: order(), 30, "test", eval_every=4, progress=False)["m"]

    crashed, order = _regression()

    def crash_at_17(i):
        if i == 17:
            raise KeyboardInterrupt
        return order()

    ckpt = FitCheckpoint(tmp_path / "m.fit.pt", every_s=0)
    with pytest.raises(KeyboardInterrupt):
        fit([crashed], crash_at_17, 30, "test", eval_every=4, progress=False, checkpoint=ckpt, resumables=[order])
    assert torch.load(ckpt.path, weights_only=False)["step"] == 17

    resumed, order = _regression(order_seed=99)  # a fresh process: state comes from the file
    report = fit([resumed], lambda i: order(), 30, "test", eval_every=4, progress=False, checkpoint=ckpt,
                 resumables=[order])["m"]
    assert report["resumed_at"] == 17
    assert report["loss_curve"] == expected["loss_curve"] and report["val_curve"] == expected["val_curve"]
    assert report["best_step"] == expected["best_step"]
    assert torch.equal(resumed.model.weight, whole.model.weight)


def test_batch_order_reshuffles_each_epoch_and_resumes():
    order = BatchOrder(10, 4, torch.Generator().manual_seed(3))
    first = [order().tolist() for _ in range(2)]  # 2 full batches of 4 per epoch of 10
    state = order.state_dict()
    following = [order().tolist() for _ in range(3)]
    again = BatchOrder(10, 4, torch.Generator().manual_seed(0))
    again.load_state_dict(state)
    assert [again().tolist() for _ in range(3)] == following
    assert len(set(sum(first, []))) == 8  # no item twice within an epoch
