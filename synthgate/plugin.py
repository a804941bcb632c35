"""The pytest plugin that turns ``pytest audits/`` into a release gate.

It adds the ``synthgate`` command-line options. Before any test runs it loads ``thresholds.toml``
and lists every folder, so a bad path or key stops the run with one message and no traceback. It
parametrizes the audit tests from the configuration, attaches evidence to the pytest-html report,
and writes ``summary.json`` beside the report.

Audit tests are named ``test_<check>`` and take the ``audit`` fixture plus ``features`` (for checks
on feature matrices) or ``role`` (for integrity checks on one image set)::

    def test_separability_auc(audit, features):
        verdict = audit.check("separability_auc", features=features)
        assert verdict.status != "fail", verdict.message
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

from .audit import AuditSession
from .cache import FeatureCache, default_cache_dir
from .config import DEFAULT_PATTERN, folder_dataset, load_config
from .errors import SynthgateError
from .images import list_images, read_groups
from .registry import CHECK_SPECS

logger = logging.getLogger(__name__)


@dataclass
class _AuditState:
    session: AuditSession
    summary_path: Path
    errors: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    manifold: bool = True


_STATE = pytest.StashKey[_AuditState]()
_RECORDED = pytest.StashKey[object]()


def pytest_addoption(parser):
    group = parser.getgroup("synthgate", "synthgate audit")
    group.addoption("--dataset", metavar="NAME", help="dataset from thresholds.toml to audit (default: audit.default_dataset)")
    group.addoption("--thresholds", metavar="FILE", help="thresholds and datasets file (default: thresholds.toml in the rootdir)")
    group.addoption("--real", metavar="DIR", help="folder of real images; audits folders without editing thresholds.toml")
    group.addoption("--generated", metavar="DIR", help="folder of generated images (with --real)")
    group.addoption("--holdout", metavar="DIR", help="folder of real images NOT used to train the generator (with --real)")
    group.addoption(
        "--groups", metavar="CSV|folder",
        help="patient ids of the real images: a CSV with columns file, patient_id, or 'folder' for each file's parent folder",
    )
    group.addoption("--pattern", metavar="GLOB", default=None, help=f"files to audit below each folder (default: {DEFAULT_PATTERN})")
    group.addoption("--cache-dir", metavar="DIR", help="feature cache folder (default: $SYNTHGATE_CACHE_DIR or ~/.cache/synthgate)")
    group.addoption("--no-cache", action="store_true", help="compute every feature again and store nothing")
    group.addoption(
        "--baseline", metavar="SUMMARY_JSON",
        help="summary.json of an accepted earlier run; a check that gets worse than it by more than its baseline_tolerance fails",
    )
    group.addoption("--jobs", metavar="N", type=int, default=None, help="worker processes for feature extraction (default: CPU count)")
    group.addoption(
        "--encoder", metavar="NAME", default=None,
        help="also run separability_auc, duplicate_rate, distribution_distance and coverage on this encoder "
        "(efficientnet_lite0, resnext101_32x8d, biomedclip, or an [encoders.<name>] of thresholds.toml), and draw "
        "the manifold view with it",
    )
    group.addoption(
        "--threads", metavar="N", type=int, default=None,
        help="CPU threads of the encoders (default: the encoder's threads key, else torch's default)",
    )
    group.addoption("--no-manifold", action="store_true", help="leave the UMAP manifold view out of the report")
    parser.addini("synthgate_audit_dir", "folder holding the audit tests, relative to the rootdir", default="audits")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not _is_audit_run(config):
        return
    try:
        state = _build_state(config)
    except SynthgateError as error:
        raise pytest.UsageError(f"synthgate: {error}") from None

    if config.option.htmlpath is None:
        config.option.htmlpath = str(Path(config.rootpath, "reports", state.session.dataset.name, "report.html"))
    config.option.self_contained_html = True
    state.summary_path = Path(config.option.htmlpath).resolve().parent / "summary.json"
    if getattr(config.option, "xmlpath", None) is None:
        config.option.xmlpath = str(state.summary_path.parent / "junit.xml")
    config.stash[_STATE] = state
    config.pluginmanager.register(_Reporter(state), "synthgate-reporter")


def pytest_generate_tests(metafunc):
    state = metafunc.config.stash.get(_STATE, None)
    if state is None:
        return
    check = metafunc.function.__name__.removeprefix("test_")
    session = state.session
    if "features" in metafunc.fixturenames:
        metafunc.parametrize("features", session.features_of(check))
    if "role" in metafunc.fixturenames:
        roles = [role for role in session.roles if role in CHECK_SPECS[check].roles]
        if check == "image_count":
            roles = [role for role in roles if role in session.dataset.expected_counts]
            if not roles:
                name = session.dataset.name
                if name in session.config.datasets:
                    reason = f"dataset {name!r} sets no expected_counts; add them to [datasets.{name}]"
                else:
                    reason = "folders given on the command line have no expected_counts; register them as a dataset in thresholds.toml to check counts"
                skip = pytest.mark.skip(reason=reason)
                metafunc.parametrize("role", [pytest.param(None, marks=skip)], ids=["no-expected-counts"])
                return
        metafunc.parametrize("role", roles)


class AuditFixture:
    """The ``audit`` fixture's value: runs one check and records its verdict for the report."""

    def __init__(self, state: _AuditState, node):
        self._state = state
        self._node = node

    @property
    def session(self) -> AuditSession:
        return self._state.session

    def check(self, name: str, *, features: str | None = None, role: str | None = None):
        """Run check ``name`` and return its :class:`~synthgate.gate.Verdict`.

        A :class:`~synthgate.errors.SynthgateError` (unusable data) fails the test with its
        message and no traceback. A check whose input the dataset lacks (a holdout, patient
        groups) is skipped with a reason that names what to add.
        """
        __tracebackhide__ = True
        reason = self.session.unavailable_reason(name, features)
        if reason is not None:
            label = f"{name}[{features or role}]" if features or role else name
            self._state.skipped.append((label, reason))
            pytest.skip(reason)
        try:
            verdict = self.session.run(name, features=features, role=role)
        except SynthgateError as error:
            failure = f"{name}: {error}"
        else:
            self._node.stash[_RECORDED] = self.session.verdicts[-1]
            return verdict
        # Failing outside the except block keeps pytest from printing the error twice, chained.
        pytest.fail(failure, pytrace=False)


