"""Where an experiment's jobs run: in this process, in N worker processes, or as tasks on a Ray cluster.

Every executor maps one top-level function ``fn(item, shared)`` over a list of small items (job
specs) that all read one large ``shared`` object (the faces), and yields ``(position, result)`` as
jobs finish. The faces travel once per worker process (:class:`ProcessExecutor`'s initializer) or
once per cluster (:class:`RayExecutor`'s ``ray.put``), never once per job.

Same inputs, same results: a job seeds itself from its own seed, so only the thread count can
change its float sums. :class:`ProcessExecutor` and :class:`RayExecutor` therefore set each job's
thread count themselves (``threads``), identically on every worker; :class:`LocalExecutor` leaves
the calling process's setting alone, as it always did.

A worker that dies (killed, out of memory) costs only its job: the process pool is rebuilt and the
unfinished jobs are submitted again; Ray re-runs the task (``max_retries``). A job that raises is
an error of the experiment and is not retried.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")
JobFn = Callable[[T, Any], R]

#: How often a job whose worker died is started again before the experiment gives up on it.
MAX_RETRIES = 3
RAY_EXTRA = 'pip install "feraug[ray]"'


class Executor(AbstractContextManager):
    """Runs jobs; used as a context manager so that a cluster connection it opened is closed after."""

    name = "local"

    def map(self, fn: JobFn, items: Sequence[T], shared: Any, *,
            progress: bool = False) -> Iterator[tuple[int, R]]:  # fmt: skip
        """``(i, fn(items[i], shared))`` for every item, in the order jobs finish."""
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what :meth:`map` started and kept (nothing, unless said otherwise)."""


class LocalExecutor(Executor):
    """One job after the other in this process, at this process's thread count (the default)."""

    def map(self, fn: JobFn, items: Sequence[T], shared: Any, *,
            progress: bool = False) -> Iterator[tuple[int, R]]:  # fmt: skip
        for i, item in enumerate(items):
            yield i, fn(item, shared)


class _Progress:
    """The whole experiment's one progress bar: jobs done, running and failed (worker deaths), with an ETA."""

    def __init__(self, total: int, show: bool) -> None:
        self.bar = tqdm(total=total, unit="job", desc="jobs", disable=None if show and total else True,
                        dynamic_ncols=True)  # None: tqdm hides itself when stderr is not a terminal (logs, CI)
        self.running = self.failed = 0

    def update(self, *, done: int = 0, running: int | None = None, failed: int = 0) -> None:
        self.running = self.running if running is None else running
        self.failed += failed
        self.bar.set_postfix(running=self.running, failed=self.failed, refresh=False)
        self.bar.update(done)

    def close(self) -> None:
        self.bar.close()


# Worker-process state, set once per process by _init_worker: the object every job of the map reads.
_SHARED: Any = None


def _init_worker(shared: Any, threads: int, gpus: int, counter: Any) -> None:
    """Give this worker the faces once, its share of the cores and, on a CUDA machine, one GPU of its own."""
    global _SHARED
    _SHARED = shared
    torch.set_num_threads(threads)
    if gpus:
        with counter.get_lock():
            index, counter.value = counter.value, counter.value + 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)  # before this process first touches CUDA


def _call(fn: JobFn, item: Any) -> Any:
    """In a worker: one job, with the faces its initializer received (only ``fn`` and ``item`` cross per job)."""
    return fn(item, _SHARED)


