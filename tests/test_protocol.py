"""The deviations table stays in step with the budgets it documents."""

import pytest

from dpllib.benchmark import benchmarks
from dpllib.protocol import deviations_table


@pytest.mark.parametrize("benchmark", list(benchmarks()))
def test_every_paper_setting_is_documented_with_its_value(benchmark):
    descriptor = benchmarks()[benchmark]
    paper = descriptor.budgets["paper"]
    rows = {r.setting: r for r in descriptor.protocol}
    assert all(r.benchmark == benchmark for r in descriptor.protocol)
    assert not set(paper) - set(rows), f"paper settings without a row: {sorted(set(paper) - set(rows))}"
    for key, value in paper.items():
        assert rows[key].documented == value, (
            f"{benchmark}.{key} is {value!r} in the paper budget but the deviations table documents "
            f"{rows[key].documented!r}: update the PROTOCOL rows in dpllib/trainers/{benchmark}.py")
        assert rows[key].why and rows[key].authors


def test_the_table_shows_both_budgets_and_every_reason():
    table = deviations_table()
    assert list(table.columns) == ["benchmark", "setting", "paper", "authors' code", "this project (paper)",
                                   "this project (offline)", "why"]
    lr = table[(table["benchmark"] == "super_resolution") & (table["setting"] == "lr")].iloc[0]
    assert lr["this project (paper)"] == "0.001" and lr["this project (offline)"] == "0.0001"
    assert table["why"].str.len().gt(3).all()
    assert set(deviations_table("similarity")["benchmark"]) == {"similarity", "all"}
