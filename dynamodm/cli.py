"""The ``dynamodm`` command: the embedded server, a registry's tables, export and import.

Thin on purpose: every command opens a session with ``dm.connect`` and calls Session
and Model methods; nothing here builds a DynamoDB request. Exit codes: 0 done,
1 failed (one ``error:`` line on stderr), 2 bad usage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import functools
import importlib
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from . import __version__
from .batch import batch_write
from .codec import Item, item_from_json
from .errors import (
    ConditionFailed,
    ConfigurationError,
    DynamoDMError,
    ItemTooLarge,
    ServiceError,
    TableNotFound,
    UsageError,
)
from .iac import check_template, table_definitions
from .local import LocalServer
from .migrate import MigrationReport, Migrator
from .model import Model
from .ratelimit import Kind, RateLimit
from .registry import Registry
from .session import Session, connect
from .transport import LOCAL_CREDENTIALS

T = TypeVar("T")

BATCH_WINDOW = 500
"""Lines validated, then written in one ``dm.batch_write()`` block (bounds memory)."""
CONDITIONAL_WINDOW = 256
CONDITIONAL_CONCURRENCY = 16
LOCAL_REGION = "us-east-1"

app = typer.Typer(
    name="dynamodm",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
tables_app = typer.Typer(
    help="Create, list, describe and delete the tables of a registry.",
    no_args_is_help=True,
)
app.add_typer(tables_app, name="tables")


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"dynamodm {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """dynamodm: the embedded local server, tables, export and import."""


def main() -> None:
    """Entry point of the ``dynamodm`` console script and ``python -m dynamodm``."""
    app()


# ---------------------------------------------------------------- arguments


def _bad(message: str, argument: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{argument}'")


def _import_target(spec: str, argument: str, example: str) -> tuple[object, str]:
    """Import the module of ``module[:attribute]``; return it and the attribute path."""
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise _bad(f"{spec!r}: expected module:attribute, e.g. myapp.models:{example}", argument)
    # Like uvicorn and flask: modules of the project in the current directory are found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise _bad(
                f"no module named {error.name!r} (run from the project's directory or set "
                "PYTHONPATH)",
                argument,
            ) from None
        _fail(f"importing {module_name!r} failed: {type(error).__name__}: {error}")
    except Exception as error:
        _fail(f"importing {module_name!r} failed: {type(error).__name__}: {error}")
    return module, attribute


def _lookup(module: object, attribute: str, spec: str, argument: str) -> object:
    try:
        return functools.reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise _bad(f"{spec!r}: the module has no attribute {attribute!r}", argument) from None


def load_registry(spec: str) -> Registry:
    """``module:attribute`` naming a ``dm.Registry``, or a module with a ``registry``."""
    module, attribute = _import_target(spec, "REGISTRY", "registry")
    found = _lookup(module, attribute or "registry", spec, "REGISTRY")
    if not isinstance(found, Registry):
        raise _bad(
            f"{spec!r} is a {type(found).__name__}, not a dm.Registry; name one as "
            "module:attribute (e.g. myapp.models:registry)",
            "REGISTRY",
        )
    return found


def load_model(spec: str) -> type[Model]:
    """``module:ClassName`` naming a concrete model (one with a table)."""
    module, attribute = _import_target(spec, "MODEL", "User")
    if not attribute:
        raise _bad(f"{spec!r}: name the model as module:ClassName", "MODEL")
    found = _lookup(module, attribute, spec, "MODEL")
    if not (isinstance(found, type) and issubclass(found, Model)):
        raise _bad(f"{spec!r} is not a dynamodm model class", "MODEL")
    if found.__dm_schema__ is None:
        raise _bad(f"{spec!r} is abstract (no Meta.table): it has no table", "MODEL")
    return found


class Format(enum.StrEnum):
    """How export writes and import reads each line."""

    dynamodb = "dynamodb"
    plain = "plain"


RegistryArg = Annotated[
    str,
    typer.Argument(
        metavar="REGISTRY",
        help="module:attribute naming a dm.Registry, or a module with a `registry` attribute.",
        show_default=False,
    ),
]
ModelArg = Annotated[
    str, typer.Argument(metavar="MODEL", help="module:ClassName of a model.", show_default=False)
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="DynamoDB endpoint. Default: $DYNAMODB_ENDPOINT_URL, $DYNAMODB_ENDPOINT, else AWS.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="AWS region. Default: $AWS_REGION, $AWS_DEFAULT_REGION, the AWS config.",
        show_default=False,
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Table name prefix, used verbatim. Default: $DYNAMODB_TABLE_PREFIX, else none.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="dynamodb: DynamoDB JSON (keeps sets, bytes, exact numbers, unknown "
        "attributes). plain: the model's JSON (model_dump).",
        case_sensitive=False,
    ),
]


RateOption = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Capacity units a second to stay under (read units for export, write units "
        "for import, both for migrate): requests are paced as by dm.RateLimit. Default: "
        "no limit.",
        show_default=False,
    ),
]


def _connect(
    endpoint_url: str | None,
    region: str | None,
    prefix: str | None,
    rate_limit: RateLimit | None = None,
) -> Session:
    return connect(
        endpoint_url=endpoint_url, region=region, table_prefix=prefix, rate_limit=rate_limit
    )


def _rate_limit(rate: float | None, *kinds: Kind) -> RateLimit | None:
    """The session's limit for ``--rate``, on reads or writes or both (None: no limit)."""
    if rate is None:
        return None
    if not 0 < rate < float("inf"):
        raise _bad(f"{rate}: give capacity units a second, a positive number", "--rate")
    return RateLimit(
        read=rate if "read" in kinds else None, write=rate if "write" in kinds else None
    )