class ProcessExecutor(Executor):
    """``workers`` jobs at a time in spawned worker processes, each on ``threads`` cores (and one GPU where CUDA is).

    Spawned, not forked: a forked child inherits the parent's OpenMP thread pool in whatever state
    it was and can hang in its first parallel region.
    """

    def __init__(self, workers: int, threads: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"processes:N needs N >= 1, got {workers}")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.name = f"processes:{workers}"

    def map(self, fn: JobFn, items: Sequence[T], shared: Any, *,
            progress: bool = False) -> Iterator[tuple[int, R]]:  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        gpus = torch.cuda.device_count()
        pending = set(range(len(items)))
        attempts = dict.fromkeys(pending, 0)
        bar = _Progress(len(items), progress)
        try:
            while pending:
                counter = ctx.Value("i", 0)
                with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(shared, self.threads, gpus, counter)) as pool:  # fmt: skip
                    futures: dict[Future, int] = {pool.submit(_call, fn, items[i]): i for i in sorted(pending)}
                    lost: list[int] = []
                    while futures:
                        bar.update(running=min(self.workers, len(futures)))
                        finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                        for future in finished:
                            i = futures.pop(future)
                            if isinstance(future.exception(), BrokenProcessPool):
                                lost.append(i)  # a worker died: the pool fails every job it had not finished
                                continue
                            result = future.result()  # a job's own error ends the experiment
                            pending.discard(i)
                            bar.update(done=1)
                            yield i, result
                if lost:
                    self._count_attempts(attempts, lost, bar)
        finally:
            bar.close()

    @staticmethod
    def _count_attempts(attempts: dict[int, int], lost: list[int], bar: _Progress) -> None:
        """Charge the jobs a dead worker took down; give up on one that keeps killing its worker."""
        bar.update(failed=1)
        for i in lost:
            attempts[i] += 1
            if attempts[i] > MAX_RETRIES:
                raise RuntimeError(f"job {i}'s worker process died {attempts[i]} times (killed, or out of memory?)")


class RayExecutor(Executor):
    """Jobs as Ray tasks: each asks for ``threads`` CPUs (and one GPU where the cluster has GPUs).

    ``address`` None starts a local Ray instance or attaches to one already running on this
    machine; ``"auto"`` or ``"HOST:PORT"`` attaches to an existing cluster. A Ray session that is
    already initialized (e.g. by the caller) is used as it is and left running.
    """

    def __init__(self, address: str | None = None, threads: int = 1) -> None:
        self.address, self.threads = address, threads
        self.name = "ray" + (f":{address}" if address else "")
        self._started = False

    def map(self, fn: JobFn, items: Sequence[T], shared: Any, *,
            progress: bool = False) -> Iterator[tuple[int, R]]:  # fmt: skip
        if not items:  # all cached: no reason to start or join a cluster
            return
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False)
            self._started = True
        gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
        task = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=MAX_RETRIES)(_ray_job)
        ref = ray.put(shared)  # the faces cross to the object store once, not with every task
        futures = {task.remote(fn, item, ref, self.threads): i for i, item in enumerate(items)}
        bar = _Progress(len(items), progress)
        try:
            while futures:
                bar.update(running=len(futures))
                ready, _ = ray.wait(list(futures), num_returns=1)
                for done in ready:
                    i = futures.pop(done)
                    bar.update(done=1)
                    yield i, ray.get(done)
        finally:
            for left in futures:
                ray.cancel(left)
            bar.close()

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def _ray_job(fn: JobFn, item: Any, shared: Any, threads: int) -> Any:
    """A Ray task: the job at the thread count it asked for (Ray resolves ``shared`` from the object store)."""
    torch.set_num_threads(threads)
    return fn(item, shared)


def parse_executor(text: str) -> Executor:
    """``local``, ``processes:N`` or ``ray[:ADDRESS]`` (ADDRESS: ``auto`` or ``HOST:PORT``) as an executor.

    Raises ValueError for other text and ImportError when ``ray`` is asked for but not installed
    (checked here, so the error comes before any data is loaded).
    """
    kind, _, arg = text.strip().partition(":")
    if kind == "local" and not arg:
        return LocalExecutor()
    if kind == "processes":
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError(f"processes:N needs a number of worker processes N >= 1, got {text!r}")
        return ProcessExecutor(int(arg))
    if kind == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ImportError(f"--executor ray needs Ray, which is not installed: {RAY_EXTRA}")
        return RayExecutor(arg or None)
    raise ValueError(f"unknown executor {text!r}: expected local, processes:N or ray[:ADDRESS]")