@pytest.fixture
def audit(request) -> AuditFixture:
    """Provide the running audit to an audit test; see :class:`AuditFixture`."""
    state = request.config.stash.get(_STATE, None)
    if state is None:
        pytest.skip("audit tests run only as an audit: pytest audits/ [--dataset NAME]")
    return AuditFixture(state, request.node)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    recorded = item.stash.get(_RECORDED, None)
    state = item.config.stash.get(_STATE, None)
    if state is None or "audit" not in getattr(item, "fixturenames", ()):
        return
    if report.failed and (report.when != "call" or recorded is None):
        # The check did not produce a verdict (invalid data, a bug, a failing fixture): the
        # release is blocked and the scorecard and summary.json list it as an error.
        state.errors.append((item.nodeid, _failure_message(call, report)))
        return
    if report.when != "call" or recorded is None:
        return

    from pytest_html import extras

    from .report import render_evidence

    verdict = recorded.verdict
    report.extras = list(getattr(report, "extras", [])) + [extras.html(render_evidence(recorded, state.session))]
    properties = [
        ("check", recorded.check),
        ("statistic", verdict.result.statistic),
        ("value", verdict.result.value),
        ("verdict", verdict.status),
    ]
    # JUnit XML takes the properties of the teardown report, which copies them from the item.
    item.user_properties.extend(properties)
    report.user_properties.extend(properties)
    report.synthgate_verdict = verdict.status