# ---------------------------------------------------------------- failures


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; a dynamodm error becomes one line and exit code 1."""
    try:
        return asyncio.run(work)
    except DynamoDMError as error:
        _fail(str(error))


def _describe_error(error: BaseException) -> str:
    """One line about a bad line or item; never the values themselves."""
    if isinstance(error, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in e['loc']) or 'item'}: {e['msg']}"
            for e in error.errors()
        ]
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return "; ".join(problems[:3]) + more
    if isinstance(error, PydanticSerializationError):
        return (
            f"{error}; plain JSON follows the model's JSON settings (for binary data set "
            "ser_json_bytes='base64' and val_json_bytes='base64'), or use --format dynamodb"
        )
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg}, column {error.colno})"
    return str(error)


# ---------------------------------------------------------------- consoles


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped output is not cut to 80 columns: table names stay whole.
        console.width = max(console.width, 160)
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _say(console: Console, text: str) -> None:
    """One line on a Rich console, as written (no markup, never wrapped)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _progress(console: Console, *, in_bytes: bool) -> Progress:
    counter = DownloadColumn() if in_bytes else MofNCompleteColumn()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        counter,
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
    )


# ---------------------------------------------------------------- local


@app.command()
def local(
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")
    ] = 8000,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Run the embedded DynamoDB-compatible server (moto, in memory) until Ctrl-C or SIGTERM.

    Prints the environment variables that point dm.connect() and the AWS tools at it.
    """
    try:
        server = LocalServer(host, port or None)
    except ValueError as error:
        raise _bad(str(error), "--host") from None
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except (ImportError, OSError, RuntimeError) as error:
            _fail(str(error))
        try:
            _print_local_env(server, region, prefix)
            while not stop.wait(0.2):
                pass
        finally:
            server.stop()
        typer.echo("dynamodm local: stopped", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_local_env(server: LocalServer, region: str | None, prefix: str | None) -> None:
    key, secret = LOCAL_CREDENTIALS
    exports = {
        "DYNAMODB_ENDPOINT_URL": server.endpoint_url,
        "AWS_REGION": region or os.environ.get("AWS_REGION") or LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    table_prefix = prefix if prefix is not None else os.environ.get("DYNAMODB_TABLE_PREFIX")
    if table_prefix:
        exports["DYNAMODB_TABLE_PREFIX"] = table_prefix
    typer.echo(
        f"# dynamodm local: an in-memory DynamoDB (moto) on {server.endpoint_url}; "
        "Ctrl-C stops it and forgets every table"
    )
    for name, value in exports.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


# ---------------------------------------------------------------- tables


def _tables_of(db: Session, registry: Registry) -> dict[str, list[str]]:
    """Physical table name -> the names of the registry's models stored in it."""
    models = registry.models
    if not models:
        raise UsageError(
            f"registry {registry.name!r} has no models: import the modules that define them "
            "in the module that holds the registry"
        )
    tables: dict[str, list[str]] = {}
    for model in models:
        tables.setdefault(db.table_name(model), []).append(model.__name__)
    return tables


