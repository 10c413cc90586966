"""The load benchmark at tiny size: both phases are served, every fault case gets its HTTP
answer, the server is healthy after, and the JSON the docs quote is written."""

from __future__ import annotations

import json

from benchmarks import serve_load


def test_both_phases_and_every_fault_case_are_answered(tmp_path, capsys):
    out = tmp_path / "serve_load.json"
    assert serve_load.main(["--clients", "4", "--seconds", "1", "--max-queue", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report == json.loads(capsys.readouterr().out)
    on, off = report["batching_on"], report["batching_off"]
    assert on["ok"] > 0 and off["ok"] > 0 and "500" not in on["errors_by_status"]
    assert set(off["server_batch_sizes"]) == {"1"} and on["settings"]["max_batch"] == 16
    faults = report["faults"]
    assert faults["healthz_after"] == 200 and faults["every_request_answered"]
    assert set(faults["cases"]["malformed_json"]) == {"422"} and set(faults["cases"]["one_megabyte"]) == {"413"}
    assert set(faults["cases"]["burst_10x_queue"]) <= {"200", "429"}