def _failure_message(call, report) -> str:
    """Return the one-line reason a test failed without a verdict."""
    if call.excinfo is not None:
        error = call.excinfo.value
        text = str(error).strip() or type(error).__name__
        if not isinstance(error, (SynthgateError, pytest.fail.Exception)):
            text = f"{type(error).__name__}: {text}"
        return text.splitlines()[0] if len(text) > 300 else text
    return report.longreprtext.strip().splitlines()[-1] if report.longreprtext else "failed"


def pytest_report_teststatus(report, config):
    if report.when == "call" and report.passed and getattr(report, "synthgate_verdict", None) == "warn":
        return "warned", "W", ("WARN", {"yellow": True})
    return None


class _Reporter:
    """Session-level report hooks, registered only for an audit run."""

    def __init__(self, state: _AuditState):
        self.state = state
        self.manifold_section = ""
        self.manifold_summary = None

    def pytest_html_report_title(self, report):
        report.title = f"synthgate audit: {self.state.session.dataset.name}"

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        from .report import render_scorecard
        from .report_figures import encoders_html

        session = self.state.session
        counts = {
            role: (len(image_set), len(image_set.failures))
            for role, image_set in session.loaded_image_sets().items()
        }
        prefix.append(
            render_scorecard(
                session.verdicts, self.state.errors, session.dataset, counts_by_role=counts, versions=_versions(),
                group_source=session.group_source, skipped=self.state.skipped,
            )
        )
        prefix.append(encoders_html(session))
        prefix.append(self.manifold_section)

    def pytest_html_results_table_header(self, cells):
        cells.insert(1, "<th>Verdict</th>")

    def pytest_html_results_table_row(self, report, cells):
        status = getattr(report, "synthgate_verdict", "")
        if status == "warn":
            # pytest-html would show "Passed": the test passed, but the check failed a warn bound.
            cells[0] = cells[0].replace(">Passed<", ">Passed with warning<")
        cells.insert(1, f'<td class="col-verdict">{status.upper()}</td>')

    # Before pytest-html's own hook, which writes the report: the manifold view is computed once
    # here and then both the HTML and summary.json show it.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        from .report import write_summary
        from .report_figures import manifold_html

        if self.state.manifold and self.state.session.verdicts:
            self.manifold_section, self.manifold_summary = manifold_html(self.state.session)
        write_summary(
            self.state.summary_path, self.state.session.verdicts, self.state.errors,
            self.state.session, _versions(), skipped=self.state.skipped, manifold=self.manifold_summary,
        )

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("=", "synthgate scorecard")
        from .report import judged_statistics

        for recorded in self.state.session.verdicts:
            bounds = "; ".join(outcome.bound.describe() for outcome in recorded.verdict.outcomes)
            terminalreporter.write_line(
                f"{recorded.verdict.status.upper():5} {recorded.label:40} {judged_statistics(recorded.verdict)}  [{bounds}]"
            )
        for label, message in self.state.errors:
            terminalreporter.write_line(f"ERROR {label}: {message}")
        for label, reason in self.state.skipped:
            terminalreporter.write_line(f"SKIP  {label}: {reason}")
        if self.state.session.group_source == "inferred":
            terminalreporter.write_line(
                "NOTE  no patient groups given: real slices were grouped by pixel similarity (pass --groups for exact patients)"
            )
        from .report_figures import provenance_text

        for provenance in self.state.session.encoder_provenance().values():
            terminalreporter.write_line(f"ENCODER {provenance_text(provenance)}")
        terminalreporter.write_line(f"summary: {self.state.summary_path}")


def _is_audit_run(config) -> bool:
    options = config.option
    if options.dataset or options.real or options.generated:
        return True
    audit_dir = (Path(config.rootpath) / config.getini("synthgate_audit_dir")).resolve()
    invocation_dir = Path(config.invocation_params.dir)
    for argument in config.args:
        path = (invocation_dir / argument.split("::")[0]).resolve()
        if path == audit_dir or audit_dir in path.parents:
            return True
    return False


