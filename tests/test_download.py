"""dpllib.download against a real HTTP server on 127.0.0.1."""

import hashlib

import pytest

from dpllib.download import download, sha256_of
from dpllib.errors import DplError, UnavailableError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_places_file(http_server, tmp_path):
    server, base = http_server
    server.files["/a.bin"] = PAYLOAD
    dest = download(f"{base}/a.bin", tmp_path / "a.bin", DIGEST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()
    # a second call finds the verified file and makes no request
    download(f"{base}/a.bin", dest, DIGEST, progress=False)
    assert len(server.requests) == 1


def test_interrupted_transfer_resumes(http_server, tmp_path):
    server, base = http_server
    server.files["/b.bin"] = PAYLOAD
    server.break_once.add("/b.bin")
    with pytest.raises(UnavailableError, match="resumes"):
        download(f"{base}/b.bin", tmp_path / "b.bin", DIGEST, progress=False)
    part = tmp_path / "b.bin.part"
    assert not (tmp_path / "b.bin").exists()
    arrived = part.stat().st_size
    assert 0 < arrived < len(PAYLOAD)
    download(f"{base}/b.bin", tmp_path / "b.bin", DIGEST, progress=False)
    assert (tmp_path / "b.bin").read_bytes() == PAYLOAD
    assert server.requests[-1][1] == f"bytes={arrived}-"  # only the rest was requested


def test_wrong_checksum_is_refused_and_nothing_left(http_server, tmp_path):
    server, base = http_server
    server.files["/c.bin"] = PAYLOAD
    with pytest.raises(DplError, match="sha256"):
        download(f"{base}/c.bin", tmp_path / "c.bin", "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_names_url_and_destination(tmp_path):
    dest = tmp_path / "x" / "d.bin"
    with pytest.raises(UnavailableError) as err:
        download("http://127.0.0.1:9/d.bin", dest, DIGEST, progress=False, timeout=2)
    assert "http://127.0.0.1:9/d.bin" in str(err.value) and str(dest) in str(err.value)


def test_existing_file_with_wrong_checksum_is_reported(tmp_path):
    dest = tmp_path / "e.bin"
    dest.write_bytes(b"not it")
    with pytest.raises(DplError, match="Delete it"):
        download("http://127.0.0.1:9/e.bin", dest, DIGEST, progress=False)
    assert sha256_of(dest) == hashlib.sha256(b"not it").hexdigest()
