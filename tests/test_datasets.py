"""Data: the data root, loaders on real shared data and fabricated BAPPS trees, bad data,
downloads of fabricated archives from a local HTTP server."""

import io
import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from dpllib import DplError, UnavailableError
from dpllib.datasets import (
    DATASETS, JND, ImageCrops, MassRoads, SRTestSet, SRTrainSet, TwoAFC, autoencoder_dataset, dataset_path,
    full_resolution_pair, make_severity_2afc, training_pair, read_image, road_files,
)
from dpllib.datasets.core import DatasetSpec, RemoteFile, fetch, list_images


pytestmark = pytest.mark.usefixtures("data_env")


def _png(path, size=64, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=None).save(path)


def make_bapps_2afc(folder, n=3):
    for i in range(n):
        for k, part in enumerate(("ref", "p0", "p1")):
            _png(folder / part / f"{i:06d}.png", seed=10 * i + k)
        (folder / "judge").mkdir(exist_ok=True)
        np.save(folder / "judge" / f"{i:06d}.npy", np.array([i / n], dtype=np.float32))


def test_bapps_2afc_and_jnd_in_the_native_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path))
    make_bapps_2afc(tmp_path / "bapps" / "2afc" / "val" / "cnn")
    jnd = tmp_path / "bapps" / "jnd" / "val" / "traditional"
    for i in range(2):
        _png(jnd / "p0" / f"{i}.png", seed=i)
        _png(jnd / "p1" / f"{i}.png", seed=i + 5)
        (jnd / "same").mkdir(exist_ok=True)
        np.save(jnd / "same" / f"{i}.npy", np.array([0.25 * i]))
    from dpllib.datasets import bapps_2afc, bapps_jnd

    ds = bapps_2afc("val", "cnn")
    item = ds[1]
    assert len(ds) == 3 and item["ref"].shape == (3, 64, 64) and item["judge"] == pytest.approx(1 / 3)
    assert 0 <= item["p0"].min() and item["p0"].max() <= 1
    expected = np.array(Image.open(tmp_path / "bapps/2afc/val/cnn/p1/000001.png"))
    assert torch.equal((item["p1"] * 255).round().byte(), torch.from_numpy(expected).permute(2, 0, 1))
    j = bapps_jnd("traditional")
    assert len(j) == 2 and j[1]["same"] == pytest.approx(0.25) and set(j[0]) == {"p0", "p1", "same"}


def test_bapps_wrong_layout_names_the_missing_folder(tmp_path):
    folder = tmp_path / "cnn"
    make_bapps_2afc(folder)
    import shutil

    shutil.rmtree(folder / "p1")
    with pytest.raises(DplError, match="no 'p1' sub-folder"):
        TwoAFC(folder)
    os.remove(folder / "judge" / "000000.npy")
    with pytest.raises(DplError):
        JND(folder)


def test_missing_data_set_error_says_where_and_what(tmp_path, monkeypatch):
    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path))
    with pytest.raises(UnavailableError) as err:
        dataset_path("bapps_2afc_val", download_missing=False)
    text = str(err.value)
    assert "bapps/2afc/val" in text and "twoafc_val.tar.gz" in text


def test_missing_data_root_says_how_to_set_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path / "nope"))
    with pytest.raises(DplError, match="DPL_DATA_ROOT"):
        dataset_path("set5")


def test_download_and_extract_from_a_local_server(tmp_path, http_server):
    server, base = http_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(2):
            img = io.BytesIO()
            Image.new("RGB", (8, 8), (i, 0, 0)).save(img, format="PNG")
            info = tarfile.TarInfo(f"Set5_HR/img{i}.png")
            info.size = len(img.getvalue())
            tar.addfile(info, io.BytesIO(img.getvalue()))
    server.files["/Set5_HR.tar.gz"] = buf.getvalue()
    import hashlib

    spec = DatasetSpec("set5", "sr/Set5", (".",), files=((RemoteFile(f"{base}/Set5_HR.tar.gz",
                       hashlib.sha256(buf.getvalue()).hexdigest()), "."),), moves=(("Set5_HR", "."),))
    fetch(spec, tmp_path)
    assert sorted(p.name for p in (tmp_path / "sr" / "Set5").iterdir()) == ["img0.png", "img1.png"]
    # a wrong checksum: refused, and no data set folder appears
    bad = DatasetSpec("set14", "sr/Set14", (".",), files=((RemoteFile(f"{base}/Set5_HR.tar.gz", "0" * 64), "."),))
    (tmp_path / ".downloads" / "Set5_HR.tar.gz").unlink()
    with pytest.raises(DplError, match="sha256"):
        fetch(bad, tmp_path)
    assert not (tmp_path / "sr" / "Set14").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".set14")]


