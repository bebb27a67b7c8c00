"""pytest hook for the nbval run over the lesson notebooks: a solution notebook must pass every exercise check it runs.

nbval executes each notebook (in smoke mode under `make test`) and keeps every cell's outputs; this hook reads them from
that same run, so nothing is executed twice. A cell that prints a check verdict starting with ❌ (wrong answer, or the
check crashed) or ⏳ (a solution left unfinished) fails, naming the notebook, the cell and the verdict.
"""

import pytest

from tlcourse.assign import verdict_lines
from tlcourse.checks.base import PASS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)  # set by nbval's IPyNbCell after it ran the cell
    if call.when != "call" or not report.passed or outputs is None:
        return
    failed = [line for line in verdict_lines(outputs) if not line.startswith(PASS)]
    if failed:
        report.outcome = "failed"
        first = (getattr(getattr(item, "cell", None), "source", "") or "").strip().split("\n")[0][:60]
        where = f"{item.path.name}::Cell {getattr(item, 'cell_num', '?')} ({first})"
        report.longrepr = f"{where}: an exercise check did not pass in the solution notebook:\n" + "\n".join(failed)
