"""Command line: ``python -m dnnbook {execute,validate,build,all,data,sweep} [options]``."""

from __future__ import annotations

import argparse
import os
import sys
import time

from dnnbook.profiles import CHOICES as PROFILES
from dnnbook.runtime import BACKENDS

COMMANDS = ("execute", "validate", "build", "all", "data", "sweep")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dnnbook",
        description=(
            "Execute the book's chapters with papermill, validate them with nbval and build the HTML book."
        ),
    )
    p.add_argument(
        "command",
        choices=COMMANDS,
        help="execute | validate | build | all (the three in turn) "
        "| data (fetch Fashion-MNIST) | sweep (execute at each of --seeds, tabulate the claims)",
    )
    p.add_argument(
        "--profile",
        default=os.environ.get("PROFILE", "auto"),
        help="quick | full | auto (full when a GPU is visible, else quick); default auto",
    )
    p.add_argument(
        "--chapters",
        default="",
        help="comma-separated chapters by number, name or topic "
        "(e.g. 00,01 or gradients); default all",
    )
    p.add_argument(
        "--backend",
        default=os.environ.get("BACKEND") or os.environ.get("KERAS_BACKEND") or "tensorflow",
        help="tensorflow | jax | torch; default tensorflow",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="base seed passed to every chapter (default: the chapter's)",
    )
    p.add_argument(
        "--seeds",
        default="1,2,3,4,5",
        help="sweep: comma-separated base seeds, each executed into "
        "_build/sweep/PROFILE-BACKEND/seed-N; default 1,2,3,4,5",
    )
    p.add_argument(
        "--save",
        action="store_true",
        help="sweep: also copy the table to results/sweep-PROFILE-BACKEND.md, for the book's sweep page",
    )
    p.add_argument(
        "--join",
        action="store_true",
        help="sweep: tabulate the committed results/sweep-PROFILE-BACKEND.csv's other seeds "
        "beside the ones swept now (a chapter swept again at a seed replaces its cells there)",
    )
    p.add_argument(
        "--no-execute",
        action="store_true",
        help="sweep: only tabulate the seed folders already in _build/sweep/PROFILE-BACKEND (e.g. chapters "
        "executed on different machines and copied there)",
    )
    p.add_argument(
        "--validate",
        action="store_true",
        help="execute: also validate with nbval, as `all` does before it builds",
    )
    p.add_argument(
        "--jobs",
        default=os.environ.get("JOBS", "1"),
        help="chapters executed and validated at once, each in its own process; default 1; "
        "'auto': every chapter at once when a GPU is visible (they share it), else 1. "
        "With 2 or more, a chapter's time includes the load of the others, and `all` "
        "validates each chapter as soon as it has run",
    )
    return p


def resolve_jobs(jobs: str, chapters: int) -> int:
    """``--jobs`` as a number: ``auto`` is every chapter at once when a GPU is visible (small
    models leave most of a GPU idle, so chapters share it), else one at a time. Processes that
    share a GPU take its memory as they need it instead of reserving most of it up front."""
    if jobs != "auto":
        return int(jobs)
    from dnnbook.runtime import gpu_names

    if not gpu_names():
        return 1
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    return max(1, chapters)


