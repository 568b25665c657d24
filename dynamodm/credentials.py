"""AWS settings read without botocore: access keys from the environment, and the shared
config and credentials files read the way botocore reads them.

On Lambda, and wherever the environment holds an access key, the fast transport signs
with that key and never loads botocore. Everything else (profiles, SSO, roles, container
and instance metadata, ``credential_process``, refreshing) stays botocore's credential
chain, loaded when needed.
"""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError


def ensure_boolean(value: Any) -> bool:
    """botocore's reading of a boolean setting: True, or the text "true" in any case."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.lower() == "true"


# botocore's config variables that dynamodm reads: (key in the profile, environment
# variables in order, default, conversion). See botocore/configprovider.py.
_VARIABLES: dict[str, tuple[str | None, tuple[str, ...], Any, Callable[[Any], Any] | None]] = {
    "profile": (None, ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"), None, None),
    "region": ("region", ("AWS_DEFAULT_REGION",), None, None),
    "ca_bundle": ("ca_bundle", ("AWS_CA_BUNDLE",), None, None),
    "use_fips_endpoint": (
        "use_fips_endpoint",
        ("AWS_USE_FIPS_ENDPOINT",),
        None,
        ensure_boolean,
    ),
    "use_dualstack_endpoint": (
        "use_dualstack_endpoint",
        ("AWS_USE_DUALSTACK_ENDPOINT",),
        None,
        ensure_boolean,
    ),
    "ignore_configured_endpoint_urls": (
        "ignore_configured_endpoint_urls",
        ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",),
        None,
        ensure_boolean,
    ),
    "account_id_endpoint_mode": (
        "account_id_endpoint_mode",
        ("AWS_ACCOUNT_ID_ENDPOINT_MODE",),
        "preferred",
        None,
    ),
}


@dataclass(frozen=True)
class StaticCredentials:
    """An access key that does not change for the life of the session."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    account_id: str | None = None

    async def get_frozen_credentials(self) -> StaticCredentials:
        return self


def environment_credentials(environ: Mapping[str, str] | None = None) -> StaticCredentials | None:
    """The access key in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (with
    ``AWS_SESSION_TOKEN`` and ``AWS_ACCOUNT_ID``), as botocore's EnvProvider reads it.

    botocore's chain tries the environment first, before any profile, even when
    ``AWS_PROFILE`` is set (only a profile passed to ``Session(profile_name=...)`` skips
    it), so these are the credentials botocore would use. None when the environment holds
    no complete key, or when ``AWS_CREDENTIAL_EXPIRATION`` asks botocore to refresh them
    (botocore's chain is then used, and reports a partial key as botocore does).
    """
    env = os.environ if environ is None else environ
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key or env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    # botocore's order: AWS_SECURITY_TOKEN (the old name) before AWS_SESSION_TOKEN.
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
    return StaticCredentials(access_key, secret_key, token, env.get("AWS_ACCOUNT_ID") or None)


def _read_ini(path: str) -> dict[str, dict[str, Any]] | None:
    """botocore's ``raw_config_parse``: sections of options, an indented block under an
    option read as one nested level. None when the file does not exist."""
    path = os.path.expanduser(os.path.expandvars(path))
    if not os.path.isfile(path):
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read([path])
        sections: dict[str, dict[str, Any]] = {}
        for section in parser.sections():
            options: dict[str, Any] = {}
            for option in parser.options(section):
                value: Any = parser.get(section, option)
                if value.startswith("\n"):
                    nested: dict[str, str] = {}
                    for line in value.splitlines():
                        if line.strip():
                            key, nested_value = line.strip().split("=", 1)
                            nested[key.strip()] = nested_value.strip()
                    value = nested
                options[option] = value
            sections[section] = options
    except (configparser.Error, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot read the AWS config file {path}: {type(exc).__name__}"
        ) from None
    return sections


def _named_section(key: str) -> str | None:
    """The name in ``[profile name]`` or ``[services name]``, as botocore splits it."""
    try:
        parts = shlex.split(key)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


class SharedConfig:
    """The shared config and credentials files, and the environment, as a botocore session
    reads them for the settings dynamodm needs (``get_config_variable``,
    ``get_scoped_config``, ``full_config``): a botocore session can stand in for it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._full: dict[str, Any] | None = None

    @property
    def full_config(self) -> dict[str, Any]:
        """Every profile and services section (botocore's ``Session.full_config``)."""
        if self._full is None:
            env = self._environ
            raw = _read_ini(env.get("AWS_CONFIG_FILE", "~/.aws/config")) or {}
            profiles: dict[str, Any] = {}
            services: dict[str, Any] = {}
            for key, values in raw.items():
                if key.startswith("profile") or key.startswith("services"):
                    name = _named_section(key)
                    if name is not None:
                        (profiles if key.startswith("profile") else services)[name] = values
                elif key == "default":
                    profiles[key] = values
            stored = _read_ini(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
            for name, values in (stored or {}).items():
                profiles.setdefault(name, {}).update(values)
            self._full = {"profiles": profiles, "services": services}
        return self._full

    def get_scoped_config(self) -> dict[str, Any]:
        """The settings of the profile in use (``AWS_DEFAULT_PROFILE``, ``AWS_PROFILE``, else
        ``default``); a profile named but absent is an error, as in botocore."""
        name = self.get_config_variable("profile")
        profiles: dict[str, Any] = self.full_config["profiles"]
        if name is None:
            scoped: dict[str, Any] = profiles.get("default", {})
            return scoped
        if name not in profiles:
            raise ConfigurationError(
                f"the AWS profile {name!r} (AWS_PROFILE) is in neither the AWS config file "
                "nor the credentials file"
            )
        found: dict[str, Any] = profiles[name]
        return found

    def get_config_variable(self, logical_name: str) -> Any:
        """A setting from the environment, else the profile, else botocore's default."""
        key, names, default, convert = _VARIABLES[logical_name]
        value = default
        for name in names:
            if name in self._environ:
                value = self._environ[name]
                break
        else:
            if key is not None and self.get_scoped_config().get(key) is not None:
                value = self.get_scoped_config()[key]
        return value if convert is None or value is None else convert(value)
