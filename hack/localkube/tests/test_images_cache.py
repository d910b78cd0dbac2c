"""The image archive cache keeps a few versions of each repository, not every one ever built."""

from __future__ import annotations

import os
from pathlib import Path

from localkube.images import prune_archives


def _archive(folder: Path, name: str, age: int) -> Path:
    path = folder / name
    path.write_bytes(b"layer")
    os.utime(path, (1_000_000 - age, 1_000_000 - age))
    return path


def test_the_oldest_archives_of_a_repository_go_and_other_repositories_stay(
    tmp_path: Path,
) -> None:
    api = [_archive(tmp_path, f"localhost_credit-api_{tag}-{tag}0id.tar", age) for age, tag in
           enumerate(["aaaa", "bbbb", "cccc", "dddd", "eeee"])]  # fmt: skip
    live = _archive(tmp_path, "localhost_credit-api-live-update_ffff-1111.tar", age=99)
    nested = _archive(tmp_path, "localhost_credit-api_extra_gggg-2222.tar", age=98)

    removed = prune_archives(tmp_path, "localhost/credit-api", keep=3)

    assert sorted(removed) == sorted(api[3:])
    assert sorted(tmp_path.iterdir()) == sorted([*api[:3], live, nested])


def test_fewer_archives_than_kept_are_all_kept(tmp_path: Path) -> None:
    kept = _archive(tmp_path, "localhost_localkube_coredns_v1.15.0-abcd.tar", age=1)
    assert prune_archives(tmp_path, "localhost/localkube/coredns", keep=3) == []
    assert list(tmp_path.iterdir()) == [kept]
