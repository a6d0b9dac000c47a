"""CIFAR-10 loading and caching, the paper's augmentation, the mean image, and the training stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_imagefolder, write_official_batches
from resnet_repro import batches as B
from resnet_repro import data as D
from resnet_repro.config import make_config
from resnet_repro.data import CIFARDataModule

PAD = 4


# ----------------------------------------------------------------------------- augmentation


def padded(x: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Zero-pad a (C, H, W) image by hand (independently of the code under test)."""
    c, h, w = x.shape
    canvas = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=x.dtype)
    canvas[:, pad:pad + h, pad:pad + w] = x
    return canvas


def match_window(out: torch.Tensor, x: torch.Tensor, pad: int = PAD) -> list[tuple[int, int, bool]]:
    """Every (oy, ox, flipped) whose window of the zero-padded x equals `out` exactly."""
    c, h, w = x.shape
    xp = padded(x, pad)
    hits = []
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            win = xp[:, oy:oy + h, ox:ox + w]
            for flipped, cand in ((False, win), (True, win.flip(-1))):
                if torch.equal(out, cand):
                    hits.append((oy, ox, flipped))
    return hits


def test_augment_outputs_are_windows_of_the_zero_padded_input():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32) + 1.0  # strictly positive: a zero can only come from the padding
    out = B.augment(x, g)
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets, flips = set(), []
    for i in range(len(x)):
        hits = match_window(out[i], x[i])
        assert len(hits) == 1, f"sample {i} is not a (possibly mirrored) window of its padded input"
        oy, ox, flipped = hits[0]
        offsets.add((oy, ox))
        flips.append(flipped)
    assert 0 < sum(flips) < len(flips)  # some samples flipped, some not
    assert len(offsets) > 16  # offsets vary across the batch
    ys, xs = {o[0] for o in offsets}, {o[1] for o in offsets}
    assert min(ys) >= 0 and max(ys) <= 2 * PAD and min(xs) >= 0 and max(xs) <= 2 * PAD


def test_augment_padding_is_exactly_zero():
    g = torch.Generator().manual_seed(1)
    x = torch.full((256, 3, 32, 32), 7.5)
    out = B.augment(x, g)
    vals = set(out.unique().tolist())
    assert vals <= {0.0, 7.5}
    assert 0.0 in vals  # some crops reach into the padding...
    # ...and the padding is a border band: per sample, zero rows/columns are whole rows/columns.
    for o in out[:, 0]:
        zero_rows = (o == 0).all(1).sum().item()
        zero_cols = (o == 0).all(0).sum().item()
        assert zero_rows <= PAD and zero_cols <= PAD
        assert (o == 0).sum().item() == 32 * 32 - (32 - zero_rows) * (32 - zero_cols)


def test_augment_flip_equals_mirrored_window():
    # A horizontal ramp: a flipped crop reads right to left.
    g = torch.Generator().manual_seed(2)
    x = (torch.arange(32.0) + 1).expand(32, 3, 32, 32).clone()
    out = B.augment(x, g)
    rows = out[:, 0, 16]  # a middle row (inside the image whatever the vertical offset)
    nz = [r[r != 0] for r in rows]
    increasing = sum(bool((r.diff() > 0).all()) for r in nz)
    decreasing = sum(bool((r.diff() < 0).all()) for r in nz)
    assert increasing + decreasing == 32
    assert increasing > 0 and decreasing > 0
    for i in range(32):
        hits = match_window(out[i], x[i])
        assert len(hits) == 1 and hits[0][2] == bool((nz[i].diff() < 0).all())


def test_augment_gives_each_sample_its_own_offsets():
    g = torch.Generator().manual_seed(3)
    img = torch.rand(1, 3, 32, 32) + 1.0
    out = B.augment(img.expand(256, 3, 32, 32).contiguous(), g)
    distinct = torch.unique(out.flatten(1), dim=0)
    assert len(distinct) > 60  # 9 x 9 offsets x 2 flips = 162 possible outcomes; ~128 expected


def test_augment_is_a_function_of_the_generator():
    x = torch.rand(32, 3, 32, 32)
    a = B.augment(x, torch.Generator().manual_seed(5))
    b = B.augment(x, torch.Generator().manual_seed(5))
    c = B.augment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- mean image


def test_mean_image_is_per_pixel_mean_on_0_1_scale():
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    m = B.mean_image(x)
    assert m.shape == (3, 32, 32) and m.dtype == torch.float32
    assert torch.allclose(m, x.double().mean(0).float() / 255, atol=1e-6)
    n = B.normalize(x, m)
    assert torch.allclose(n.mean(0), torch.zeros(3, 32, 32), atol=1e-5)


