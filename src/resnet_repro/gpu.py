"""Turn a rare GPU lease (15 minutes of device time, start included) into paper-scale results (issue 17).

The lease's machine receives a copy of the working tree (at most 64 MiB per command, carried files included), runs
commands of at most 10 minutes, keeps processes started with setsid between commands while it is held, and returns
at most 8 files of 16 MiB. So:

1. here, `make gpu-plan` packs the CIFAR-10 folder into gzip parts sized to what the lean tree leaves of the
   64 MiB, and prints the calls the lease needs, one per part, before the first one (`gpu.plan`); `make gpu-lean`
   then switches to a branch without the figures, notebooks, reports and weights (`gpu.lean`: they are most of the
   tree, 100 of its 107 MiB on 2026-12-07, and growing with each published run; the lean 6.4 MiB leave room for the
   19.5 MiB of data in one call), from which the calls are made;
2. there, each call stages its part; the last one runs `make gpu-batch`: it joins and checks the parts, unpacks the
   data, runs the benchmark, and starts the queue (`gpu.queue`) as concurrent background lanes sharing the GPU;
3. later calls poll (`make gpu-status`); the last one runs `make gpu-collect OUT=$OUT`: finished run folders with
   their analysis and weights, then the checkpoints of unfinished runs (so that a later lease resumes them, carried
   back), packed into at most 8 files of at most 16 MiB with a sha256 list (`gpu.collect`);
4. here, `make gpu-restore` switches back (`gpu.restore`), and `make gpu-unpack PACK_IN=<files>` checks and
   unpacks the files into results/.

A run that the CPU campaign has finished or started (same preset, net and seed: its run folder exists here) is
left to it: the GPU takes the next free seed instead, so that no run mixes devices.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from .paths import run_path, runs_root

MiB = 2**20
CALL_LIMIT = 64 * MiB  # what one call carries: the tree plus its carried paths
OUT_FILES, OUT_FILE_MAX = 8, 16 * MiB  # what comes back
MARGIN = 2 * MiB  # headroom for files written between the plan and the call
STAGE = Path(".carry/gpu")
LEAN_DIRS, LEASE_BRANCH = ("figures", "notebooks", "report"), "gpu-lease"
# The order: seed 0 of the ten Table 6 nets, then ResNet-1202, then seeds 1-4 of the ten.
GPU_ORDER = ["resnet20", "resnet56", "plain20", "plain56", "resnet110", "plain110", "resnet32", "resnet44",
             "plain32", "plain44"]


def gpu_run(rd: Path) -> bool:
    """Whether a GPU session trained this run folder (its sessions.jsonl says device_kind "cuda")."""
    f = rd / "sessions.jsonl"
    lines = f.read_text().splitlines() if f.is_file() else []
    return any(json.loads(line).get("device_kind") == "cuda" for line in lines if line.strip())


def queue(preset: str = "paper", results: str | Path = "results", seeds=(0, 1, 2, 3, 4), huge: bool = True
          ) -> list[tuple[str, int]]:
    """(arch, seed) in priority order. A seed whose run folder exists here is skipped (the CPU campaign's), unless a
    GPU session trained it (sessions.jsonl): an unfinished GPU run carried back from an earlier lease is resumed."""
    taken = {(p.parent.name, int(p.name[4:])) for p in runs_root(results, preset).glob("*/seed*") if not gpu_run(p)}
    out: list[tuple[str, int]] = []

    def next_free(arch: str, seed: int) -> tuple[str, int]:
        while (arch, seed) in taken or (arch, seed) in out:
            seed += 1
        return arch, seed

    out += [next_free(a, seeds[0]) for a in GPU_ORDER]
    if huge:
        out.append(next_free("resnet1202", seeds[0]))
    for s in seeds[1:]:
        out += [next_free(a, s) for a in GPU_ORDER]
    return out


def write_parts(blob: bytes, folder: Path, prefix: str, size: int) -> list[dict]:
    """Split blob into <folder>/<prefix>NN files of at most `size` bytes; [{file, bytes, sha256}] in order."""
    parts = []
    for i in range(0, max(len(blob), 1), size):
        chunk = blob[i:i + size]
        (folder / f"{prefix}{i // size:02d}").write_bytes(chunk)
        parts.append(dict(file=f"{prefix}{i // size:02d}", bytes=len(chunk), sha256=hashlib.sha256(chunk).hexdigest()))
    return parts


def read_parts(folder: Path, parts: list[dict], listing: str) -> bytes:
    """The joined parts, each checked against the sha256 its listing (manifest.json, collect.json) records."""
    blob = b""
    for p in parts:
        data = (folder / p["file"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != p["sha256"]:
            raise ValueError(f"{p['file']}: sha256 does not match {listing}")
        blob += data
    return blob


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=True, text=True).stdout


def heavy(name: str) -> bool:
    """A tracked file that a lease does not need: figures, executed notebooks, reports, published weights."""
    return name.split("/", 1)[0] in LEAN_DIRS or name.endswith(".safetensors")


def tree_bytes(root: Path = Path("."), lean: bool = False) -> int:
    """What a call sends besides its carried paths: tracked files and untracked files git does not ignore (with
    `lean`, as after `lean()`: the heavy tracked files left out)."""
    names = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    tracked = set(_git(root, "ls-files", "-z").split("\0")) if lean else set()
    return sum((root / n).stat().st_size for n in names
               if n and (root / n).is_file() and not (n in tracked and heavy(n)))


def lean(root: Path = Path(".")) -> dict:
    """Before a lease: the tracked tree grows with every published figure and weights file (33 MiB in Dec 2026) and a
    call sends all of it, so switch to a branch LEASE_BRANCH that drops the heavy files (a commit there; untracked
    run folders of the campaign stay where they are). restore() switches back and the files return."""
    if _git(root, "status", "--porcelain", "--untracked-files=no").strip():
        raise ValueError("commit or stash the changes to tracked files first: the lease branch starts from HEAD")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    if branch == LEASE_BRANCH:
        raise ValueError(f"already on {LEASE_BRANCH}: `make gpu-restore` first")
    drop = [n for n in _git(root, "ls-files", "-z").split("\0") if n and heavy(n)]
    before = tree_bytes(root)
    _git(root, "switch", "-q", "-C", LEASE_BRANCH)
    for i in range(0, len(drop), 500):
        _git(root, "rm", "-q", "--", *drop[i:i + 500])
    _git(root, "-c", "user.name=gpu-lease", "-c", "user.email=gpu-lease@localhost", "commit", "-q", "--no-verify",
         "-m", f"gpu lease: the tree without its {len(drop)} heavy files (figures, notebooks, reports, weights)")
    (root / STAGE).mkdir(parents=True, exist_ok=True)
    (root / STAGE / "lean.json").write_text(json.dumps(dict(previous=branch, dropped=len(drop))) + "\n")
    return dict(previous=branch, dropped=len(drop), before=before, after=tree_bytes(root))


def restore(root: Path = Path(".")) -> str:
    """After a lease: back to the branch lean() left (the heavy files return); the lease branch is deleted."""
    info = json.loads((root / STAGE / "lean.json").read_text())
    _git(root, "switch", "-q", info["previous"])
    _git(root, "branch", "-q", "-D", LEASE_BRANCH)
    (root / STAGE / "lean.json").unlink()
    return info["previous"]


def plan(data_dir: str | Path, stage: Path = STAGE, tree: int | None = None) -> dict:
    """Pack data_dir (train/ + test/) as .tar.gz parts that each fit one call beside the tree; write a manifest."""
    data_dir = Path(data_dir)
    tree = tree_bytes(lean=True) if tree is None else tree  # the calls are made from the lean branch (lean())
    part = CALL_LIMIT - tree - MARGIN
    if part < MiB:
        raise ValueError(f"the tree is {tree / MiB:.1f} MiB: too little of the 64 MiB per call is left for data")
    stage.mkdir(parents=True, exist_ok=True)
    for old in stage.glob("data.tar.gz.part-*"):
        old.unlink()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        tar.add(data_dir, arcname=data_dir.name)
    parts = write_parts(buf.getvalue(), stage, "data.tar.gz.part-", part)
    manifest = dict(name=data_dir.name, tree_bytes=tree, part_bytes=part, parts=parts, calls=len(parts),
                    created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def call_commands(manifest: dict, preset: str, lanes: int) -> list[str]:
    """The device tool's command for each call: stage a part; the last also starts the batch."""
    cmds = []
    for i, p in enumerate(manifest["parts"]):
        cmd = f"mkdir -p /root/gpu-stage && cp {STAGE}/{p['file']} {STAGE}/manifest.json /root/gpu-stage/"
        if i == len(manifest["parts"]) - 1:
            cmd += f" && make gpu-batch PRESET={preset} LANES={lanes} STAGE_DIR=/root/gpu-stage"
        cmds.append(f"[carry {STAGE}/{p['file']} {STAGE}/manifest.json] {cmd}")
    return cmds


def unpack(stage_dir: str | Path, dest: str | Path = "data") -> Path:
    """Join and check the parts of plan() in stage_dir, unpack into dest/<name>; return that folder."""
    stage_dir = Path(stage_dir)
    m = json.loads((stage_dir / "manifest.json").read_text())
    blob = read_parts(stage_dir, m["parts"], "the manifest")
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")
    return Path(dest) / m["name"]


def launch(preset: str, lanes: int, data_dir: str | None, results: str = "results", extra: list[str] = (),
           logs: Path = Path("results/gpu-logs"), limit: int | None = None, analysis: bool = True) -> list[int]:
    """Start `lanes` background processes (own sessions: they outlive the call) sharing the device; lane i trains
    queue[i::lanes] in order. Returns their pids."""
    logs.mkdir(parents=True, exist_ok=True)
    pids = []
    for i in range(lanes):
        args = [sys.executable, "-m", "resnet_repro", "gpu", "lane", "--preset", preset, "--lane", str(i),
                "--lanes", str(lanes), "--results", results] + (["--data-dir", data_dir] if data_dir else []) + (
                    ["--limit", str(limit)] if limit else []) + ([] if analysis else ["--no-analysis"]) + (
                    ["--train-args", shlex.join(extra)] if extra else [])
        with open(logs / f"lane{i}.log", "a") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        pids.append(p.pid)
    (logs / "lanes.json").write_text(json.dumps(dict(pids=pids, preset=preset, lanes=lanes, results=results,
                                                     queue=queue(preset, results)[:limit]), indent=2) + "\n")
    return pids


def lane(preset: str, index: int, lanes: int, data_dir: str | None, results: str = "results",
         extra: list[str] = (), limit: int | None = None, analysis: bool = True) -> None:
    """Train this lane's share of the queue (its first `limit` runs), each run followed by its weights and analysis."""
    from .campaign import post_analysis

    for arch, seed in queue(preset, results)[:limit][index::lanes]:
        args = ["train", "--preset", preset, "--arch", arch, "--seed", str(seed), "--out", results]
        args += (["--data-dir", data_dir] if data_dir else []) + list(extra)
        # One process per run, as `make train` would start it: a run that fails is logged and the lane goes on.
        rc = subprocess.run([sys.executable, "-m", "resnet_repro", *args], stdin=subprocess.DEVNULL).returncode
        if rc == 0 and analysis and not arch.startswith("resnet1202"):
            try:
                post_analysis(run_path(results, preset, arch, seed), data_dir)
            except Exception as e:  # an analysis must not stop the lane's training; it can be redone here later
                print(f"[gpu] analysis of {arch} seed {seed} failed: {e}", flush=True)


def collect(out: str | Path, preset: str = "paper", results: str | Path = "results") -> dict:
    """Pack finished runs (no checkpoints), then unfinished runs' last.ckpt, into <= 8 files of <= 16 MiB in out:
    data.tar.part-NN and collect.json (sha256 of each part; what was left out)."""
    out, root = Path(out), Path(results)
    out.mkdir(parents=True, exist_ok=True)
    budget = (OUT_FILES - 1) * (OUT_FILE_MAX - 64 * 1024)  # one file is the manifest
    members: list[Path] = []
    finished, partial, left_out = [], [], []
    for rd in sorted(runs_root(root, preset).glob("*/seed*")):
        if (rd / "final.json").is_file():
            finished.append(rd)
            members += [f for f in rd.rglob("*") if f.is_file() and "checkpoints" not in f.parts and f.name != ".lock"]
        elif (rd / "checkpoints" / "last.ckpt").is_file():
            partial.append(rd)
    for f in sorted(root.glob("bench/*.csv")) + sorted(root.glob("gpu-logs/*")):
        members.append(f)
    size = sum(f.stat().st_size for f in members)
    for rd in sorted(partial, key=lambda r: (r / "checkpoints" / "last.ckpt").stat().st_size):
        extra = [f for f in rd.rglob("*") if f.is_file() and f.name not in (".lock", "last.ckpt.tmp")]
        add = sum(f.stat().st_size for f in extra)
        if size + add + len(members) * 1024 < budget:
            members += extra
            size += add
        else:
            left_out.append(str(rd))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in members:
            tar.add(f, arcname=str(f.relative_to(root)))
    blob = buf.getvalue()
    if len(blob) > budget:
        raise ValueError(f"{len(blob) / MiB:.1f} MiB of finished runs exceed what comes back ({budget / MiB:.0f} MiB)")
    parts = write_parts(blob, out, "data.tar.part-", OUT_FILE_MAX - 64 * 1024)
    meta = dict(preset=preset, finished=[str(r) for r in finished], partial_included=[str(r) for r in partial
                if str(r) not in left_out], partial_left_out=left_out, parts=parts)
    (out / "collect.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def unpack_collected(pack_in: str | Path, results: str | Path = "results") -> dict:
    """Check and unpack collect()'s files into results/ (run folders, checkpoints of unfinished runs, bench CSVs)."""
    pack_in = Path(pack_in)
    meta = json.loads((pack_in / "collect.json").read_text())
    blob = read_parts(pack_in, meta["parts"], "collect.json")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(results, filter="data")
    return meta


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def status(logs: Path = Path("results/gpu-logs")) -> str:
    """One line per queued run of the launched batch: done, iteration k, or waiting; and whether the lanes live."""
    from .campaign import last_logged

    info = json.loads((logs / "lanes.json").read_text())
    alive = [pid for pid in info["pids"] if _alive(pid)]
    lines = [f"gpu batch {info['preset']}: {len(alive)} of {info['lanes']} lanes running"]
    for arch, seed in info["queue"]:
        rd = run_path(info["results"], info["preset"], arch, seed)
        it, el, spi = last_logged(rd)
        st = "done" if (rd / "final.json").is_file() else (f"iteration {it:,}" + (f", {spi:.3f} s/it" if spi else "")
                                                            if it else "waiting")
        lines.append(f"  {arch:<11} seed {seed}  {st}")
    return "\n".join(lines)


def dispatch(args) -> int:
    """`python -m resnet_repro gpu <action>` (the `make gpu-*` targets); a user mistake raises ValueError."""

    a = args.action
    if a == "plan":
        m = plan(args.data)
        print(f"[gpu] tree {tree_bytes() / 2**20:.1f} MiB, lean {m['tree_bytes'] / 2**20:.1f} MiB; data "
              f"{sum(p['bytes'] for p in m['parts']) / 2**20:.1f} MiB in {len(m['parts'])} parts of <= "
              f"{m['part_bytes'] / 2**20:.1f} MiB. First `make gpu-lean`; then the lease needs {m['calls']} call(s) "
              f"to start, polls (`make gpu-status`), one `make gpu-collect OUT=$OUT`; then `make gpu-restore`:")
        for i, c in enumerate(call_commands(m, args.preset, args.lanes), 1):
            print(f"  call {i}: {c}")
        return 0
    if a in ("lean", "restore"):
        if a == "restore":
            print(f"[gpu] back on {restore()}: figures, notebooks, reports and weights are back")
            return 0
        r = lean()
        print(f"[gpu] on branch {LEASE_BRANCH} (from {r['previous']}): {r['dropped']} heavy files left out, the tree "
              f"{r['before'] / 2**20:.1f} -> {r['after'] / 2**20:.1f} MiB. After the lease: `make gpu-restore`")
        return 0
    if a == "batch":
        data_dir = args.data_dir or str(unpack(args.stage_dir or "/root/gpu-stage"))
        if not args.no_bench:
            subprocess.run([sys.executable, "-m", "resnet_repro", "bench", "--archs", "resnet20,resnet56",
                            "--data-dir", data_dir], check=False)
        pids = launch(args.preset, args.lanes, data_dir, args.results, shlex.split(args.train_args), limit=args.limit,
                      analysis=not args.no_analysis)
        print(f"[gpu] {len(pids)} lanes started (pids {pids}); `make gpu-status` polls them")
        return 0
    if a == "lane":
        lane(args.preset, args.lane, args.lanes, args.data_dir, args.results, shlex.split(args.train_args), args.limit,
             analysis=not args.no_analysis)
        return 0
    if a == "status":
        print(status(Path(args.results) / "gpu-logs"))
        return 0
    if a == "collect":
        if not args.out:
            raise ValueError("collect needs --out (on the GPU machine: $OUT)")
        m = collect(args.out, args.preset, args.results)
        print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in m.items()}))
        return 0
    if a == "unpack":
        if not args.pack_in:
            raise ValueError("unpack needs --pack-in <folder with collect.json>")
        m = unpack_collected(args.pack_in, args.results)
        print(f"[gpu] unpacked {len(m['finished'])} finished runs and {len(m['partial_included'])} checkpoints; "
              f"left out: {m['partial_left_out'] or 'none'}")
        return 0
    raise ValueError(f"unknown gpu action {a}")