def test_listing_download_for_mass_roads_layout(tmp_path, http_server):
    server, base = http_server
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    server.files["/train/sat/index.html"] = b'<a href="a.tiff">a</a> <a href="../">up</a>'
    server.files["/train/sat/a.tiff"] = png.getvalue()
    spec = DatasetSpec("roads", "roads", ("train/sat",),
                       files=((RemoteFile(f"{base}/train/sat/index.html", listing=True), "train/sat"),))
    fetch(spec, tmp_path)
    assert (tmp_path / "roads" / "train" / "sat" / "a.tiff").read_bytes() == png.getvalue()


def test_bad_images_are_named_and_modes_converted(tmp_path):
    good = tmp_path / "g.png"
    _png(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:100])
    with pytest.raises(DplError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(DplError, match="text.jpg"):
        read_image(tmp_path / "text.jpg")
    Image.fromarray(np.full((4, 4), 100, np.uint8)).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png").shape == (4, 4, 3)
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [10, 20, 30]
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png")[0, 0].tolist() == [255, 255, 255]


def test_sr_sets_on_real_images():
    set5 = SRTestSet("set5")
    lr, hr = set5[0]
    assert len(set5) == 5 and hr.shape[-2] == 4 * lr.shape[-2] and hr.shape[-1] % 4 == 0
    assert len(SRTestSet("set14")) == 14 and len(SRTestSet("bsd100")) == 100
    train = SRTrainSet("bsds500", limit=6)
    lr, hr = train[0]
    assert lr.shape == (3, 72, 72) and hr.shape == (3, 288, 288)
    lr, hr = set5.pairs(288)[0]
    assert lr.shape == (3, 72, 72) and hr.shape == (3, 288, 288)


def test_image_crops_are_centre_crops_of_the_photos():
    """ImageCrops: one crop per photo of a split, uint8, at the photo's own resolution (the centre
    pixels of the decoded photo) or after resizing its short side; a seeded sample keeps name
    order; bad names and too-large crops are errors that say what to pass."""
    crops = ImageCrops("bsds500", "test", 64, limit=3, seed=1)
    assert crops.crops.shape == (3, 3, 64, 64) and crops.crops.dtype == torch.uint8 and len(crops) == 3
    assert crops.files == sorted(crops.files) and crops.files == ImageCrops("bsds500", "test", 64, limit=3, seed=1).files
    photo = read_image(crops.files[0])
    h, w = photo.shape[:2]
    top, left = (h - 64) // 2, (w - 64) // 2
    assert torch.equal(crops.crops[0], torch.from_numpy(photo[top:top + 64, left:left + 64]).permute(2, 0, 1))
    assert 0 <= crops[0].min() and crops[0].max() <= 1 and crops[0].dtype == torch.float32
    assert ImageCrops("set5", "test", 32, short_side=32).crops.shape == (5, 3, 32, 32)
    with pytest.raises(DplError, match="smaller than the 600 px crop"):
        ImageCrops("set5", "test", 600, limit=1)
    with pytest.raises(DplError, match="bsds500 splits are .*got 'valid'"):
        ImageCrops("bsds500", "valid", 64)
    with pytest.raises(DplError, match="ImageCrops data set must be one of"):
        ImageCrops("coco", "train", 64)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a.float() / 255 - b.float() / 255) ** 2).mean()))