def constant_arrays(n_train: int, n_test: int) -> D.CifarArrays:
    """Train image i is constant i (so any subset is identifiable); test images are all 255."""
    assert n_train <= 200
    tx = np.broadcast_to(np.arange(n_train, dtype=np.uint8)[:, None, None, None], (n_train, 32, 32, 3)).copy()
    ty = np.arange(n_train) % 10
    vx = np.full((n_test, 32, 32, 3), 255, np.uint8)
    vy = np.arange(n_test) % 10
    return D.CifarArrays(tx, ty.astype(np.int64), vx, vy.astype(np.int64), "test-arrays", "<memory>")


def test_datamodule_mean_comes_from_training_images_only():
    a = constant_arrays(100, 20)
    cfg = make_config("paper", seed=0)
    dm = CIFARDataModule(cfg, a)
    assert dm.trainer is None
    dm.setup("fit")
    expected = torch.from_numpy(a.train_x).permute(0, 3, 1, 2).double().mean(0).float() / 255
    assert torch.allclose(dm.mean, expected, atol=1e-6)
    assert torch.allclose(dm.mean, torch.full((3, 32, 32), 49.5 / 255), atol=1e-6)
    with_test = np.concatenate([a.train_x, a.test_x]).mean() / 255
    assert not np.isclose(dm.mean.mean().item(), with_test, atol=1e-3)
    assert dm.n_train == 100 and dm.n_test == 20 and dm.val is None


def test_datamodule_mean_excludes_the_validation_split():
    a = constant_arrays(200, 20)
    cfg = make_config("paper", val_size=50, split_seed=3)
    dm = CIFARDataModule(cfg, a)
    dm.setup("fit")
    train_vals = dm.train_x[:, 0, 0, 0].long()
    val_vals = dm.val[0][:, 0, 0, 0].long()
    assert len(train_vals) == 150 and len(val_vals) == 50 and dm.n_train == 150
    assert set(train_vals.tolist()).isdisjoint(val_vals.tolist())
    assert set(train_vals.tolist()) | set(val_vals.tolist()) == set(range(200))
    assert torch.allclose(dm.mean, torch.full((3, 32, 32), train_vals.double().mean().item() / 255), atol=1e-6)
    all_mean = np.arange(200).mean() / 255
    assert not np.isclose(dm.mean[0, 0, 0].item(), all_mean, atol=1e-4)  # would hold if val were included


def test_datamodule_streams_normalised_batches():
    a = constant_arrays(100, 20)
    cfg = make_config("paper", batch_size=10, eval_every=4, max_steps=8, channels_last=False)
    dm = CIFARDataModule(cfg, a)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 4
    for x, y in batches:
        assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (10,)
    (vx, vy), = [next(iter(b)) for b in dm.val_dataloader()]
    assert torch.allclose(vx, torch.full_like(vx, 1.0) - dm.mean)


# ----------------------------------------------------------------------------- the training stream


def stream(n=1000, batch=100, seed=0, **kw) -> B.TrainStream:
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
    y = torch.arange(n)
    return B.TrainStream(x, y, B.mean_image(x), batch, seed, steps=5, **kw)


def test_stream_batch_is_a_pure_function_of_seed_and_step():
    s1, s2 = stream(seed=7), stream(seed=7)
    steps = [0, 3, 9, 10, 25, 11, 2]
    first = {s: s1.indices(s) for s in steps}
    for s in reversed(steps):  # another object, queried in another order
        assert torch.equal(s2.indices(s), first[s])
    assert not torch.equal(stream(seed=8).indices(0), first[0])
    x1, y1 = s1.batch(4, torch.Generator().manual_seed(1))
    x2, y2 = s2.batch(4, torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_stream_iteration_resumes_at_start_step():
    full = stream(seed=4, augment_data=False)
    later = stream(seed=4, augment_data=False, start_step=lambda: 3)
    want = [full.batch(s, None) for s in range(3, 8)]
    got = list(later)
    assert len(got) == 5
    for (xa, ya), (xb, yb) in zip(want, got):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # With augmentation, two iterations from the same start step are identical too.
    a, b = list(stream(seed=4, start_step=lambda: 3)), list(stream(seed=4, start_step=lambda: 3))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))