def _where(db: Session) -> str:
    return f"endpoint {db.endpoint_url}" if db.endpoint_url else f"AWS region {db.region}"


@tables_app.command("create")
def tables_create(
    registry: RegistryArg,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Create the registry's missing tables and wait until they are ACTIVE (idempotent)."""
    loaded = load_registry(registry)

    async def create() -> list[str]:
        async with _connect(endpoint_url, region, prefix) as db:
            _tables_of(db, loaded)
            return await db.create_tables(*loaded.models)

    for name in _run(create()):
        typer.echo(f"{name}: ACTIVE")


@tables_app.command("list")
def tables_list(
    registry: Annotated[
        str | None,
        typer.Argument(
            metavar="REGISTRY",
            help="Show the registry's tables and whether they exist. "
            "Without it: every table under the prefix.",
            show_default=False,
        ),
    ] = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """List tables: the registry's (with their models), or every table under the prefix."""
    loaded = load_registry(registry) if registry is not None else None

    async def listing() -> tuple[list[str], dict[str, list[str]]]:
        async with _connect(endpoint_url, region, prefix) as db:
            wanted = _tables_of(db, loaded) if loaded is not None else {}
            return await db.list_tables(), wanted

    existing, wanted = _run(listing())
    if loaded is None:
        for name in existing:
            typer.echo(name)
        return
    table = Table("table", "exists", "models", box=None, pad_edge=False)
    for name, models in wanted.items():
        table.add_row(name, "yes" if name in existing else "no", ", ".join(models))
    _stdout().print(table)


@tables_app.command("describe")
def tables_describe(
    registry: RegistryArg,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Status, item count, size, indexes, TTL and stream of the registry's tables.

    Exits with 1 if any of them does not exist.
    """
    loaded = load_registry(registry)

    async def describe() -> tuple[Table, list[str]]:
        async with _connect(endpoint_url, region, prefix) as db:
            tables = _tables_of(db, loaded)
            first_model = {db.table_name(m): m for m in reversed(loaded.models)}
            table = Table("table", "status", "items", "bytes", "indexes", "ttl", "stream", "models")
            missing = []
            for name, models in tables.items():
                try:
                    found = await db.describe_table(first_model[name])
                except TableNotFound:
                    missing.append(name)
                    table.add_row(name, "MISSING", "", "", "", "", "", ", ".join(models))
                    continue
                indexes = ", ".join(f"{i} ({s})" for i, s in found.indexes.items())
                table.add_row(
                    name,
                    found.status,
                    str(found.item_count),
                    str(found.size_bytes),
                    indexes or "-",
                    found.ttl_attribute or "-",
                    found.stream or "-",
                    ", ".join(models),
                )
            return table, missing

    table, missing = _run(describe())
    _stdout().print(table)
    if missing:
        _fail(
            f"{len(missing)} of the registry's tables do not exist ({', '.join(missing)}); "
            "create them with `dynamodm tables create`"
        )


class TemplateFormat(enum.StrEnum):
    """What ``tables emit`` writes."""

    cloudformation = "cloudformation"
    sam = "sam"
    terraform = "terraform"
    cdk = "cdk"


def _template_prefix(prefix: str | None) -> str:
    """A template's prefix: --prefix, else $DYNAMODB_TABLE_PREFIX, else none."""
    return prefix if prefix is not None else os.environ.get("DYNAMODB_TABLE_PREFIX", "")


@tables_app.command("emit")
def tables_emit(
    registry: RegistryArg,
    format: Annotated[
        TemplateFormat,
        typer.Option(
            "--format",
            "-f",
            help="cloudformation, sam (AWS::DynamoDB::Table resources under the SAM "
            "transform), terraform (Terraform JSON) or cdk (TableV2 props as JSON).",
            case_sensitive=False,
        ),
    ] = TemplateFormat.cloudformation,
    prefix: PrefixOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of stdout.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Write the registry's tables (and the unique guard table) as infrastructure code."""
    loaded = load_registry(registry)
    try:
        template = table_definitions(
            loaded, format=format.value, table_prefix=_template_prefix(prefix)
        )
    except DynamoDMError as error:
        _fail(str(error))
    text = json.dumps(template, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {format.value} for {len(loaded.models)} models to {output}", err=True)


def _load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM template file: JSON, or YAML when PyYAML is installed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        _fail(f"cannot read the template {str(path)!r}: {error.strerror or error}")
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = _yaml_template(path, text)
    if not isinstance(loaded, dict):
        _fail(f"{path} is not a template (a JSON or YAML mapping)")
    return loaded


def _yaml_template(path: Path, text: str) -> Any:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        _fail(f"{path} is not JSON; install PyYAML to read YAML templates")

    def tagged(loader: Any, _tag: str, node: Any) -> Any:
        """CloudFormation's short-form tags (!Ref, !Sub...) read as plain values."""
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)

    loader: Any = type("TemplateLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", tagged)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        _fail(f"{path} is neither JSON nor YAML: {error}")


@tables_app.command("check")
def tables_check(
    registry: RegistryArg,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            help="Compare with this CloudFormation/SAM template (JSON or YAML) instead of "
            "the live tables.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare the live tables (or a template) with the registry's models; exit 1 listing
    every difference (missing tables or indexes, other keys or types, TTL, stream,
    billing or table options)."""
    loaded = load_registry(registry)
    if template is not None:
        try:
            found = check_template(
                loaded, _load_template(template), table_prefix=_template_prefix(prefix)
            )
        except DynamoDMError as error:
            _fail(str(error))
        for difference in found:
            typer.echo(str(difference))
        if found:
            _fail(f"{len(found)} differences between the template and the models")
        typer.echo(f"{len(loaded.models)} models: the template matches")
        return

    async def check() -> list[str]:
        async with _connect(endpoint_url, region, prefix) as db:
            _tables_of(db, loaded)
            try:
                await db.check_tables(*loaded.models)
            except ConfigurationError as error:
                if not error.differences:
                    raise
                return [str(difference) for difference in error.differences]
            return []

    differences = _run(check())
    for line in differences:
        typer.echo(line)
    if differences:
        _fail(f"{len(differences)} differences between the tables and the models")
    typer.echo(f"{len(loaded.models)} models: every table matches")


@tables_app.command("pitr")
def tables_pitr(
    registry: RegistryArg,
    disable: Annotated[
        bool, typer.Option("--disable", help="Turn point-in-time recovery off.")
    ] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Turn point-in-time recovery on (or off) for every table of the registry."""
    loaded = load_registry(registry)

    async def pitr() -> list[tuple[str, bool]]:
        async with _connect(endpoint_url, region, prefix) as db:
            first_model = {db.table_name(m): m for m in reversed(loaded.models)}
            return [
                (name, await db.enable_point_in_time_recovery(model, enabled=not disable))
                for name, model in first_model.items()
            ]

    for name, enabled in _run(pitr()):
        typer.echo(f"{name}: point-in-time recovery {'on' if enabled else 'off'}")


@tables_app.command("backup")
def tables_backup(
    model: ModelArg,
    name: Annotated[
        str | None,
        typer.Argument(help="Backup name; without it, list the model's backups."),
    ] = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Create an on-demand backup of a model's table, or list its backups."""
    loaded = load_model(model)

    async def backup() -> list[str]:
        async with _connect(endpoint_url, region, prefix) as db:
            if name is not None:
                made = await db.create_backup(loaded, name)
                return [f"{made.name}: {made.status} {made.arn}"]
            return [f"{b.name}: {b.status} {b.arn}" for b in await db.list_backups(loaded)]

    for line in _run(backup()):
        typer.echo(line)


@tables_app.command("delete")
def tables_delete(
    registry: RegistryArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Delete the registry's tables and every item in them. Asks first, unless --yes."""
    loaded = load_registry(registry)

    async def delete() -> list[str]:
        async with _connect(endpoint_url, region, prefix) as db:
            tables = _tables_of(db, loaded)
            if not yes:
                guards = any(m.__dm_schema__.unique for m in loaded)
                _confirm(
                    f"Delete {len(tables)} tables at {_where(db)}: {', '.join(tables)}"
                    f"{' (and release their unique values)' if guards else ''}?"
                )
            return await db.delete_tables(*loaded.models)

    for name in _run(delete()):
        typer.echo(f"deleted {name}")


def _confirm(question: str) -> None:
    try:
        agreed = typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer: stdin is closed or empty
        typer.echo("", err=True)
        _fail("no confirmation (stdin gave no answer): pass --yes to delete; nothing deleted")
    if not agreed:
        if not sys.stdin.isatty():  # the answer was not typed, so the prompt's line is open
            typer.echo("", err=True)
        _fail("not confirmed; nothing deleted")


# ---------------------------------------------------------------- export


@app.command("export")
def export_(
    model: ModelArg,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            dir_okay=False,
            allow_dash=True,
            help="JSON Lines file to write; - for stdout.",
        ),
    ],
    format: FormatOption = Format.dynamodb,
    segments: Annotated[
        int,
        typer.Option(min=1, max=1000, help="Parallel scan segments (try 8 on large tables)."),
    ] = 1,
    rate: RateOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Write every item of MODEL's table to FILE, one JSON object a line.

    The file is written under a temporary name and renamed when complete. With
    --format plain, items that do not fit the model are reported and left out (exit 1).
    """
    model_class = load_model(model)
    session = _connect(endpoint_url, region, prefix, _rate_limit(rate, "read"))
    skipped = _run(_export(model_class, str(file), format, segments, session))
    if skipped:
        _fail(f"{skipped} items did not fit {model} and were left out (listed above)")


async def _export(
    model: type[Model], path: str, format: Format, segments: int, session: Session
) -> int:
    console = _stderr()
    async with session as db:
        table = db.table_name(model)
        expected = (await db.describe_table(model)).item_count
        scan = model.scan(segments=segments, session=db)
        written = skipped = 0
        with _output(path) as out, _progress(console, in_bytes=False) as progress:
            task = progress.add_task(f"export {table}", total=expected or None, note="")
            async with contextlib.aclosing(scan.raw()) as items:
                async for item in items:
                    if format is Format.plain:
                        try:
                            line = db.load(model, item).model_dump_json(by_alias=True)
                        except (ValueError, DynamoDMError) as error:
                            skipped += 1
                            key = _item_to_json(_key_of(model, item))
                            _say(progress.console, f"item {key}: {_describe_error(error)}")
                            continue
                    else:
                        line = _item_to_json(item)
                    out.write(line + "\n")
                    written += 1
                    progress.update(task, advance=1, total=max(expected, written) or None)
            progress.update(task, total=written + skipped, completed=written + skipped)
    where = "stdout" if path == "-" else path
    _say(console, f"exported {written} items from {table} to {where}")
    return skipped


@app.command("migrate")
def migrate(
    model: ModelArg,
    segments: Annotated[
        int,
        typer.Option(min=1, max=1000, help="Parallel scan segments (try 8 on large tables)."),
    ] = 1,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be migrated; write nothing.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue from the checkpoint file of an interrupted run."),
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint file (default: .dynamodm-migrate-<table>.json)."),
    ] = None,
    rate: RateOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Rewrite every item of MODEL's table stored below Meta.schema_version.

    Each older item is read through the model's migrations and written back, on the
    condition that it is still at the version read: a concurrent writer always wins. The
    position of each scan segment is saved after every page; --resume continues from it.
    """
    model_class = load_model(model)
    session = _connect(endpoint_url, region, prefix, _rate_limit(rate, "read", "write"))
    path = checkpoint or Path(f".dynamodm-migrate-{model_class.__dm_schema__.table}.json")
    if path.exists() and not resume and not dry_run:
        _fail(f"{path} holds an unfinished run: pass --resume to continue it, or remove it")
    report = _run(_migrate(model_class, session, segments, dry_run, path))
    if report.failed:
        _fail(f"{len(report.failed)} items could not be migrated (listed above)")
    if not dry_run:
        path.unlink(missing_ok=True)  # finished: nothing to resume


async def _migrate(
    model: type[Model], session: Session, segments: int, dry_run: bool, path: Path
) -> MigrationReport:
    console = _stderr()
    async with session as db:
        table = db.table_name(model)
        expected = (await db.describe_table(model)).item_count
        with _progress(console, in_bytes=False) as progress:
            task = progress.add_task(f"migrate {table}", total=expected or None, note="")

            def shown(report: MigrationReport) -> None:
                progress.update(
                    task,
                    completed=report.scanned,
                    total=max(expected, report.scanned) or None,
                    note=f"{report.migrated} migrated",
                )

            migrator = Migrator(
                model,
                session=db,
                segments=segments,
                dry_run=dry_run,
                checkpoint=path,
                on_progress=shown,
            )
            report = await migrator.run()
        for key, reason in report.failed:
            _say(console, f"item {_item_to_json(key)}: {reason}")
    verb = "would migrate" if dry_run else "migrated"
    _say(
        console,
        f"scanned {report.scanned} items of {table}: {verb} {report.migrated}, "
        f"{report.skipped} already current, {report.lost_race} rewritten meanwhile by "
        f"another writer (left as they are), {len(report.failed)} failed",
    )
    return report


def _key_of(model: type[Model], item: Item) -> Item:
    schema = model.__dm_schema__
    return {k.attribute: item[k.attribute] for k in schema.table_keys if k.attribute in item}


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """stdout for ``-``; else a temporary file renamed to ``path`` once complete."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed or removed below)
            "w",
            encoding="utf-8",
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".part",
            delete=False,
        )
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror or error}")
    try:
        with handle:
            yield handle
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


# ---------------------------------------------------------------- DynamoDB JSON


def _item_to_json(item: Item) -> str:
    """One item as DynamoDB JSON, bytes in base64 as the AWS CLI writes them."""
    return json.dumps(
        item, default=_base64, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )


def _base64(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not a DynamoDB JSON value")


# ---------------------------------------------------------------- import


# A line whose item DynamoDB or the library refuses on its own account; anything else
# (no table, no connection, throttling) stops the import.
_LINE_ERRORS = (ValueError, ConditionFailed, ItemTooLarge, UsageError)


def _line_error(error: BaseException) -> bool:
    if isinstance(error, ServiceError):
        return error.code == "ValidationException"
    return isinstance(error, _LINE_ERRORS)


@app.command("import")
def import_(
    model: ModelArg,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", dir_okay=False, allow_dash=True, help="JSON Lines file; - for stdin."
        ),
    ],
    format: FormatOption = Format.dynamodb,
    rate: RateOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Validate each line of FILE through MODEL and write the good ones to its table.

    Bad lines are reported with their numbers on stderr and skipped (exit 1 at the
    end). Models with Version or unique fields are written with conditional creates
    (an existing key is a bad line); others through dm.batch_write() (overwrites).
    """
    model_class = load_model(model)
    if str(file) != "-" and not file.is_file():
        raise _bad(f"{str(file)!r}: no such file", "FILE")
    session = _connect(endpoint_url, region, prefix, _rate_limit(rate, "write"))
    report = _run(_import(model_class, str(file), format, session))
    if report.bad:
        _fail(f"{report.bad} lines were not imported (listed above); {report.written} were")


class _ImportReport:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.written = 0
        self.bad = 0

    def bad_line(self, number: int, error: BaseException) -> None:
        self.bad += 1
        _say(self.console, f"line {number}: {_describe_error(error)}")


async def _import(model: type[Model], path: str, format: Format, session: Session) -> _ImportReport:
    console = _stderr()
    report = _ImportReport(console)
    schema = model.__dm_schema__
    conditional = bool(schema.version or schema.unique)
    async with session as db:
        table = db.table_name(model)
        await db.describe_table(model)  # a missing table stops here, before any line

        def parse(raw: bytes) -> Model:
            if format is Format.plain:
                return model.model_validate_json(raw)
            return db.load(model, item_from_json(json.loads(raw)))

        write: Callable[[list[tuple[int, Model]]], Coroutine[Any, Any, None]]
        if conditional:
            write = functools.partial(_write_conditional, db, report)
        else:
            write = functools.partial(_write_batch, db, report)
        window_size = CONDITIONAL_WINDOW if conditional else BATCH_WINDOW
        try:
            with _input(path) as (stream, size), _progress(console, in_bytes=True) as progress:
                task = progress.add_task(f"import {table}", total=size, note="")
                window: list[tuple[int, Model]] = []
                for number, raw in enumerate(stream, 1):
                    progress.advance(task, len(raw))
                    if not raw.strip():
                        continue
                    try:
                        window.append((number, parse(raw)))
                    except (ValueError, DynamoDMError) as error:
                        report.bad_line(number, error)
                    if len(window) >= window_size:
                        await write(window)
                        window = []
                        progress.update(task, note=f"{report.written} items")
                if window:
                    await write(window)
                progress.update(task, note=f"{report.written} items")
        except DynamoDMError as error:
            raise DynamoDMError(
                f"{error} (the import stopped; {report.written} items were imported)"
            ) from error
    _say(console, f"imported {report.written} items into {table}")
    return report


@contextlib.contextmanager
def _input(path: str) -> Iterator[tuple[IO[bytes], int | None]]:
    if path == "-":
        yield sys.stdin.buffer, None
        return
    with open(path, "rb") as stream:
        yield stream, os.fstat(stream.fileno()).st_size


async def _write_batch(db: Session, report: _ImportReport, window: list[tuple[int, Model]]) -> None:
    """One BatchWriteItem block for the window; a failed request stops the import."""
    async with batch_write(session=db) as batch:
        for number, instance in window:
            try:
                batch.put(instance)
            except (ValueError, DynamoDMError) as error:
                if not _line_error(error):
                    raise
                report.bad_line(number, error)
    report.written += batch.written


async def _write_conditional(
    db: Session, report: _ImportReport, window: list[tuple[int, Model]]
) -> None:
    """Conditional creates, a few at a time: an existing key or a taken unique value is a
    bad line."""
    limit = asyncio.Semaphore(CONDITIONAL_CONCURRENCY)
    version = type(window[0][1]).__dm_schema__.version

    async def create(number: int, instance: Model) -> None:
        if version:
            # create() stores version + 1: keep the version the file holds.
            stored = getattr(instance, version)
            setattr(instance, version, max(stored - 1, 0))
        async with limit:
            try:
                await db.put(instance, create=True)
            except (ValueError, DynamoDMError) as error:
                if not _line_error(error):
                    raise
                report.bad_line(number, error)
                return
        report.written += 1

    try:
        async with asyncio.TaskGroup() as group:
            for number, instance in window:
                group.create_task(create(number, instance))
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
