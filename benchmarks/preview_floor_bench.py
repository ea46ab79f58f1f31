"""``gpufleet preview`` against the Pulumi SDK's own floor, as whole processes, at 40, 200 and 500 services.

For each size, :func:`fleets.big_fleet` generates the fleet (sites grown to hold it: the envelope and
the GPU quota of every site raised so the plan fits), and two processes are timed in the same run:

* **gpufleet**: ``python -m gpufleet preview --stack ... --format json`` (spec, plan, program under
  mocks, policy pack over the engine's protocol, report), wall clock from start to exit;
* **floor**: a bare Pulumi program that registers the same resources through the same provider
  classes (same type tokens, names, inputs, parents, explicit providers; components' registered
  outputs, data-source calls and stack outputs too) under ``pulumi.runtime.set_mocks`` with mocks
  that echo their inputs, inside ``run_pulumi_func`` as the language host runs a program; taken
  from the offline records of the same stack (:func:`gpufleet.offline.run_program`, run in this process
  beforehand, untimed). It is what any program registering these resources pays: the interpreter,
  the SDK, the provider modules and the registrations.

The script prints both times, their ratio at each size, the time ratio between the two largest
sizes against their resource ratio (near 1 is linear), and the peak memory (RSS, from ``wait4``) of
every gpufleet preview. Goal: gpufleet ≤ 1.3× the floor at every size, near-linear in the fleet.

It also times the **tuned floor**: the same floor process with gpufleet's two process settings
(:mod:`gpufleet.heap`: young collections every 100,000 allocations, and an exit that does not free
the heap object by object). Any program could adopt them, so the ratio to the tuned floor is
gpufleet's own overhead.

A fleet whose ``gpufleet:fleet`` value is over the 128 KiB a single environment string may hold
(Pulumi passes config in ``PULUMI_CONFIG``; from about 270 services) goes in a fleet file the stack
names in ``gpufleet:fleetFiles``; the table says which.

    .venv/bin/python benchmarks/preview_floor_bench.py [--sizes 40,200,500] [--repeat 3[,3,1]] [--json]

``--before DIR`` times the ``gpufleet`` package of DIR in place of this one; the project's program,
components and policy pack stay this checkout's (and ``gpufleet`` being a namespace package, a
module DIR lacks comes from here).

Figures on the idle 2-core machine (best of two interleaved runs; ``docs/policies.md``, "Preview
against the SDK's floor", has the before/after tables)::

    services  resources  GPUs      gpufleet  floor   ratio  floor, tuned  ratio  peak RSS
    40        410        10,000    4.34 s    7.80 s  0.56x  3.74 s        1.16x  340 MiB
    200       1,740      70,816    11.36 s   20.26 s 0.56x  9.23 s        1.23x  575 MiB
    500       4,240      345,520   23.55 s   39.72 s 0.59x  21.06 s       1.12x  1024 MiB  (fleet in gpufleet:fleetFiles)
    200 -> 500: resources x2.44, gpufleet time x2.07, floor time x1.96, tuned floor x2.28
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
ENV_STRING_LIMIT_BYTES = 128 * 1024
"""Linux caps one environment string (``PULUMI_CONFIG=...``) at 32 pages."""
GOAL_RATIO = 1.3


# --- the floor: a bare Pulumi program over recorded resources ------------------------------------------


def _provider_class(type_token: str) -> Any:
    """The generated class of a resource type token (``aws:ec2/launchTemplate:LaunchTemplate`` →
    ``pulumi_aws.ec2.LaunchTemplate``), loading its module as the real program does; None when the
    token is not a provider package's resource (components, providers)."""
    import importlib

    package, module, name = type_token.split(":", 2)
    if package in ("pulumi", "gpufleet"):
        return None
    mod = module.split("/", 1)[0]
    try:
        lib = importlib.import_module(f"pulumi_{package.replace('-', '_')}" + ("" if mod == "index" else f".{mod}"))
    except ImportError:
        return None
    return getattr(lib, name, None)


