"""The deviations table stays in step with the budgets it documents (of the use cases in the
study: those with a Study)."""

import pytest

from dpllib.protocol import deviations_table
from dpllib.registry import benchmarks


@pytest.mark.parametrize("benchmark", [name for name, b in benchmarks().items() if b.study])
def test_every_paper_setting_is_documented_with_its_value(benchmark):
    descriptor = benchmarks()[benchmark]
    paper = descriptor.study.budget
    assert descriptor.budgets["paper"] == paper  # the paper budget is the study's
    rows = {r.setting: r for r in descriptor.protocol}
    assert all(r.benchmark == benchmark for r in descriptor.protocol)
    assert not set(paper) - set(rows), f"paper settings without a row: {sorted(set(paper) - set(rows))}"
    for key, value in paper.items():
        assert rows[key].documented == value, (
            f"{benchmark}.{key} is {value!r} in the paper budget but the deviations table documents "
            f"{rows[key].documented!r}: update the PROTOCOL rows in dpllib/benchmarks/{benchmark}.py")
        assert rows[key].why and rows[key].authors


def test_the_table_shows_both_budgets_and_every_reason():
    table = deviations_table()
    assert list(table.columns) == ["benchmark", "setting", "paper", "authors' code", "authors' file",
                                   "this project (paper)", "this project (offline)", "why"]
    # every row that states what the authors' code does names the file it read that in
    stated = table[table["authors' code"] != "-"]
    assert stated["authors' file"].str.fullmatch(r"[\w/]+\.py").all(), stated.loc[
        ~stated["authors' file"].str.fullmatch(r"[\w/]+\.py"), ["setting", "authors' code"]]
    lr = table[(table["benchmark"] == "super_resolution") & (table["setting"] == "lr")].iloc[0]
    assert lr["this project (paper)"] == "0.001" and lr["this project (offline)"] == "0.0001"
    assert table["why"].str.len().gt(3).all()
    assert set(deviations_table("similarity")["benchmark"]) == {"similarity", "all"}


@pytest.mark.parametrize("benchmark,authors", [("segmentation", 64_546), ("super_resolution", 401_865),
                                               ("autoencoding", 4_382_723)])
def test_the_paper_budget_trains_the_authors_models(benchmark, authors):
    """Parameter counts computed from the code at the paper budget equal the authors' (their
    U-Net; Transform_Network_Super_x4 with its output batch norm; FourLayerCVAE at 64 px without
    the unused logvar head), and the methods table shows the computed counts beside theirs."""
    from dpllib.protocol import parameter_count

    assert parameter_count(benchmark, "paper") == authors
    table = deviations_table(benchmark)
    row = table[table["setting"] == "parameters"].iloc[0]
    assert row["this project (paper)"] == f"{authors:,}" and f"{authors:,}" in row["authors' code"]
    assert row["this project (offline)"] == f"{parameter_count(benchmark, 'offline'):,}"


def test_the_authors_autoencoder_takes_their_sizes():
    import torch

    from dpllib.errors import DplError
    from dpllib.benchmarks.autoencoding import FourLayerAE

    for size in (64, 96):  # SVHN padded to 64, STL-10
        assert FourLayerAE(size).eval()(torch.rand(2, 3, size, size)).shape == (2, 3, size, size)
    with pytest.raises(DplError, match="64 \\+ 16n px"):
        FourLayerAE(32)
