"""results.jsonl appends and trial locks under crashes and concurrency."""

import json
import os
import subprocess
import sys

from sweep_helpers import REPO

from attn_jax.sweep import store


def test_torn_last_line_is_ignored_and_not_glued_onto(tmp_path):
    out = str(tmp_path)
    store.append_result(out, {"run_id": "a", "loss": 1.0})
    with open(tmp_path / store.RESULTS, "ab") as f:
        f.write(b'{"run_id": "b", "lo')  # a crash mid-write
    assert [r["run_id"] for r in store.read_results(out)] == ["a"]
    store.append_result(out, {"run_id": "c", "loss": 3.0})
    assert [r["run_id"] for r in store.read_results(out)] == ["a", "c"]
    lines = (tmp_path / store.RESULTS).read_bytes().split(b"\n")
    assert lines[0] == json.dumps({"loss": 1.0, "run_id": "a"}, sort_keys=True).encode()


def test_latest_record_wins(tmp_path):
    store.append_result(str(tmp_path), {"run_id": "a", "status": "failed"})
    store.append_result(str(tmp_path), {"run_id": "a", "status": "done"})
    assert store.latest_results(str(tmp_path))["a"]["status"] == "done"


def test_concurrent_appends_from_processes_all_land_whole(tmp_path):
    code = (
        "import sys; from attn_jax.sweep import store\n"
        "for i in range(10):\n"
        "    store.append_result(sys.argv[1], {'run_id': f'{sys.argv[2]}-{i}', 'pad': 'x' * 5000})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(p)], cwd=REPO)
        for p in range(4)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records = store.read_results(str(tmp_path))
    assert len(records) == 40
    assert len({r["run_id"] for r in records}) == 40
    assert len((tmp_path / store.RESULTS).read_bytes().splitlines()) == 40


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_excludes_live_owners_and_takes_over_dead_ones(tmp_path):
    path = str(tmp_path / "t" / "lock")
    # Held by a live process (our parent stands in for another sweep).
    os.makedirs(tmp_path / "t")
    with open(path, "w") as f:
        f.write(f"{os.getppid()}\n")
    assert store.lock_owner(path) == os.getppid()
    assert not store.TrialLock(path).acquire()
    # Its owner died: stale, taken over.
    with open(path, "w") as f:
        f.write(f"{_dead_pid()}\n")
    assert store.lock_owner(path) is None
    lock = store.TrialLock(path)
    assert lock.acquire()
    assert store.lock_owner(path) == os.getpid()
    lock.release()
    assert not os.path.exists(path)


def test_lock_with_a_reused_pid_is_stale(tmp_path):
    path = str(tmp_path / "lock")
    with open(path, "w") as f:
        f.write(f"{os.getppid()} 1\n")  # a live pid, but not the process that started at tick 1
    assert store.lock_owner(path) is None
    assert store.TrialLock(path).acquire()


def test_atomic_json_roundtrip(tmp_path):
    path = str(tmp_path / "d" / "x.json")
    store.write_json_atomic(path, {"a": [1, 2]})
    assert store.read_json(path) == {"a": [1, 2]}
    assert store.read_json(str(tmp_path / "missing.json"), 7) == 7
    assert os.listdir(tmp_path / "d") == ["x.json"]