def _snake(key: str) -> str:
    """``publicIPAddressVersion`` → ``public_ip_address_version``: a generated class's argument name."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key)).lower()


def _custom(kind: str, name: str, inputs: dict[str, Any], opts: Any) -> Any:
    """A custom resource through its generated class (top-level inputs as its keyword arguments,
    nested values as the engine's camelCase objects, which the SDK passes through unchanged); a
    resource whose recorded inputs the class refuses (a required input unknown during the preview,
    so not recorded) registers through ``CustomResource``, as the class's own constructor ends."""
    import pulumi

    cls = _provider_class(kind)
    if isinstance(cls, type):
        kwargs: dict[str, Any] = {_snake(k): v for k, v in inputs.items()}
        for _ in range(8):
            try:
                return cls(name, opts=opts, **kwargs)
            except TypeError as exc:
                # A required input the program computed from another resource's output (a VM
                # identity's principal id) is unknown during a preview, so the records lack it:
                # the program passed an unknown Output there, and so does the floor.
                missing = re.search(r"Missing required property '(\w+)'", str(exc))
                if missing is None or missing.group(1) in kwargs:
                    break
                kwargs[missing.group(1)] = _unknown_output()
    return pulumi.CustomResource(kind, name, inputs, opts)


def _unknown_output() -> Any:
    """An Output whose value is unknown, as a provider's computed value is during a preview."""
    import asyncio

    import pulumi

    loop = asyncio.get_event_loop()
    value, known = loop.create_future(), loop.create_future()
    value.set_result(None)
    known.set_result(False)
    return pulumi.Output(set(), value, known)


def floor_program(records: dict[str, Any]) -> int:
    """Register ``records`` (as :func:`record` wrote them) under mocks; returns the registrations."""
    import asyncio

    import pulumi
    from pulumi.runtime.stack import run_pulumi_func

    registered = [0]

    class EchoMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[Any, Any]]:
            registered[0] += 1
            return ("" if not args.custom else f"{args.name}-id"), dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
            return dict(args.args), []

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        by_urn = {r["urn"]: r for r in records["resources"]}

        def make(rec: dict[str, Any]) -> pulumi.Resource:
            if rec["urn"] in made:
                return made[rec["urn"]]
            parent = make(by_urn[rec["parent"]]) if rec["parent"] in by_urn else None
            provider = None
            if rec["provider"]:
                provider = make(by_urn[rec["provider"].rsplit("::", 1)[0]])
            opts = pulumi.ResourceOptions(parent=parent, provider=provider)  # type: ignore[arg-type]
            kind = rec["type"]
            res: pulumi.Resource
            if kind.startswith("pulumi:providers:"):
                res = pulumi.ProviderResource(kind.rsplit(":", 1)[1], rec["name"], rec["inputs"], opts)
            elif not rec["custom"]:
                res = pulumi.ComponentResource(kind, rec["name"], rec["inputs"], opts)
                if rec["outputs"] is not None:
                    res.register_outputs(rec["outputs"])
            else:
                res = _custom(kind, rec["name"], rec["inputs"], opts)
            made[rec["urn"]] = res
            return res

        for call in records["calls"]:
            pulumi.runtime.invoke(call["token"], call["args"])
        for rec in records["resources"]:
            make(rec)
        for key, value in records["outputs"].items():
            pulumi.export(key, value)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(EchoMocks(), project=records["project"], stack=records["stack"], preview=True)
    loop.run_until_complete(run_pulumi_func(program))
    return registered[0]


def record(stack_file: Path, out: Path) -> int:
    """Run the stack's program offline (untimed) and write what it registered for the floor."""
    from gpufleet.offline import run_program

    run = run_program(stack_file, preview=True)
    out.write_text(json.dumps({
        "project": run.project, "stack": run.stack, "outputs": run.outputs,
        "calls": [{"token": c.token, "args": c.args} for c in run.calls],
        "resources": [{"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "provider": r.provider,
                       "custom": r.custom, "inputs": r.inputs, "outputs": None if r.custom else r.outputs}
                      for r in run.resources],
    }))
    return len(run.resources)


# --- timing whole processes ----------------------------------------------------------------------------


class Timing(NamedTuple):
    """One process run: wall seconds, peak RSS (KiB), CPU seconds (user + system, with the children
    it waited for: the policy pack) and the 1-minute load average when it started."""

    seconds: float
    rss_kib: int
    cpu_s: float
    load: float


def timed_process(argv: list[str], gpufleet_from: Path = ROOT) -> Timing:
    """Wall seconds, peak RSS (KiB, the largest of the process and the children it waited for), CPU
    seconds and the load average at the start; ``gpufleet_from`` is the directory the ``gpufleet``
    package is imported from (first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(gpufleet_from), str(ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    load = os.getloadavg()[0]
    began = time.perf_counter()
    # cwd: ``python -m`` puts the working directory first on the path, before PYTHONPATH
    proc = subprocess.Popen(argv, cwd=gpufleet_from, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{err[-3000:]}")
    return Timing(seconds, int(usage.ru_maxrss), usage.ru_utime + usage.ru_stime, load)


def grown_fleet(services: int) -> dict[str, Any]:
    """:func:`fleets.big_fleet` with every site's envelope and H100 quota raised to hold the fleet."""
    from fleets import big_fleet

    fleet = big_fleet(services)
    for site in fleet["sites"]:
        site["power_mw"] = 1000.0
        site["quota_gpus"] = {"H100": 1_000_000}
    return fleet