def _fail(msg: str, code: int = 2) -> int:
    print(f"dnnbook: error: {msg}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, 1 for a failed step)."""
    args = _parser().parse_args(argv)
    if args.profile not in PROFILES:
        return _fail(f"unknown profile {args.profile!r}; choose one of: {', '.join(PROFILES)}")
    if args.backend not in BACKENDS:
        return _fail(f"unknown backend {args.backend!r}; choose one of: {', '.join(BACKENDS)}")
    if args.jobs != "auto" and (not str(args.jobs).isdigit() or int(args.jobs) < 1):
        return _fail(f"--jobs must be 'auto' or a whole number of at least 1, got {args.jobs!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if args.command == "sweep" and (not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds)):
        return _fail(
            f"--seeds must be distinct whole numbers separated by commas, got {args.seeds!r}"
        )
    os.environ["KERAS_BACKEND"] = args.backend  # before anything imports keras; kernels inherit it
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # the book's build stops at a claim that does not hold (kernels inherit this); measuring
    # runs may ask for DNNBOOK_CLAIMS=report
    os.environ.setdefault("DNNBOOK_CLAIMS", "strict")
    from dnnbook.book import pipeline

    if args.command == "data":
        from dnnbook import data

        try:
            print(f"Fashion-MNIST is in {data.ensure_fashion_mnist(download=True)}")
        except data.DataError as exc:
            return _fail(str(exc), 1)
        return 0
    try:
        selected = pipeline.select([c for c in args.chapters.split(",") if c.strip()])
    except pipeline.UsageError as exc:
        return _fail(str(exc))
    if not selected:
        return _fail("no chapters found in chapters/")
    from dnnbook import data, profiles

    profile = profiles.resolve(args.profile)
    jobs = resolve_jobs(args.jobs, len(selected))
    if args.command == "sweep":
        names = [c.name for c in selected]
        return _sweep(
            names, profile, seeds, args.backend, jobs, args.save, args.no_execute, args.join
        )
    side_by_side = jobs > 1 and len(selected) > 1 and args.command in ("execute", "all")
    validating = args.command in ("validate", "all") or (
        args.command == "execute" and args.validate
    )
    try:
        if args.command in ("execute", "all"):
            try:
                data.load(
                    "fashion_mnist", n_train=10, n_valid=10, n_test=10
                )  # fail before any long work
            except data.DataError as exc:
                return _fail(str(exc), 1)
            times, wall = {}, None
            if side_by_side:
                also = ", each validated right after it" if validating else ""
                print(
                    f"executing {len(selected)} chapters, {jobs} at a time (profile {profile}, "
                    f"backend {args.backend}){also}",
                    flush=True,
                )
                start = time.perf_counter()
                times = pipeline.execute_parallel(
                    selected, profile, jobs=jobs, seed=args.seed, validate=validating
                )
                wall = time.perf_counter() - start
            for i, chapter in enumerate(selected if not times else [], 1):
                print(
                    f"[{i}/{len(selected)}] executing {chapter.name} (profile {profile}, "
                    f"backend {args.backend})",
                    flush=True,
                )
                times[chapter.name] = pipeline.execute(chapter, profile, seed=args.seed)
                print(
                    f"[{i}/{len(selected)}] {chapter.name} done in {times[chapter.name]:.0f} s",
                    flush=True,
                )
        if validating and not side_by_side:
            start = time.perf_counter()
            pipeline.validate(selected, jobs)
            print(
                f"nbval: checked cells reproduced ({time.perf_counter() - start:.0f} s)", flush=True
            )
        if args.command in ("build", "all"):
            index = pipeline.build(selected)
            print(f"\nThe book is at {index}")
        if args.command in ("execute", "all"):
            _print_times(times, profile, args.backend, wall, validated=validating)
    except pipeline.PipelineError as exc:
        return _fail(str(exc), 1)
    return 0


def _sweep(
    chapters: list[str],
    profile: str,
    seeds: list[int],
    backend: str,
    jobs: int,
    save: bool,
    no_execute: bool = False,
    join: bool = False,
) -> int:
    """Execute ``chapters`` at each seed and write the claims table; 1 if a claim failed at a
    seed or a chapter crashed (the table says which), else 0."""
    import shutil

    from dnnbook import data
    from dnnbook.book import pipeline, sweep

    start = time.perf_counter()
    committed = pipeline.RESULTS / f"sweep-{profile}-{backend}.csv" if join else None
    if committed is not None and not committed.exists():
        return _fail(f"--join: there is no committed table {committed} to join", 2)
    if no_execute:
        table, clean = sweep.tabulate(
            chapters, profile, seeds, backend=backend, executed=False, join=committed
        )
    else:
        try:
            data.load("fashion_mnist", n_train=10, n_valid=10, n_test=10)  # before long work
        except data.DataError as exc:
            return _fail(str(exc), 1)
        table, clean = sweep.run(
            chapters, profile, seeds, backend=backend, jobs=jobs, join=committed
        )
    print(
        f"\nThe sweep table is at {table} (and {table.with_suffix('.csv')}), "
        f"{time.perf_counter() - start:.0f} s"
    )
    if save:
        saved = pipeline.RESULTS / f"sweep-{profile}-{backend}.md"
        saved.parent.mkdir(exist_ok=True)
        shutil.copyfile(table, saved)
        shutil.copyfile(table.with_suffix(".csv"), saved.with_suffix(".csv"))
        print(f"saved for the book as {saved} (and {saved.with_suffix('.csv').name})")
    if not clean:
        print(
            "some claims did not hold at every seed, or a chapter crashed: see the table",
            file=sys.stderr,
        )
    return 0 if clean else 1


def _print_times(
    times: dict[str, float],
    profile: str,
    backend: str,
    wall: float | None = None,
    validated: bool = False,
) -> None:
    """Each chapter's execution time, their total and, for chapters run side by side, the wall
    time (with ``validated``, the nbval re-executions run in it too)."""
    width = max(len(n) for n in [*times, "wall time"])
    print(f"\nExecution times (profile {profile}, backend {backend}):")
    for name, secs in times.items():
        print(f"  {name:<{width}}  {secs:7.1f} s")
    print(f"  {'total':<{width}}  {sum(times.values()):7.1f} s")
    if wall is not None:
        what = "execution and nbval" if validated else "execution"
        print(f"  {'wall time':<{width}}  {wall:7.1f} s ({what}, chapters side by side)")
