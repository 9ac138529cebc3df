"""Many clients at once: one lock keeps names and counters consistent."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Api


def test_parallel_uploads_of_one_name_get_distinct_numbers(
    emulator_factory: EmulatorFactory,
) -> None:
    srv = emulator_factory(latency=0.05)  # keeps the requests in flight together
    with Api(srv) as api:
        api.login()
    names: list[str] = []

    def upload(i: int) -> None:
        with httpx.Client(base_url=srv.api_url) as http:
            r = http.post(
                "file/upload", data=api.auth, files={"upload_file": ("same.txt", b"%d" % i)}
            )
            names.append(r.json()["data"][0]["name"])

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == sorted(["same.txt"] + [f"same ({n}).txt" for n in range(2, 7)])
    assert srv.peak_concurrent_uploads >= 2
    srv.clear_requests()
    assert srv.peak_concurrent_uploads == 0


def test_bad_fault_values_are_refused(emulator_factory: EmulatorFactory) -> None:
    srv = emulator_factory()
    with httpx.Client() as http:
        r = http.post(srv.base_url + "_emulator/faults", data={"fail_rate": "lots"})
        assert r.status_code == 400
        r = http.post(srv.base_url + "_emulator/faults", data={"fail_rate": "0.5"})
        assert r.json()["fail_rate"] == 0.5
        r = http.post(srv.base_url + "_emulator/faults", json={"endpoints": ["folder/create"]})
        assert r.json()["endpoints"] == ["folder/create"]
    assert srv.faults.fail_rate == 0.5
    assert srv.faults.endpoints == frozenset({"folder/create"})