def write_fleet_stack(tmp: Path, services: int) -> tuple[Path, dict[str, Any]]:
    """The stack of a grown fleet: inline in ``gpufleet:fleet`` while that fits in ``PULUMI_CONFIG``,
    else in a fleet file the stack names in ``gpufleet:fleetFiles`` (``tmp`` is inside the project)."""
    import yaml

    from fleets import write_stack

    fleet = grown_fleet(services)
    config_bytes = len(json.dumps(fleet, sort_keys=True))
    stack = tmp / f"Pulumi.floor{services}.yaml"
    row: dict[str, Any] = {"services": services, "config_bytes": config_bytes, "fleet_in": "config"}
    if config_bytes + len("PULUMI_CONFIG=") <= ENV_STRING_LIMIT_BYTES:
        return write_stack(stack, fleet), row
    fleet_file = tmp / f"fleet{services}.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet, sort_keys=False))
    stack.write_text(yaml.safe_dump({"config": {"gpufleet:fleetFiles": [fleet_file.relative_to(ROOT).as_posix()]}}))
    row["fleet_in"] = "gpufleet:fleetFiles"
    return stack, row


def measure(services: int, repeat: int, tmp: Path, before: Path | None = None) -> dict[str, Any]:
    stack, row = write_fleet_stack(tmp, services)
    records = tmp / f"records{services}.json"
    row["resources"] = record(stack, records)

    def preview(name: str) -> list[str]:
        return [sys.executable, "-m", "gpufleet", "preview", "--stack", str(stack), "--format", "json",
                "--output", str(tmp / f"{name}{services}.json")]

    floor = [sys.executable, str(Path(__file__).resolve()), "--floor", str(records)]
    runs: dict[str, list[Timing]] = {"gpufleet": [], "floor": [], "floor_tuned": [], "before": []}
    turns: list[tuple[str, list[str], Path]] = [("gpufleet", preview("preview"), ROOT), ("floor", floor, ROOT),
                                                ("floor_tuned", floor + ["--floor-tuned"], ROOT)]
    if before is not None:
        turns.append(("before", preview("before"), before))
    for i in range(max(1, repeat)):  # interleaved, in turns, so a busy moment hits all alike
        for name, argv, package in turns[i % len(turns):] + turns[:i % len(turns)]:
            runs[name].append(timed_process(argv, gpufleet_from=package))
    floor_best, floor_tuned_best, best = min(runs["floor"]), min(runs["floor_tuned"]), min(runs["gpufleet"])
    if runs["before"]:
        before_best = min(runs["before"])
        row["before_s"], row["before_cpu_s"] = before_best.seconds, before_best.cpu_s
        row["before_ratio"] = before_best.seconds / floor_best.seconds
        row["before_cpu_ratio"] = before_best.cpu_s / min(t.cpu_s for t in runs["floor"])
        row["before_same_report"] = _same_report(tmp / f"before{services}.json", tmp / f"preview{services}.json")
    row["gpufleet_s"], row["gpufleet_rss_kib"], row["gpufleet_load"] = best.seconds, best.rss_kib, best.load
    row["floor_s"], row["floor_rss_kib"], row["floor_load"] = floor_best.seconds, floor_best.rss_kib, floor_best.load
    row["gpufleet_cpu_s"] = min(t.cpu_s for t in runs["gpufleet"])
    row["floor_cpu_s"] = min(t.cpu_s for t in runs["floor"])
    row["floor_tuned_s"], row["floor_tuned_cpu_s"] = floor_tuned_best.seconds, min(t.cpu_s for t in runs["floor_tuned"])
    row["ratio_tuned"] = best.seconds / floor_tuned_best.seconds
    row["cpu_ratio"] = row["gpufleet_cpu_s"] / row["floor_cpu_s"]
    row["load_range"] = (min(t.load for r in runs.values() for t in r), max(t.load for r in runs.values() for t in r))
    row["gpufleet_peak_rss_kib"] = max(t.rss_kib for t in runs["gpufleet"])
    row["ratio"] = row["gpufleet_s"] / row["floor_s"]
    report = json.loads((tmp / f"preview{services}.json").read_text())
    row["gpus"] = sum(w.get("gpus_provisioned") or 0 for w in report["workloads"])
    return row


