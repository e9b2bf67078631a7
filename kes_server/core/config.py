"""The kes-server YAML configuration, parsed into frozen dataclasses.

Pure: ``parse_config(mapping, environ)`` takes the already-loaded YAML mapping
and an environment, and either returns a ``Config`` or raises one
``ConfigError`` naming the dotted field and the problem, so start-up can print
a single clear line. Reading the file is the caller's job (``load_config``
only wraps ``yaml.safe_load`` around bytes).

The schema is KES v0.17's (see the configuration guide and spec §7), with the
v0.13/v0.14 layouts migrated: ``paths:`` is the old name of ``allow:`` and a
top-level ``proxy:`` section is read as ``tls.proxy``. Unknown fields are an
error, as in KES (strict YAML), because a typo in a security config must not
be silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from kes_server.core.errors import ConfigError
from kes_server.core.glob import BadPattern, compile_glob
from kes_server.core.names import is_identity
from kes_server.core.policy import Policy

__all__ = [
    "DEFAULT_ADDRESS",
    "AWSStoreConfig",
    "CacheConfig",
    "Config",
    "EtcdStoreConfig",
    "FSStoreConfig",
    "LogConfig",
    "PolicyConfig",
    "ProxyConfig",
    "TLSConfig",
    "VaultAppRoleConfig",
    "VaultKubernetesConfig",
    "VaultStoreConfig",
    "VaultTLSConfig",
    "expand_env",
    "load_config",
    "parse_config",
    "parse_duration",
]

DEFAULT_ADDRESS = "0.0.0.0:7373"
#: Keystores KES knows but pykes does not implement; a config naming one loads
#: (so old files stay readable) but start-up refuses it with a clear error.
REMOTE_KEYSTORES: dict[str, tuple[str, ...]] = {
    "fortanix": ("sdkms", "endpoint"),
    "gemalto": ("keysecure", "endpoint"),
    "gcp": ("secretmanager", "project_id"),
    "azure": ("keyvault", "endpoint"),
    "generic": ("endpoint",),
}


@dataclass(frozen=True)
class ProxyConfig:
    """TLS proxies (e.g. nginx) allowed to forward a client certificate."""

    identities: tuple[str, ...] = ()
    cert_header: str = "X-Tls-Client-Cert"


@dataclass(frozen=True)
class TLSConfig:
    cert: str = ""
    key: str = ""
    password: str = ""
    #: PEM file(s) of CAs that client certificates must chain to (``--auth on``);
    #: empty means the system roots, as in KES. (``tls.ca`` is a later KES field.)
    ca: str = ""
    #: Lowest TLS version accepted: "1.3" (default) or "1.2".
    min_version: Literal["1.2", "1.3"] = "1.3"
    proxy: ProxyConfig = field(default_factory=ProxyConfig)


@dataclass(frozen=True)
class CacheConfig:
    """Key cache expiry, in seconds (0 disables that sweep)."""

    any_s: float = 300.0
    unused_s: float = 30.0
    offline_s: float = 0.0


@dataclass(frozen=True)
class LogConfig:
    error: bool = True
    audit: bool = False


@dataclass(frozen=True)
class PolicyConfig:
    name: str
    policy: Policy
    identities: tuple[str, ...] = ()


@dataclass(frozen=True)
class FSStoreConfig:
    path: str


@dataclass(frozen=True)
class EtcdStoreConfig:
    endpoints: tuple[str, ...]
    prefix: str = "kes/"
    timeout_s: float = 5.0
    ca: str = ""
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class VaultAppRoleConfig:
    """``keystore.vault.approle``: AppRole login (``auth/<engine>/login``)."""

    engine: str = "approle"
    id: str = ""
    #: Never shown by ``repr``: a config object may end up in a log line.
    secret: str = field(default="", repr=False)
    retry_s: float = 5.0


@dataclass(frozen=True)
class VaultKubernetesConfig:
    """``keystore.vault.kubernetes``: Kubernetes login with a service account JWT."""

    engine: str = "kubernetes"
    role: str = ""
    #: The JWT itself or the path of a file holding it (read when logging in).
    jwt: str = field(default="", repr=False)
    retry_s: float = 5.0


@dataclass(frozen=True)
class VaultTLSConfig:
    """``keystore.vault.tls``: client certificate for Vault and the CAs to trust."""

    key: str = ""
    cert: str = ""
    #: A PEM file or a directory of PEM files; empty means the system roots.
    ca: str = ""


@dataclass(frozen=True)
class VaultStoreConfig:
    """``keystore.vault``: Hashicorp Vault's (or OpenBao's) K/V engine, as KES v0.17 uses it."""

    endpoint: str
    engine: str = "kv"
    version: Literal["v1", "v2"] = "v1"
    namespace: str = ""
    prefix: str = ""
    approle: VaultAppRoleConfig = field(default_factory=VaultAppRoleConfig)
    kubernetes: VaultKubernetesConfig = field(default_factory=VaultKubernetesConfig)
    tls: VaultTLSConfig = field(default_factory=VaultTLSConfig)
    #: How often Vault's health (sealed or not) is polled (``status.ping``).
    ping_s: float = 10.0

    @property
    def uses_approle(self) -> bool:
        return bool(self.approle.id or self.approle.secret)

    @property
    def uses_kubernetes(self) -> bool:
        return bool(self.kubernetes.role or self.kubernetes.jwt)


@dataclass(frozen=True)
class AWSStoreConfig:
    """``keystore.aws.secretsmanager``: KES v0.17's fields, validated.

    No credentials means the AWS SDK's default chain (environment, shared
    files, container or instance role). The secret parts stay out of
    ``repr`` so a config can never print them.
    """

    endpoint: str
    region: str
    kms_key: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class RemoteStoreConfig:
    """A KMS keystore section pykes can parse but not serve (vault, gcp, ...)."""

    kind: str


StoreConfig = (
    FSStoreConfig | EtcdStoreConfig | VaultStoreConfig | AWSStoreConfig | RemoteStoreConfig | None
)


@dataclass(frozen=True)
class Config:
    address: str = DEFAULT_ADDRESS
    #: The root (admin) identity; "" when not configured, "_" (or any
    #: non-identity string) when disabled.
    root: str = ""
    tls: TLSConfig = field(default_factory=TLSConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    log: LogConfig = field(default_factory=LogConfig)
    policies: tuple[PolicyConfig, ...] = ()
    keys: tuple[str, ...] = ()
    keystore: StoreConfig = None
    #: Verify client certificates against CAs (``--auth on``); not a YAML field.
    auth: bool = True

    @property
    def root_enabled(self) -> bool:
        return is_identity(self.root)


# --------------------------------------------------------------------------- helpers

_ENV_REF = re.compile(r"^\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}$")
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def expand_env(value: str, environ: Mapping[str, str]) -> str:
    """Replace a value that is exactly ``${NAME}`` (whitespace allowed) by the env var.

    Anything else (``$NAME``, ``${A}x``) is kept literally, as KES does, so a
    literal dollar sign in a path never surprises anyone.
    """
    m = _ENV_REF.match(value.strip())
    if m is None:
        return value
    return environ.get(m.group(1), "")


def parse_duration(text: str) -> float:
    """Parse a Go duration (``5m0s``, ``20s``, ``1h30m``, ``0``) into seconds."""
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


class _Reader:
    """Walks a YAML mapping with a dotted path so every error can name its field."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(path, "must be a mapping")
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(path, f"invalid field name {key!r}")
            if key not in allowed:
                raise ConfigError(_join(path, key), "unknown field")
        return value

    def string(self, value: Any, path: str, *, expand: bool = True) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            # YAML 1.1 turns on/off/yes/no into booleans.
            return "on" if value else "off"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string")
        return expand_env(value, self.environ) if expand else value

    def switch(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        text = self.string(value, path).strip().lower()
        if text in ("on", "true", "yes"):
            return True
        if text in ("off", "false", "no"):
            return False
        if text == "":
            return default
        raise ConfigError(path, f"invalid value {text!r}: must be 'on' or 'off'")

    def duration(self, value: Any, path: str, default: float) -> float:
        if value is None:
            return default
        text = self.string(value, path)
        if text == "":
            return default
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ConfigError(path, f"invalid duration {text!r} (use e.g. 5m0s, 20s)") from None
        if seconds < 0:
            raise ConfigError(path, "duration must not be negative")
        return seconds

    def string_list(self, value: Any, path: str, *, expand: bool = True) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(path, "must be a list")
        return [self.string(v, f"{path}[{i}]", expand=expand) for i, v in enumerate(value)]


def _join(path: str, key: str) -> str:
    # Odd keys (newlines, control characters) are quoted so an error stays one line.
    if not key.isprintable() or key.strip() != key:
        key = repr(key)
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------- sections

_TOP = {"address", "root", "admin", "tls", "proxy", "policy", "cache", "log", "keys", "keystore"}


def parse_config(data: Any, environ: Mapping[str, str] | None = None) -> Config:
    """Turn a loaded YAML document into a ``Config`` or raise ``ConfigError``."""
    r = _Reader(environ if environ is not None else {})
    top = r.mapping(data, "", _TOP)

    root = r.string(top.get("root"), "root").strip()
    if "admin" in top:
        admin = r.mapping(top["admin"], "admin", {"identity"})
        admin_id = r.string(admin.get("identity"), "admin.identity").strip()
        if root and admin_id and root != admin_id:
            raise ConfigError("admin.identity", "conflicts with 'root'")
        root = root or admin_id

    tls = _parse_tls(r, top)
    policies = _parse_policies(r, top.get("policy"), root, tls.proxy)
    keys, legacy_store = _parse_keys(r, top.get("keys"))
    store = _parse_keystore(r, top.get("keystore"))
    if legacy_store is not None:
        if store is not None:
            raise ConfigError("keystore", "only one keystore may be configured")
        store = legacy_store

    return Config(
        address=r.string(top.get("address"), "address").strip() or DEFAULT_ADDRESS,
        root=root,
        tls=tls,
        cache=_parse_cache(r, top.get("cache")),
        log=_parse_log(r, top.get("log")),
        policies=policies,
        keys=keys,
        keystore=store,
    )


def _parse_tls(r: _Reader, top: dict[str, Any]) -> TLSConfig:
    tls = r.mapping(
        top.get("tls"), "tls", {"cert", "key", "password", "ca", "min_version", "proxy"}
    )
    proxy_raw = tls.get("proxy")
    proxy_path = "tls.proxy"
    if proxy_raw is None and "proxy" in top:
        # v0.13/v0.14 layout: the proxy section sat at the top level.
        proxy_raw, proxy_path = top["proxy"], "proxy"
    proxy = r.mapping(proxy_raw, proxy_path, {"identities", "header"})
    header = r.mapping(proxy.get("header"), f"{proxy_path}.header", {"cert"})
    identities = tuple(
        i.strip()
        for i in r.string_list(proxy.get("identities"), f"{proxy_path}.identities")
        if i.strip()
    )
    min_version = r.string(tls.get("min_version"), "tls.min_version").strip() or "1.3"
    if min_version not in ("1.2", "1.3"):
        raise ConfigError("tls.min_version", f"invalid value {min_version!r}: must be 1.2 or 1.3")
    return TLSConfig(
        cert=r.string(tls.get("cert"), "tls.cert").strip(),
        key=r.string(tls.get("key"), "tls.key").strip(),
        password=r.string(tls.get("password"), "tls.password"),
        ca=r.string(tls.get("ca"), "tls.ca").strip(),
        min_version="1.2" if min_version == "1.2" else "1.3",
        proxy=ProxyConfig(
            identities=identities,
            cert_header=r.string(header.get("cert"), f"{proxy_path}.header.cert").strip()
            or "X-Tls-Client-Cert",
        ),
    )


def _parse_policies(
    r: _Reader, raw: Any, root: str, proxy: ProxyConfig
) -> tuple[PolicyConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError("policy", "must be a mapping of policy names")
    out: list[PolicyConfig] = []
    owner: dict[str, str] = {}
    for name, body in raw.items():
        path = _join("policy", str(name))
        if not isinstance(name, str) or not name:
            raise ConfigError("policy", f"invalid policy name {name!r}")
        section = r.mapping(body, path, {"allow", "deny", "paths", "identities"})
        # "paths" is v0.13's name of the allow list; "allow" wins when both are there.
        allow_key = "paths" if section.get("allow") is None and "paths" in section else "allow"
        policy = Policy(
            allow=_patterns(r, section.get(allow_key), f"{path}.{allow_key}", name, "allow"),
            deny=_patterns(r, section.get("deny"), f"{path}.deny", name, "deny"),
        )
        identities: list[str] = []
        for i, ident in enumerate(r.string_list(section.get("identities"), f"{path}.identities")):
            ident = ident.strip()
            if not ident:
                continue  # an unset ${ENV} reference is skipped, as in KES
            field_path = f"{path}.identities[{i}]"
            if ident == root:
                raise ConfigError(field_path, "the root identity cannot be assigned to a policy")
            if ident in proxy.identities:
                raise ConfigError(field_path, "a TLS proxy identity cannot be assigned to a policy")
            if ident in owner:
                raise ConfigError(
                    field_path,
                    f"cannot assign policy {name!r} to identity {ident!r}: "
                    f"this identity already has a policy ({owner[ident]!r})",
                )
            owner[ident] = name
            identities.append(ident)
        out.append(PolicyConfig(name=name, policy=policy, identities=tuple(identities)))
    for ident in proxy.identities:
        if ident == root and root:
            raise ConfigError("tls.proxy.identities", "the root identity cannot be a TLS proxy")
    return tuple(out)


def _patterns(r: _Reader, raw: Any, path: str, policy: str, kind: str) -> tuple[str, ...]:
    """One allow/deny list: globs are checked where they stand, empty ones dropped (as KES).

    A bad glob stops start-up with KES v0.17's text after the field, e.g.
    ``policy.my-app.allow[2]: policy "my-app" contains invalid allow pattern:
    syntax error in pattern``.
    """
    patterns = r.string_list(raw, path, expand=False)
    for i, pattern in enumerate(patterns):
        try:
            compile_glob(pattern)
        except BadPattern as exc:
            raise ConfigError(
                f"{path}[{i}]", f'policy "{policy}" contains invalid {kind} pattern: {exc}'
            ) from None
    return tuple(p for p in patterns if p)


def _parse_cache(r: _Reader, raw: Any) -> CacheConfig:
    cache = r.mapping(raw, "cache", {"expiry"})
    expiry = r.mapping(cache.get("expiry"), "cache.expiry", {"any", "unused", "offline"})
    return CacheConfig(
        any_s=r.duration(expiry.get("any"), "cache.expiry.any", 300.0),
        unused_s=r.duration(expiry.get("unused"), "cache.expiry.unused", 30.0),
        offline_s=r.duration(expiry.get("offline"), "cache.expiry.offline", 0.0),
    )


def _parse_log(r: _Reader, raw: Any) -> LogConfig:
    log = r.mapping(raw, "log", {"error", "audit"})
    return LogConfig(
        error=r.switch(log.get("error"), "log.error", True),
        audit=r.switch(log.get("audit"), "log.audit", False),
    )


def _parse_keys(r: _Reader, raw: Any) -> tuple[tuple[str, ...], StoreConfig]:
    """The ``keys:`` list; in the v0.13 layout ``keys:`` was the keystore section."""
    if raw is None:
        return (), None
    if isinstance(raw, dict):
        return (), _parse_keystore(r, raw, path="keys")
    if not isinstance(raw, list):
        raise ConfigError("keys", "must be a list of '- name: <key>' entries")
    names: list[str] = []
    for i, item in enumerate(raw):
        entry = r.mapping(item, f"keys[{i}]", {"name"})
        name = r.string(entry.get("name"), f"keys[{i}].name").strip()
        if not name:
            raise ConfigError(f"keys[{i}].name", "key name is empty")
        names.append(name)
    return tuple(names), None


def _dig(section: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(section, dict):
            return None
        section = section.get(part)
    return section


def _parse_keystore(r: _Reader, raw: Any, path: str = "keystore") -> StoreConfig:
    kinds = {"fs", "etcd", "mem", "vault", "aws", *REMOTE_KEYSTORES}
    section = r.mapping(raw, path, kinds)
    chosen: list[StoreConfig] = []
    if "fs" in section:
        fs = r.mapping(section["fs"], f"{path}.fs", {"path"})
        fs_path = r.string(fs.get("path"), f"{path}.fs.path").strip()
        if fs_path:
            chosen.append(FSStoreConfig(path=fs_path))
    if "etcd" in section:
        chosen.append(_parse_etcd(r, section["etcd"], f"{path}.etcd"))
    if "vault" in section:
        vault = _parse_vault(r, section["vault"], f"{path}.vault")
        if vault is not None:
            chosen.append(vault)
    if "aws" in section:
        aws = _parse_aws(r, section["aws"], f"{path}.aws")
        if aws is not None:
            chosen.append(aws)
    for kind, marker in REMOTE_KEYSTORES.items():
        if kind in section and r.string(_dig(section[kind], marker), f"{path}.{kind}").strip():
            chosen.append(RemoteStoreConfig(kind=kind))
    if len(chosen) > 1:
        raise ConfigError(path, "only one keystore may be configured")
    return chosen[0] if chosen else None


def _parse_etcd(r: _Reader, raw: Any, path: str) -> EtcdStoreConfig:
    etcd = r.mapping(raw, path, {"endpoints", "prefix", "timeout", "tls"})
    tls = r.mapping(etcd.get("tls"), f"{path}.tls", {"ca", "cert", "key"})
    endpoints = tuple(e.strip() for e in r.string_list(etcd.get("endpoints"), f"{path}.endpoints"))
    endpoints = tuple(e for e in endpoints if e)
    if not endpoints:
        raise ConfigError(f"{path}.endpoints", "at least one endpoint is required")
    timeout = r.duration(etcd.get("timeout"), f"{path}.timeout", 5.0)
    if timeout == 0:
        raise ConfigError(f"{path}.timeout", "must be greater than 0")
    return EtcdStoreConfig(
        endpoints=endpoints,
        prefix=r.string(etcd.get("prefix"), f"{path}.prefix") or "kes/",
        timeout_s=timeout,
        ca=r.string(tls.get("ca"), f"{path}.tls.ca").strip(),
        cert=r.string(tls.get("cert"), f"{path}.tls.cert").strip(),
        key=r.string(tls.get("key"), f"{path}.tls.key").strip(),
    )


_VAULT_FIELDS = {
    "endpoint",
    "engine",
    "version",
    "namespace",
    "prefix",
    "approle",
    "kubernetes",
    "tls",
    "status",
}


def _parse_vault(r: _Reader, raw: Any, path: str) -> VaultStoreConfig | None:
    """``keystore.vault``; None when no endpoint is set (KES's sample has an empty section).

    Every field is checked even then, so a typo is reported in any case. As in
    KES, AppRole and Kubernetes credentials together are an error here; having
    neither is reported when the store is opened (old sample configs that only
    name an endpoint must still load).
    """
    vault = r.mapping(raw, path, _VAULT_FIELDS)
    approle = r.mapping(
        vault.get("approle"), f"{path}.approle", {"engine", "id", "secret", "retry"}
    )
    k8s = r.mapping(
        vault.get("kubernetes"), f"{path}.kubernetes", {"engine", "role", "jwt", "retry"}
    )
    tls = r.mapping(vault.get("tls"), f"{path}.tls", {"key", "cert", "ca"})
    status = r.mapping(vault.get("status"), f"{path}.status", {"ping"})
    endpoint = r.string(vault.get("endpoint"), f"{path}.endpoint").strip()
    version = r.string(vault.get("version"), f"{path}.version").strip() or "v1"
    cfg = VaultStoreConfig(
        endpoint=endpoint,
        engine=r.string(vault.get("engine"), f"{path}.engine").strip() or "kv",
        version="v2" if version == "v2" else "v1",
        namespace=r.string(vault.get("namespace"), f"{path}.namespace").strip(),
        prefix=r.string(vault.get("prefix"), f"{path}.prefix").strip(),
        approle=VaultAppRoleConfig(
            engine=r.string(approle.get("engine"), f"{path}.approle.engine").strip() or "approle",
            id=r.string(approle.get("id"), f"{path}.approle.id"),
            secret=r.string(approle.get("secret"), f"{path}.approle.secret"),
            retry_s=r.duration(approle.get("retry"), f"{path}.approle.retry", 0.0) or 5.0,
        ),
        kubernetes=VaultKubernetesConfig(
            engine=r.string(k8s.get("engine"), f"{path}.kubernetes.engine").strip() or "kubernetes",
            role=r.string(k8s.get("role"), f"{path}.kubernetes.role"),
            jwt=r.string(k8s.get("jwt"), f"{path}.kubernetes.jwt").strip(),
            retry_s=r.duration(k8s.get("retry"), f"{path}.kubernetes.retry", 0.0) or 5.0,
        ),
        tls=VaultTLSConfig(
            key=r.string(tls.get("key"), f"{path}.tls.key").strip(),
            cert=r.string(tls.get("cert"), f"{path}.tls.cert").strip(),
            ca=r.string(tls.get("ca"), f"{path}.tls.ca").strip(),
        ),
        ping_s=r.duration(status.get("ping"), f"{path}.status.ping", 0.0) or 10.0,
    )
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{path}.endpoint", f"invalid URL {endpoint!r} (want https://host:port)")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{path}.endpoint", f"invalid port in {endpoint!r}") from None
    if parts.query or parts.fragment:
        raise ConfigError(f"{path}.endpoint", f"invalid URL {endpoint!r}: no query allowed")
    if version not in ("v1", "v2"):
        raise ConfigError(f"{path}.version", f"invalid K/V engine version {version!r}: v1 or v2")
    if cfg.uses_approle and cfg.uses_kubernetes:
        raise ConfigError(
            path, "ambiguous authentication: both AppRole and Kubernetes credentials are set"
        )
    return cfg


def _parse_aws(r: _Reader, raw: Any, path: str) -> AWSStoreConfig | None:
    """The AWS Secrets Manager store; None when its section is empty (as in KES).

    KES selects this store when ``endpoint`` is set. A section that sets
    other fields but no endpoint is refused: KES would silently fall back to
    the in-memory store and lose every key at the next restart.
    """
    aws = r.mapping(raw, path, {"secretsmanager"})
    sm_path = f"{path}.secretsmanager"
    sm = r.mapping(
        aws.get("secretsmanager"), sm_path, {"endpoint", "region", "kmskey", "credentials"}
    )
    creds_path = f"{sm_path}.credentials"
    creds = r.mapping(sm.get("credentials"), creds_path, {"accesskey", "secretkey", "token"})
    endpoint = r.string(sm.get("endpoint"), f"{sm_path}.endpoint").strip()
    region = r.string(sm.get("region"), f"{sm_path}.region").strip()
    kms_key = r.string(sm.get("kmskey"), f"{sm_path}.kmskey").strip()
    access_key = r.string(creds.get("accesskey"), f"{creds_path}.accesskey").strip()
    secret_key = r.string(creds.get("secretkey"), f"{creds_path}.secretkey").strip()
    token = r.string(creds.get("token"), f"{creds_path}.token").strip()
    if not endpoint:
        if region or kms_key or access_key or secret_key or token:
            raise ConfigError(
                f"{sm_path}.endpoint", "required when the AWS key store is configured"
            )
        return None
    try:
        endpoint = _aws_endpoint_url(endpoint)
    except ValueError as exc:
        raise ConfigError(f"{sm_path}.endpoint", str(exc)) from None
    if not region:
        raise ConfigError(f"{sm_path}.region", "required (e.g. us-east-2)")
    if bool(access_key) != bool(secret_key):
        missing = "secretkey" if access_key else "accesskey"
        raise ConfigError(f"{creds_path}.{missing}", "accesskey and secretkey must be set together")
    if token and not access_key:
        raise ConfigError(f"{creds_path}.token", "a session token needs accesskey and secretkey")
    return AWSStoreConfig(
        endpoint=endpoint,
        region=region,
        kms_key=kms_key,
        access_key=access_key,
        secret_key=secret_key,
        session_token=token,
    )


def _aws_endpoint_url(text: str) -> str:
    """A KES endpoint (``secretsmanager.us-east-2.amazonaws.com`` or a URL) as a URL.

    Without a scheme https is meant, as in KES (the AWS SDK adds it). Raises
    ValueError for anything that is not ``http(s)://host[:port]``.
    """
    raw = text if "://" in text else "https://" + text
    try:
        parts = urlsplit(raw)
        port = parts.port  # validates the port
    except ValueError:
        raise ValueError(f"invalid endpoint {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"invalid endpoint {text!r} (want e.g. secretsmanager.<region>.amazonaws.com)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"invalid endpoint {text!r}: only scheme, host and port are allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def load_config(text: bytes | str, environ: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text into a ``Config``; YAML syntax errors become ``ConfigError``."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        # "[[[[..." a few thousand levels deep exhausts PyYAML's recursive composer.
        raise ConfigError("config", "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "config"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(where, f"invalid YAML: {problem}") from None
    if data is None:
        data = {}
    return parse_config(data, environ)