def test_sr_inputs_are_made_as_the_authors_make_them():
    """The study's pipeline written out as their code runs it (super_res/main_utils.py: PIL
    blur of the whole photo, torchvision Resize + CenterCrop on PIL images) against this
    project's on a Set5 photo: >= 40 dB PSNR between them (the way before this test, HR first,
    then blur and bicubic x1/4 without antialiasing, was ~37 dB away)."""
    import torchvision.transforms as T
    from PIL import Image, ImageFilter

    path = list_images(dataset_path("set5"))[2]
    photo = Image.open(path).convert("RGB")
    blurred = photo.filter(ImageFilter.GaussianBlur(radius=1))
    to_uint8 = T.Compose([T.PILToTensor()])
    theirs_hr = to_uint8(T.CenterCrop(288)(T.Resize(288)(photo)))
    theirs_lr = to_uint8(T.CenterCrop(72)(T.Resize(72, interpolation=T.InterpolationMode.BICUBIC)(blurred)))
    ours_lr, ours_hr = training_pair(read_image(path))
    assert _psnr(ours_lr, theirs_lr) >= 40 and _psnr(ours_hr, theirs_hr) >= 40
    # full resolution: the blurred photo, cropped to a multiple of 4, resized by 1/4
    full_lr, full_hr = full_resolution_pair(read_image(path))
    w, h = photo.size[0] // 4 * 4, photo.size[1] // 4 * 4
    theirs_full = to_uint8(blurred.crop((0, 0, w, h)).resize((w // 4, h // 4), Image.BICUBIC))
    assert full_hr.shape[-2:] == (h, w) and _psnr(full_lr, theirs_full) >= 40


def test_roads_subset_split_is_deterministic_and_disjoint():
    splits = {s: road_files(s) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [16, 4, 4]
    names = [p.name for v in splits.values() for p, _ in v]
    assert len(set(names)) == 24 and splits == {s: road_files(s) for s in splits}
    val = MassRoads("val")
    assert val.images.shape[1:] == (3, 224, 224) and val.masks.dtype == torch.bool
    assert val.full_masks.shape[-2:] == (1500, 1500)  # scored at the original resolution
    img, mask = val.crops(torch.tensor([0, 1]), 64, torch.Generator().manual_seed(0))
    assert img.shape == (2, 3, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0}
    again = val.crops(torch.tensor([0, 1]), 64, torch.Generator().manual_seed(0))
    assert torch.equal(img, again[0])  # crops and flips come from the generator only
    with pytest.raises(DplError, match=r"crop 512 is larger than the resized images \(224, 224\); lower the crop"):
        val.crops(torch.tensor([0]), 512, torch.Generator())  # (a grid test's failing cell once covered this)


@pytest.mark.parametrize("flips, vertical", [("horizontal", False), ("both", True)])
def test_road_crops_flip_as_the_setting_says(flips, vertical):
    """The study's code flips horizontally only: every crop of an image whose rows all differ
    keeps its rows in order; 'both' also flips some vertically."""
    val = MassRoads("val")
    rows = torch.arange(224, dtype=torch.uint8).view(1, 1, 224, 1).expand(1, 3, 224, 224).clone()
    val.images = rows.repeat(16, 1, 1, 1)
    val.masks = torch.zeros(16, 1, 224, 224, dtype=torch.bool)
    img, _ = val.crops(torch.arange(16), 64, torch.Generator().manual_seed(1), flips=flips)
    upside_down = (img[:, 0, 0, 0] > img[:, 0, -1, 0])
    assert bool(upside_down.any()) == vertical
    with pytest.raises(DplError, match="flips must be"):
        val.crops(torch.arange(2), 64, torch.Generator(), flips="vertical")


def test_roads_no_data_areas_are_found():
    """The subset's tiles are partly outside the imaged area (white) while the map draws roads
    there; imaged() tells those pixels apart."""
    from dpllib.datasets.roads import imaged

    test = MassRoads("test", size=None)
    inside = test.full_imaged
    assert 0.3 < inside.float().mean() < 0.9
    white = test.images.permute(1, 0, 2, 3)[:, ~inside[:, 0]]
    assert (white >= 250).all()
    assert torch.equal(imaged(test.images), inside)
    roads_outside = (test.full_masks & ~inside).sum() / test.full_masks.sum()
    assert roads_outside > 0.2  # roads that no model can see


def test_cifar10_local_folders():
    ds = autoencoder_dataset("cifar10", "test", limit=50)
    x, y = ds[0]
    assert len(ds) == 50 and x.shape == (3, 32, 32) and set(ds.tensors[1].tolist()) == set(range(10))


def test_svhn_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path))
    with pytest.raises(UnavailableError, match="svhn"):
        autoencoder_dataset("svhn", "test")


def test_severity_2afc_is_deterministic_and_correct_by_construction(tmp_path, shared_data):
    photos = sorted((shared_data / "bsds500" / "images" / "train").glob("*.jpg"))[:5]
    a = make_severity_2afc(photos, tmp_path / "a", n_per_distortion=4, seed=3)
    b = make_severity_2afc(photos, tmp_path / "b", n_per_distortion=4, seed=3)
    for kind in ("blur", "jpeg"):
        da, db = TwoAFC(a / "2afc" / "val" / kind), TwoAFC(b / "2afc" / "val" / kind)
        assert torch.equal(da.tensors()["p0"], db.tensors()["p0"])
        # the milder copy is closer to the reference in pixels too (a sanity check of the labels)
        t = da.tensors()
        d0 = (t["p0"].float() - t["ref"].float()).abs().mean((1, 2, 3))
        d1 = (t["p1"].float() - t["ref"].float()).abs().mean((1, 2, 3))
        assert torch.equal((d1 < d0).float(), t["judge"])


@pytest.mark.slow
def test_equal_mse_2afc_defeats_pixel_distance(tmp_path, shared_data):
    """Both distortions of a triplet have the same pixel MSE (within 0.6%), the larger on each
    side for half of the triplets, so pixel L2 scores exactly 0.5; the set is deterministic."""
    from dpllib.datasets import make_equal_mse_2afc
    from dpllib.metrics import twoafc_score

    photos = sorted((shared_data / "bsds500" / "images" / "train").glob("*.jpg"))[:20]
    a = make_equal_mse_2afc(photos, tmp_path / "a", n_per_kind=80, seed=4)
    b = make_equal_mse_2afc(photos, tmp_path / "b", n_per_kind=80, seed=4)
    scores = []
    for kind in ("luminance", "contrast", "translation"):
        t = TwoAFC(a / "2afc" / "val" / kind).tensors()
        assert torch.equal(t["p1"], TwoAFC(b / "2afc" / "val" / kind).tensors()["p1"])
        ref, p0, p1 = (t[k].double() for k in ("ref", "p0", "p1"))
        d0, d1 = (ref - p0).pow(2).mean((1, 2, 3)), (ref - p1).pow(2).mean((1, 2, 3))
        relative = (d0 - d1).abs() / torch.minimum(d0, d1)
        assert relative.max() < 0.006 and relative.min() > 0.0004  # never tied, never far
        scores.append(twoafc_score(d0, d1, t["judge"]))
    assert scores == [0.5, 0.5, 0.5]  # the larger MSE falls on each side for half of every grade


@pytest.mark.slow
def test_equal_mse_2afc_is_graded_for_imagenet_features(tmp_path, shared_data):
    """The grades make the set neither saturated nor impossible: ImageNet features (Lite0's
    blocks.3, uncalibrated LPIPS-style distance) find the closer image less often as the
    structural share of its change grows, every grade in turn; overall inside 0.6-0.95."""
    import json

    from dpllib import PerceptualLoss
    from dpllib.datasets import make_equal_mse_2afc
    from dpllib.datasets.synthetic import GRADES

    photos = sorted((shared_data / "bsds500" / "images" / "train").glob("*.jpg"))[:40]
    folder = make_equal_mse_2afc(photos, tmp_path / "set", n_per_kind=80, seed=0)
    meta = json.loads((folder / "meta.json").read_text())
    loss = PerceptualLoss("efficientnet_lite0", "blocks.3", distance="lpips", reduction="none").eval()
    right, grades = [], []
    for kind in ("luminance", "contrast", "translation"):
        t = TwoAFC(folder / "2afc" / "val" / kind).tensors()
        assert [m["grade"] for m in meta[kind]] == [GRADES[i % len(GRADES)] for i in range(80)]
        with torch.no_grad():
            ref, p0, p1 = (t[k].float() / 255 for k in ("ref", "p0", "p1"))
            d0, d1 = loss(p0, ref).flatten(), loss(p1, ref).flatten()
        right.append(((d1 < d0).float() == t["judge"].flatten()).numpy())
        grades.append([m["grade"] for m in meta[kind]])
    right, grades = np.concatenate(right), np.array(sum(grades, []))
    by_grade = [right[grades == g].mean() for g in GRADES]
    assert by_grade[0] > 0.9 and by_grade[-1] < 0.85 and by_grade[0] - by_grade[-1] > 0.15, by_grade
    assert 0.6 <= right.mean() <= 0.95


def test_decode_cache_is_reused(tmp_path):
    from dpllib.datasets import DecodeCache

    _png(tmp_path / "a.png")
    cache = DecodeCache(tmp_path / "cache")
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.ones(2)}

    cache.get([tmp_path / "a.png"], "t", build)
    assert cache.get([tmp_path / "a.png"], "t", build)["x"].sum() == 2 and len(calls) == 1
    cache.get([tmp_path / "a.png"], "other transform", build)
    assert len(calls) == 2


def test_registry_names_sources():
    for spec in DATASETS.values():
        assert spec.layout
    assert DATASETS["bapps_2afc_val"].files[0][0].url.endswith("twoafc_val.tar.gz")


def test_fetch_adds_a_split_beside_an_existing_one(tmp_path, http_server):
    """Fetching BAPPS train next to an existing val leaves val untouched (not copied, not moved)."""
    import hashlib

    server, base = http_server
    make_bapps_2afc(tmp_path / "bapps" / "2afc" / "val" / "cnn", n=1)
    val_inode = (tmp_path / "bapps" / "2afc" / "val" / "cnn" / "ref" / "000000.png").stat().st_ino
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"judge"
        info = tarfile.TarInfo("2afc/train/mix/judge/000000.npy")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    server.files["/twoafc_train.tar.gz"] = buf.getvalue()
    spec = DatasetSpec("bapps_2afc_train", "bapps", ("2afc/train",), files=((RemoteFile(
        f"{base}/twoafc_train.tar.gz", hashlib.sha256(buf.getvalue()).hexdigest()), "."),))
    fetch(spec, tmp_path)
    assert (tmp_path / "bapps" / "2afc" / "train" / "mix" / "judge" / "000000.npy").read_bytes() == b"judge"
    assert (tmp_path / "bapps" / "2afc" / "val" / "cnn" / "ref" / "000000.png").stat().st_ino == val_inode
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bapps")]


def test_jnd_is_scored_per_split_and_pooled_as_the_authors_do(tmp_path, monkeypatch):
    """A BAPPS-layout folder (fabricated) through the similarity benchmark with pixel L2: JND mAP
    per split, their mean (LPIPS's) and one mAP over both splits pooled (the authors')."""
    from dpllib.datasets.bapps import JND_VAL, TWOAFC_TRAIN, TWOAFC_VAL
    from dpllib.metrics import jnd_map
    from dpllib.benchmarks import similarity

    monkeypatch.setenv("DPL_DATA_ROOT", str(tmp_path))
    for split, subsets in (("val", TWOAFC_VAL), ("train", TWOAFC_TRAIN)):
        for subset in subsets:
            make_bapps_2afc(tmp_path / "bapps" / "2afc" / split / subset)
    same, pixel = {}, {}
    for j, subset in enumerate(JND_VAL):
        folder = tmp_path / "bapps" / "jnd" / "val" / subset
        same[subset] = [0.9, 0.1, 0.6, 0.3][j:j + 3]
        for i, s in enumerate(same[subset]):
            _png(folder / "p0" / f"{i}.png", seed=100 * j + i)
            _png(folder / "p1" / f"{i}.png", seed=100 * j + i + 50)
            (folder / "same").mkdir(exist_ok=True)
            np.save(folder / "same" / f"{i}.npy", np.array([s]))
        p0, p1 = (torch.stack([torch.from_numpy(np.array(Image.open(folder / part / f"{i}.png"))).float() / 255
                               for i in range(3)]) for part in ("p0", "p1"))
        pixel[subset] = ((p0 - p1) ** 2).mean((1, 2, 3))
    record, _ = similarity.run({"benchmark": "similarity", "dataset": "bapps", "network": "baseline", "points": [],
                                "weights": "none", "seed": 0, "budget": "smoke", "device": "cpu"}, progress=False)
    assert record["status"] == "ok", record.get("error")
    jnd = {r["split"]: r["value"] for r in record["rows"] if r["metric"] == "jnd_map"}
    assert set(jnd) == {*JND_VAL, "mean", "pooled"}
    for subset in JND_VAL:
        assert jnd[subset] == pytest.approx(jnd_map(pixel[subset], same[subset]))
    assert jnd["mean"] == pytest.approx(np.mean([jnd[s] for s in JND_VAL]))
    assert jnd["pooled"] == pytest.approx(jnd_map(torch.cat([pixel[s] for s in JND_VAL]), sum(same.values(), [])))