def _same_report(before: Path, after: Path) -> bool:
    """The two JSON reports are the same but for the note naming the pack's interpreter and directory."""
    def load(path: Path) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(path.read_text())
        report["notes"] = [n for n in report["notes"] if not n.startswith("the policy pack ran with")]
        return report

    return load(before) == load(after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="40,200,500", help="inference services per fleet, comma-separated")
    parser.add_argument("--repeat", default="3", help="runs of each process per size (the fastest is kept); "
                        "one number, or one per size (--sizes 40,200,500 --repeat 3,3,1)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--before", type=Path, help="also time the gpufleet package of this directory (an earlier "
                        "commit: git archive <commit> | tar -x -C DIR), interleaved, and compare its report")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # the floor process itself
    parser.add_argument("--floor-tuned", action="store_true", help=argparse.SUPPRESS)  # ... as gpufleet runs
    args = parser.parse_args(argv)
    if args.floor:
        if args.floor_tuned:
            sys.path.insert(0, str(ROOT))
            from gpufleet.heap import collect_less_often, exit_without_teardown

            collect_less_often()
        records = json.loads(args.floor.read_text())
        registered = floor_program(records)
        if registered != len(records["resources"]):
            print(f"the floor registered {registered} resources, the records hold {len(records['resources'])}",
                  file=sys.stderr)
            return 1
        if args.floor_tuned:
            exit_without_teardown(0)
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".preview-floor-") as tmp:  # fleet files: inside the project
        sizes = [int(n) for n in args.sizes.split(",")]
        repeats = [int(n) for n in args.repeat.split(",")]
        repeats += repeats[-1:] * (len(sizes) - len(repeats))
        rows = []
        for services, repeat in zip(sizes, repeats):
            rows.append(measure(services, repeat, Path(tmp), args.before.resolve() if args.before else None))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # each size as it is measured
    scaling = None
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        scaling = {"from": a["services"], "to": b["services"], "resources_ratio": b["resources"] / a["resources"],
                   "gpufleet_time_ratio": b["gpufleet_s"] / a["gpufleet_s"], "floor_time_ratio": b["floor_s"] / a["floor_s"],
                   "gpufleet_cpu_ratio": b["gpufleet_cpu_s"] / a["gpufleet_cpu_s"],
                   "floor_cpu_ratio": b["floor_cpu_s"] / a["floor_cpu_s"],
                   "floor_tuned_time_ratio": b["floor_tuned_s"] / a["floor_tuned_s"]}
    if args.json:
        print(json.dumps({"sizes": rows, "scaling": scaling, "goal_ratio": GOAL_RATIO}, indent=2))
    else:
        print(f"{'services':>8} {'resources':>9} {'GPUs':>8} {'gpufleet':>9} {'floor':>8} {'ratio':>6} {'CPU ratio':>9} "
              f"{'floor, tuned':>12} {'ratio':>6} {'peak RSS':>9} {'load':>5}  fleet in")
        for r in rows:
            print(f"{r['services']:>8} {r['resources']:>9} {r['gpus']:>8,} {r['gpufleet_s']:>8.2f}s {r['floor_s']:>7.2f}s "
                  f"{r['ratio']:>5.2f}x {r['cpu_ratio']:>8.2f}x {r['floor_tuned_s']:>11.2f}s {r['ratio_tuned']:>5.2f}x "
                  f"{r['gpufleet_peak_rss_kib'] / 1024:>7.0f}MiB {r['gpufleet_load']:>5.1f}  {r['fleet_in']}")
            print(f"{'':>8} CPU: gpufleet {r['gpufleet_cpu_s']:.1f}s, floor {r['floor_cpu_s']:.1f}s; load average "
                  f"{r['load_range'][0]:.1f}-{r['load_range'][1]:.1f} over the runs (floor's fastest at {r['floor_load']:.1f})")
            if "before_s" in r:
                print(f"{'':>8} before: {r['before_s']:.2f}s, {r['before_ratio']:.2f}x the floor "
                      f"(CPU {r['before_cpu_s']:.1f}s, {r['before_cpu_ratio']:.2f}x); "
                      f"same report: {'yes' if r['before_same_report'] else 'NO'}")
        if scaling:
            print(f"{scaling['from']} → {scaling['to']} services: resources ×{scaling['resources_ratio']:.2f}, "
                  f"gpufleet time ×{scaling['gpufleet_time_ratio']:.2f} (CPU ×{scaling['gpufleet_cpu_ratio']:.2f}), "
                  f"floor time ×{scaling['floor_time_ratio']:.2f} (CPU ×{scaling['floor_cpu_ratio']:.2f}), "
                  f"floor with gpufleet's process settings ×{scaling['floor_tuned_time_ratio']:.2f}")
        worst = max((r["ratio"] for r in rows), default=0.0)
        worst_tuned = max((r["ratio_tuned"] for r in rows), default=0.0)
        print(f"worst ratio {worst:.2f}x: {'within' if worst <= GOAL_RATIO else 'OVER'} the {GOAL_RATIO}x goal; "
              f"against the floor with gpufleet's process settings {worst_tuned:.2f}x "
              f"({'within' if worst_tuned <= GOAL_RATIO else 'over'} {GOAL_RATIO}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
