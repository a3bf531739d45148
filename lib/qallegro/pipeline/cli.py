"""`qallegro reproduce`: run the book's notebooks with papermill (cached, in dependency order), then build it."""

from __future__ import annotations

import argparse
import sys

from qallegro.scales import BOOK_SCALE, SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="run the book's notebooks at a scale (cached) and build the book",
        description="Run every notebook of the book with papermill in dependency order at the given scale, "
                    "re-executing only those whose cache key (parameters, scale, code version, notebook, data, "
                    "dependencies) changed, then build the book with jupyter-book. Logs: _build/logs/.")
    p.add_argument("--scale", choices=SCALES, default=BOOK_SCALE,
                   help=f"experiment scale (default {BOOK_SCALE}, the committed pages)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME",
                   help="run only these notebooks (shell patterns, e.g. 'moo-culi-*') and their dependencies")
    p.add_argument("--force", action="store_true", help="re-execute even when the cached page is up to date")
    p.add_argument("--copy", action="store_true",
                   help="work in a temporary copy of the repository (committed pages stay untouched); logs "
                        "and HTML come back to _build/copy-SCALE/")
    p.add_argument("--keep-copy", action="store_true", help="with --copy: keep the temporary copy")
    p.add_argument("--strict", action="store_true",
                   help="build with `-W --keep-going --all`: every page is rebuilt, any warning fails")
    p.add_argument("--no-build", action="store_true", help="run the notebooks but do not build the book")
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    p.add_argument("--status", action="store_true",
                   help="what is done and what is left: the campaign's units of work (scales with `run_with_book` "
                        "in presets/campaign.yaml) and the pages; runs nothing")
    p.add_argument("--campaign-only", action="store_true",
                   help="run this process as a worker of the campaign's units, then stop (no notebooks)")
    p.set_defaults(func=_reproduce)


def _campaign_state(scale: str) -> tuple[list, dict[str, list[str]]]:
    """The campaign's units at `scale` (none where the book does not run one) and their ids by state."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.units import UnitQueue, status
    from qallegro.pipeline.campaign import campaign_units

    units = campaign_units(scale)
    return units, (status(units, UnitQueue(campaign_root(scale))) if units else {})


def _reproduce(args: argparse.Namespace) -> int:
    from qallegro.errors import PipelineError
    from qallegro.pipeline.campaign import run_campaign
    from qallegro.pipeline.notebooks import NOTEBOOKS
    from qallegro.pipeline.reproduce import REPO, plan, reproduce, reproduce_in_copy
    from qallegro.utils import sigterm_as_interrupt

    kwargs = {"only": args.only, "force": args.force, "build": not args.no_build, "strict": args.strict,
              "progress": sys.stderr.isatty()}
    sigterm_as_interrupt()  # a kill stops like Ctrl-C: the page in progress and the temporary copy are cleaned up
    if args.status:
        units, state = _campaign_state(args.scale)
        if units:
            print(f"campaign: {len(units)} units: " + ", ".join(f"{len(v)} {k}" for k, v in state.items()))
        steps = plan(NOTEBOOKS, args.scale, REPO / "book", only=args.only)
        stale = [st.notebook.name for st in steps if not st.cached]
        from qallegro.pipeline.cache import built_by_other_code, stored_record

        held = sorted({rec["scale"] for st in steps if (rec := stored_record(REPO / "book" / st.notebook.page))
                       and rec.get("scale") and rec.get("scale") != args.scale})
        print(f"pages: {len(steps) - len(stale)} of {len(steps)} cached" + (f"; to run: {', '.join(stale)}"
                                                                             if stale else "")
              + (f" (book/ holds pages of scale {', '.join(held)}; running this scale replaces them)"
                 if held else ""))

        other = built_by_other_code({st.notebook.name: REPO / "book" / st.notebook.page for st in steps
                                     if st.cached}, REPO)
        if other:
            print(f"{len(other)} cached page(s) built by other library code than this checkout's (lib/qallegro "
                  f"differs from their commits {', '.join(sorted(set(other.values())))}; the cache key counts the "
                  f"version, not the code): {', '.join(other)}; `--force` re-runs them")
        return 0
    if args.campaign_only and args.dry_run:  # list the campaign's units left to run, run nothing
        units, state = _campaign_state(args.scale)
        left = [u for k, v in state.items() if k != "done" for u in v]
        print(f"campaign at {args.scale}: {len(units)} units, {len(units) - len(left)} done; would run: "
              + (", ".join(str(u) for u in left) if left else "nothing"))
        return 0
    if args.campaign_only:
        wait = run_campaign(args.scale)
        if wait:
            print(f"qallegro reproduce: {wait}", file=sys.stderr)
        return 1 if wait else 0
    kwargs["campaign"] = not args.dry_run  # in the temporary copy with --copy
    try:
        if args.dry_run:
            for step in plan(NOTEBOOKS, args.scale, REPO / "book", only=args.only, force=args.force):
                state = "cached" if step.cached else "run"
                print(f"{step.notebook.name:32s} {state:7s} book/{step.notebook.page}  key {step.key}")
            return 0
        if args.copy:
            report = reproduce_in_copy(args.scale, keep=args.keep_copy, **kwargs)
        else:
            report = reproduce(args.scale, **kwargs)
    except (FileNotFoundError, ValueError) as err:  # a bad --only pattern, notebook, preset or registry entry
        raise PipelineError(str(err)) from err
    if report.failed:
        for step in report.failed:
            print(f"qallegro reproduce: {step.notebook.name}: {step.status}: {step.error}", file=sys.stderr)
        return 1
    if report.html is not None:
        print(f"the book: {report.html / 'index.html'}", file=sys.stderr)
    return 0