@pytest.mark.parametrize("batch", [100, 128])
def test_stream_sees_every_image_once_per_epoch(batch):
    n = 1000
    s = stream(n=n, batch=batch, seed=1)
    idx = torch.cat([s.indices(i) for i in range(-(-2 * n // batch))])
    assert all(len(s.indices(i)) == batch for i in range(20))  # no short batch at epoch boundaries
    epoch0, epoch1 = idx[:n], idx[n:2 * n]
    assert torch.equal(epoch0.sort().values, torch.arange(n))
    assert torch.equal(epoch1.sort().values, torch.arange(n))
    assert not torch.equal(epoch0, epoch1)  # a fresh permutation each epoch


def test_stream_ranks_take_disjoint_halves_of_the_global_batch():
    glob = stream(batch=128, seed=2)
    r0 = stream(batch=128, seed=2, rank=0, world_size=2)
    r1 = stream(batch=128, seed=2, rank=1, world_size=2)
    for step in (0, 1, 7, 8, 30):
        a, b = r0.indices(step), r1.indices(step)
        assert len(a) == len(b) == 64
        # Rank 0 takes the first half of the global batch, rank 1 the second: disjoint slices.
        assert torch.equal(torch.cat([a, b]), glob.indices(step))
        if step != 7:  # step 7 straddles the epoch boundary at image 1000, where the global batch
            # holds the end of one permutation and the start of the next, so an image can occur twice
            assert set(a.tolist()).isdisjoint(b.tolist())


# ----------------------------------------------------------------------------- loading


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("RESNET_REPRO_CACHE", str(d))
    return d


def assert_same(a: D.CifarArrays, b: D.CifarArrays):
    for k in ("train_x", "train_y", "test_x", "test_y"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.train_x.dtype == np.uint8 and a.train_x.shape[1:] == (32, 32, 3)


def test_load_official_batches(tmp_path, cache):
    want = write_official_batches(tmp_path / "cifar-10-batches-py", n_per_batch=20, n_test=30)
    for d in (tmp_path / "cifar-10-batches-py", tmp_path):  # the batches folder or its parent
        a = D.load_cifar10(d, expected=(100, 30))
        assert_same(a, want)
        assert a.source == "official-python-batches"


def test_load_imagefolder(tmp_path, cache):
    written = write_imagefolder(tmp_path / "imgs", n_train_per_class=2, n_test_per_class=1)
    a = D.load_cifar10(tmp_path / "imgs", expected=(20, 10))
    assert a.source == "imagefolder-png"
    classes = sorted(D.CIFAR10_CLASSES)
    for split, xs, ys in (("train", a.train_x, a.train_y), ("test", a.test_x, a.test_y)):
        want_x = np.stack([img for c in classes for img in written[split][c]])
        want_y = np.array([i for i, c in enumerate(classes) for _ in written[split][c]])
        assert np.array_equal(xs, want_x) and np.array_equal(ys, want_y)


def test_load_imagefolder_jpeg_is_flagged_lossy(tmp_path, cache):
    from PIL import Image

    write_imagefolder(tmp_path / "imgs", 1, 1)
    f = tmp_path / "imgs" / "train" / "cat" / "00000.png"
    Image.open(f).convert("RGB").save(f.with_suffix(".jpg"), quality=90)
    f.unlink()
    assert D.load_cifar10(tmp_path / "imgs", expected=(10, 10)).source == "imagefolder-jpeg (lossy)"


def test_wrong_counts_are_rejected(tmp_path, cache):
    write_official_batches(tmp_path / "b", n_per_batch=20, n_test=30)
    write_imagefolder(tmp_path / "f", 2, 1)
    with pytest.raises(D.DataError, match="expected"):
        D.load_cifar10(tmp_path / "b", expected=(50_000, 10_000))
    with pytest.raises(D.DataError, match="expected"):
        D.load_cifar10(tmp_path / "f", expected=(50_000, 10_000))
    with pytest.raises(D.DataError, match="expected"):
        D.load_cifar10(tmp_path / "f", expected=(20, 11))


def test_missing_folder_is_rejected(tmp_path, cache):
    with pytest.raises(D.DataError, match="does not exist"):
        D.load_cifar10(tmp_path / "nope", expected=(20, 10))
    assert not (tmp_path / "nope").exists()  # an explicit folder is never downloaded into


def test_unreadable_image_is_rejected(tmp_path, cache):
    write_imagefolder(tmp_path / "f", 2, 1)
    bad = tmp_path / "f" / "train" / "dog" / "00001.png"
    bad.write_bytes(b"this is not a png file at all" * 10)
    with pytest.raises(D.DataError, match="cannot read image") as e:
        D.load_cifar10(tmp_path / "f", expected=(20, 10))
    assert "00001.png" in str(e.value)


def test_wrong_number_of_classes_is_rejected(tmp_path, cache):
    write_imagefolder(tmp_path / "f", 1, 1, classes=D.CIFAR10_CLASSES[:9])
    with pytest.raises(D.DataError, match="expected 10"):
        D.load_cifar10(tmp_path / "f", expected=(9, 9))


@pytest.mark.parametrize("fmt", ["batches", "imagefolder"])
def test_second_load_comes_from_the_cache(tmp_path, cache, monkeypatch, fmt):
    if fmt == "batches":
        write_official_batches(tmp_path / "d", n_per_batch=20, n_test=30)
        expected, reader = (100, 30), "_read_batches"
    else:
        write_imagefolder(tmp_path / "d", 2, 1)
        expected, reader = (20, 10), "_read_imagefolder"
    first = D.load_cifar10(tmp_path / "d", expected=expected)
    files = list(cache.glob("cifar10-*.npz"))
    assert len(files) == 1 and not list(cache.glob("*.tmp*"))

    def no_decoding(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(D, reader, no_decoding)
    second = D.load_cifar10(tmp_path / "d", expected=expected)
    assert_same(first, second)
    assert second.source == first.source
    with pytest.raises(AssertionError, match="decoded again"):
        D.load_cifar10(tmp_path / "d", expected=expected, use_cache=False)
    # The cached copy is still checked against the expected counts.
    with pytest.raises(D.DataError, match="expected"):
        D.load_cifar10(tmp_path / "d", expected=(expected[0] + 1, expected[1]))


def test_split_and_subset_indices():
    tr, va = B.split_indices(100, 10, seed=0)
    assert len(tr) == 90 and len(va) == 10 and set(tr).isdisjoint(va) and set(tr) | set(va) == set(range(100))
    assert np.array_equal(B.split_indices(100, 10, 0)[1], va)
    assert not np.array_equal(B.split_indices(100, 10, 1)[1], va)
    assert np.array_equal(B.subset_indices(50, None, 0), np.arange(50))
    sub = B.subset_indices(50, 20, 0)
    assert len(sub) == 20 and np.all(np.diff(sub) > 0)


def test_a_rewritten_image_invalidates_the_cache(tmp_path, monkeypatch):
    """Issue 20: the cache key follows every file's size and mtime, not only the per-class counts."""
    import os

    import numpy as np
    from PIL import Image

    from conftest import write_imagefolder

    monkeypatch.setenv("RESNET_REPRO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cifar"
    write_imagefolder(root, 2, 1)
    a = D.load_cifar10(root, expected=(20, 10))
    f = sorted((root / "train" / D.CIFAR10_CLASSES[0]).iterdir())[0]
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(f)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, as any rewrite has
    b = D.load_cifar10(root, expected=(20, 10))
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 2
    assert not np.array_equal(a.train_x, b.train_x) and (b.train_x == 7).all(axis=(1, 2, 3)).any()


def test_an_empty_data_dir_means_unset_and_the_download_is_tried(tmp_path, monkeypatch):
    """Issue 20: make passes DATA_DIR= (empty) to inner makes; that must not count as a data folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", "")
    tried = []

    def fake_download(d):
        tried.append(d)
        raise D.DataError("offline")

    monkeypatch.setattr(D, "download_official", fake_download)
    with pytest.raises(D.DataError, match="offline"):
        D.load_cifar10(None)
    assert tried == [Path(D.DEFAULT_DATA_DIR)]


def test_two_processes_decoding_at_once_both_get_the_cache(tmp_path, cache, monkeypatch):
    """Two campaign workers started together both decoded and wrote the cache; with one shared temporary name the
    slower one's rename found nothing to move and its run died. Here another process (pid 202) writes and renames
    its copy while this one is between its write and its rename."""
    write_imagefolder(tmp_path / "d", 2, 1)
    real_savez, calls = np.savez, []

    def savez_while_another_process_writes(path, **arrays):
        real_savez(path, **arrays)
        calls.append(Path(path).name)
        if len(calls) == 1:
            monkeypatch.setattr(D.os, "getpid", lambda: 202)
            D.save_cache(Path(path).with_name(Path(path).name.split(".")[0] + ".npz"), **arrays)

    monkeypatch.setattr(D.np, "savez", savez_while_another_process_writes)
    arr = D.load_cifar10(tmp_path / "d", expected=(20, 10))
    assert arr.train_x.shape == (20, 32, 32, 3) and len(set(calls)) == 2
    assert len(list(cache.glob("cifar10-*.npz"))) == 1 and not list(cache.glob("*.tmp*"))
