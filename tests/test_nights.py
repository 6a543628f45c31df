"""NIGHTS (issue 20, item 4): a NIGHTS-layout folder built here from real BSDS500 photos with known
votes; DreamSim's filter and splits; a similarity cell scores as DreamSim's formula computed here
independently; the chunked download with data.csv read out of the whole archive by range requests."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFilter

from dpllib import DplError
from dpllib.datasets import NightsTwoAFC, download_nights
from dpllib.datasets.nights import read_rows
from dpllib.benchmarks import similarity

# (split, votes, p, is_imagenet) per triplet; p is DreamSim's credit for the right image
TRIPLETS = [("train", 6, 0.0, True), ("train", 7, 1.0, False), ("train", 6, 0.0, False), ("train", 6, 1.0, True),
            ("val", 6, 0.0, True), ("val", 6, 1.0, False), ("val", 5, 0.0, True),  # 5 votes: left out
            ("test", 6, 0.0, True), ("test", 6, 1.0, False), ("test", 6, 0.0, False), ("test", 4, 1.0, True)]


def _nights_folder(root, photos_dir):
    """Triplet i: the reference is a BSDS500 photo; the blurred copy is the closer image, on the
    left where p = 0 and on the right where p = 1; the other side is another photo."""
    photos = sorted(photos_dir.glob("*.jpg"))
    folder = root / "nights"
    rows = []
    for i, (split, votes, p, imagenet) in enumerate(TRIPLETS):
        ref = Image.open(photos[i]).convert("RGB").crop((0, 0, 320, 320))
        near, far = ref.filter(ImageFilter.GaussianBlur(1.5)), Image.open(photos[i + 20]).convert("RGB").crop((0, 0, 320, 320))
        left, right = (near, far) if p == 0.0 else (far, near)
        names = [f"ref/000/{i:03d}.png", f"distort/000/{i:03d}_0.png", f"distort/000/{i:03d}_1.png"]
        for name, img in zip(names, (ref, left, right)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            img.save(folder / name)
        rows.append({"id": i, "votes": votes, "left_vote": p, "right_vote": 1 - p, "ref_path": names[0],
                     "left_path": names[1], "right_path": names[2], "split": split, "is_imagenet": imagenet,
                     "prompt": "an image of a photo"})
    pd.DataFrame(rows).to_csv(folder / "data.csv", index=False)
    return folder


@pytest.fixture()
def nights(tmp_path, shared_data, data_env, monkeypatch):
    folder = _nights_folder(tmp_path, shared_data / "bsds500" / "images" / "val")
    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path))
    return folder


def test_dreamsims_filter_and_splits(nights):
    assert [len(read_rows(nights, s)) for s in ("train", "val", "test")] == [4, 2, 3]  # votes >= 6
    assert read_rows(nights, "test_imagenet")["id"].tolist() == [7]
    assert read_rows(nights, "test_no_imagenet")["id"].tolist() == [8, 9]
    data = NightsTwoAFC(nights, "val").tensors()
    assert data["ref"].shape == (2, 3, 224, 224) and data["ref"].dtype == torch.uint8  # 224 px, bicubic
    assert data["judge"].tolist() == [0.0, 1.0]
    with pytest.raises(DplError, match="NIGHTS splits are"):
        read_rows(nights, "dev")


def test_a_subset_download_keeps_the_triplets_it_has(nights):
    (nights / "distort" / "000" / "008_1.png").unlink()
    test = NightsTwoAFC(nights, "test")
    assert len(test) == 2 and test.missing == 1


def _dreamsim_2afc(folder, split) -> float:
    """DreamSim's score.py on pixel MSE, from the files: resize 224 bicubic (PIL), distances,
    (d0 < d1)(1 - p) + (d1 < d0) p + 0.5 (d0 == d1)."""
    rows = read_rows(folder, split)

    def image(path):
        return np.asarray(Image.open(folder / path).convert("RGB").resize((224, 224), Image.BICUBIC), dtype=np.float64) / 255

    credit = []
    for r in rows.itertuples():
        ref, left, right = image(r.ref), image(r.left), image(r.right)
        d0, d1 = ((ref - left) ** 2).mean(), ((ref - right) ** 2).mean()
        credit.append((d0 < d1) * (1 - r.p) + (d1 < d0) * r.p + 0.5 * (d0 == d1))
    return float(np.mean(credit))


def test_a_similarity_cell_scores_as_dreamsims_formula(nights):
    record, _ = similarity.run({"benchmark": "similarity", "network": "baseline", "points": [], "weights": "none",
                                "dataset": "nights", "budget": "smoke", "seed": 0, "device": "cpu"}, progress=False)
    assert record["status"] == "ok", record.get("traceback")
    scores = {r["split"]: r["value"] for r in record["rows"] if r["metric"] == "2afc"}
    assert scores["val"] == pytest.approx(_dreamsim_2afc(nights, "val"))
    assert scores["test"] == pytest.approx(_dreamsim_2afc(nights, "test"))
    assert scores["val"] == scores["test"] == 1.0  # the blurred copy is nearer in pixels: every vote is met
    lossnet, _ = similarity.run({"benchmark": "similarity", "network": "efficientnet_lite0", "points": ["stage1"],
                                 "weights": "random", "dataset": "nights", "budget": "smoke", "seed": 0, "device": "cpu",
                                 "overrides": {"steps": 1, "batch_size": 4}}, progress=False)
    assert lossnet["status"] == "ok", lossnet.get("traceback")  # lin calibrated on the train split
    assert {r["split"] for r in lossnet["rows"] if r["metric"] == "2afc_lin"} == {"val", "test", "mean"}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def test_chunked_download_reads_data_csv_out_of_the_whole_archive(nights, tmp_path, http_server):
    """From a local server: data.csv by range requests out of nights.zip (its 2 MB of images are
    not fetched), then folder 000 of ref and distort from their chunks."""
    server, url = http_server
    csv = (nights / "data.csv").read_bytes()
    server.files["/nights.zip"] = _zip({"nights/ref/000/000.png": np.random.default_rng(0).bytes(2 << 20),
                                        "nights/data.csv": csv})
    for kind in ("ref", "distort"):
        server.files[f"/chunks/{kind}/000.zip"] = _zip({f"000/{p.name}": p.read_bytes()
                                                        for p in sorted((nights / kind / "000").iterdir())})
    root = tmp_path / "fresh"
    root.mkdir()
    folder = download_nights(root, subset=1, zip_url=f"{url}/nights.zip", chunk_url=url + "/chunks/{kind}/{index:03d}.zip")
    assert (folder / "data.csv").read_bytes() == csv
    assert sorted(p.name for p in (folder / "distort" / "000").iterdir()) == sorted(
        p.name for p in (nights / "distort" / "000").iterdir())
    fetched = [r for path, r in server.requests if path == "/nights.zip"]
    assert fetched and all(r is not None for r in fetched)  # only ranges of the archive
    assert len(NightsTwoAFC(folder, "val")) == 2
    with pytest.raises(DplError, match="subset is a number of NIGHTS folders"):
        download_nights(root, subset=0)


def test_the_reference_table_shows_nights_figures_with_their_source_and_why_they_differ():
    from dpllib.narrative import reference_table

    columns = ["status", "benchmark", "metric", "split", "network", "weights", "dataset", "budget", "point", "value"]
    table = pd.DataFrame([["ok", "similarity", "2afc", "test", "DreamSim ensemble", "nights", "nights", "paper", None,
                           0.99]], columns=columns)  # even a row named like it is never "the same"
    rows = reference_table(table)
    nights = rows[rows["source"].str.startswith("DreamSim README")]
    assert len(nights) == 10 and set(nights["measure"]) == {"2afc val", "2afc test"}
    assert nights.loc[nights["network"] == "DreamSim ensemble", "figure"].tolist() == [96.9, 96.2]
    assert nights["status"].str.startswith("not comparable: DreamSim's model fine-tuned").all()
    assert nights["this run"].isna().all()
    assert rows["source"].str.startswith("LPIPS alex-lin").sum() == 6
