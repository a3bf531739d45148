"""`qallegro hpo show STUDY` and `qallegro pick STUDY`: the front's models (see `qallegro.hpo.artifacts`)."""

from __future__ import annotations

import argparse
import json
import sys

from qallegro.scales import DEFAULT_SCALE, SCALES


def study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", metavar="STUDY", help="study name")
    p.add_argument("--scale", choices=SCALES, default=DEFAULT_SCALE, help=f"preset scale (default {DEFAULT_SCALE})")
    p.add_argument("--storage", help="the study's storage (default: results/<scale>/hpo/<study>/journal.log)")


def register_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print the Pareto front: each point's error, time and model artifact")
    study_args(p)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_show)

    p = sub.add_parser("dashboard", help="serve a study (trials, objectives, artifacts) with optuna-dashboard")
    study_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(func=_dashboard)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pick", help="export the best front model of a study under a time or error budget",
                              description="Re-times the study's front models on this machine and exports the "
                                          "lowest-error one within --max-time-ms (ms per structure), or the "
                                          "fastest one within --max-error.")
    study_args(p)
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-time-ms", type=float, metavar="T", help="inference budget, ms per structure")
    budget.add_argument("--max-error", type=float, metavar="E", help="validation error budget (the study's metric)")
    p.add_argument("-o", "--output", default="picked.pt2", metavar="FILE", help="exported model (default picked.pt2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the re-timing (default 1)")
    p.set_defaults(func=_pick)


def _open(args: argparse.Namespace):
    from qallegro.hpo.study import load, study_dir

    return load(args.storage or str(study_dir(args.scale, args.study) / "journal.log"), args.study)


def _show(args: argparse.Namespace) -> int:
    from qallegro.hpo.artifacts import artifact_dir, front
    from qallegro.hpo.objective import objective_names

    try:
        op = _open(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"qallegro hpo show: {err}", file=sys.stderr)
        return 2
    rows = front(op)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    metric = objective_names(op.spec.dataset)[0]
    print(f"study {op.name}: {len(rows)} front point(s); artifacts in {artifact_dir(op.folder)}")
    print(f"{'trial':>5}  {metric:>12}  {'time_s':>10}  {'ms/struct':>9}  model artifact")
    for r in rows:
        ms = f"{r['ms_per_structure']:.3g}" if r["ms_per_structure"] is not None else "-"
        here = "" if r["present"] else " (weights not on this machine: artifacts are not committed)"
        print(f"{r['number']:>5}  {r['error']:>12.5g}  {r['time_s']:>10.4g}  {ms:>9}  {r['model'] or '-'}{here}")
    return 0


def dashboard_command(storage: str, folder: str, host: str, port: int) -> list[str]:
    """The optuna-dashboard command line serving `storage` (a journal file or a database URL) with the study's
    artifact folder."""
    from pathlib import Path

    from qallegro.hpo.artifacts import artifact_dir

    exe = Path(sys.executable).with_name("optuna-dashboard")
    kind = [] if "://" in storage else ["--storage-class", "JournalFileStorage"]
    return [str(exe), storage.removeprefix("journal:"), *kind, "--artifact-dir", str(artifact_dir(folder)),
            "--host", host, "--port", str(port)]


def port_problem(host: str, port: int) -> str | None:
    """Why the dashboard cannot listen on `host`:`port` (out of range, in use, not permitted), or None."""
    import socket

    if not 1 <= port <= 65535:
        return "not a TCP port (1-65535)"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as err:
        return f"cannot listen on {host} ({err.strerror or err})"
    return None


def _dashboard(args: argparse.Namespace) -> int:
    import os

    try:
        op = _open(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"qallegro hpo dashboard: {err}", file=sys.stderr)
        return 2
    cmd = dashboard_command(op.storage.url, str(op.folder), args.host, args.port)
    if not os.access(cmd[0], os.X_OK):
        print("qallegro hpo dashboard: optuna-dashboard is not installed (make install installs it)", file=sys.stderr)
        return 2
    if problem := port_problem(args.host, args.port):
        print(f"qallegro hpo dashboard: --port {args.port}: {problem}", file=sys.stderr)
        return 2
    print(f"study {op.name}: http://{args.host}:{args.port}/dashboard/ (Ctrl-C stops it)", flush=True)
    return serve(cmd)


def serve(cmd: list[str]) -> int:
    """Run the dashboard `cmd` in its own session until it exits; Ctrl-C or SIGTERM stop it without a traceback."""
    import signal
    import subprocess

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # its own session: the terminal's Ctrl-C reaches this process only, which stops the server quietly
    proc = subprocess.Popen(cmd, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("qallegro hpo dashboard: stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _pick(args: argparse.Namespace) -> int:
    from qallegro.hpo.artifacts import pick

    try:
        op = _open(args)
        chosen = pick(op, args.output, args.max_time_ms, args.max_error, args.threads)
    except (ValueError, FileNotFoundError) as err:
        print(f"qallegro pick: {err}", file=sys.stderr)
        return 2
    if chosen["skipped"]:
        print(f"qallegro pick: skipped front trial(s) {', '.join(map(str, chosen['skipped']))}: their model "
              "artifacts are not present", file=sys.stderr)
    print(f"trial {chosen['number']}: error {chosen['error']:.5g}, {chosen['ms_here']:.3g} ms per structure here "
          f"-> {chosen['exported']}")
    return 0