def _build_state(config) -> _AuditState:
    options = config.option
    thresholds = Path(options.thresholds) if options.thresholds else Path(config.rootpath) / "thresholds.toml"
    audit_config = load_config(thresholds)

    if options.real or options.generated:
        if not (options.real and options.generated):
            raise SynthgateError("--real and --generated must be given together")
        if options.dataset:
            raise SynthgateError("use either --dataset or --real/--generated, not both")
        # Name the run after the generated folder, so that audits of different folders do not
        # overwrite each other's reports/<name>/.
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(options.generated).resolve().name) or "custom"
        dataset = folder_dataset(
            options.real, options.generated, holdout=options.holdout, groups=options.groups,
            pattern=options.pattern or DEFAULT_PATTERN, name=name,
        )
    else:
        if options.holdout or options.groups:
            raise SynthgateError("--holdout and --groups go with --real/--generated; for a named dataset set them in thresholds.toml")
        dataset = audit_config.dataset(options.dataset or audit_config.default_dataset)
        if options.pattern:
            from dataclasses import replace

            dataset = replace(dataset, pattern=options.pattern)

    # List every folder now, so that a missing or empty folder stops the run before any test.
    # List every folder and read the patient groups now, so that a missing or empty folder or
    # an incomplete groups file stops the run before any test.
    group_specs = {"real": dataset.groups, "holdout": dataset.holdout_groups}
    for role in ("real", "generated", "holdout"):
        folder = dataset.folder(role)
        if folder is None:
            continue
        paths = list_images(folder, pattern=dataset.pattern, role=role)
        if group_specs.get(role) is not None:
            read_groups(group_specs[role], folder, paths)
    missing = sorted(set(CHECK_SPECS) - set(audit_config.checks))
    if missing:
        raise SynthgateError(
            f"{audit_config.path} has no [checks.<name>] table for: {', '.join(missing)}; every check needs "
            "one so that none is skipped silently (use severity = \"warn\" to report a check without gating)"
        )
    for check in audit_config.checks:
        audit_config.threshold(check, dataset.name)

    cache = FeatureCache(None if options.no_cache else (options.cache_dir or default_cache_dir()))
    jobs = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise SynthgateError(f"--jobs must be a positive integer; got {jobs}")
    if options.encoder is not None:
        try:
            audit_config.encoder_params(options.encoder)
        except SynthgateError as error:
            raise SynthgateError(f"--encoder: {error}") from None
    if options.threads is not None and options.threads < 1:
        raise SynthgateError(f"--threads must be a positive integer; got {options.threads}")
    accepted = _read_accepted(Path(options.baseline)) if options.baseline else None
    session = AuditSession(
        dataset, audit_config, cache=cache, n_jobs=jobs, accepted=accepted, encoder=options.encoder,
        threads=options.threads,
    )
    manifold = audit_config.report["manifold"] and not options.no_manifold
    return _AuditState(session=session, summary_path=Path(), manifold=manifold)


def _read_accepted(path: Path) -> dict:
    """Read the statistics of every check from an accepted run's ``summary.json``."""
    from .report import SUMMARY_SCHEMA_VERSION

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SynthgateError(f"--baseline file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SynthgateError(f"--baseline {path} is not a readable summary.json: {error}") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SUMMARY_SCHEMA_VERSION:
        raise SynthgateError(
            f"--baseline {path} must be a synthgate summary.json with schema_version {SUMMARY_SCHEMA_VERSION}; "
            f"got schema_version {version!r}"
        )
    accepted = {}
    for check in document.get("checks", []):
        qualifier = check.get("features") or check.get("role")
        label = f"{check['name']}[{qualifier}]" if qualifier else check["name"]
        accepted[label] = check["statistics"]
    return accepted


def _versions() -> dict:
    versions = {}
    packages = (
        "synthgate", "numpy", "scipy", "scikit-image", "scikit-learn", "pillow", "pytest", "pytest-html",
        "great-expectations", "curvelets", "umap-learn", "torch", "torchvision", "open_clip_torch",
    )
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
