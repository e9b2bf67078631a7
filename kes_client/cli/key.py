"""``kes key``: master keys and the cryptographic operations done with them.

Byte values on the command line (imported keys, contexts, ciphertexts) are
base64, as in upstream's CLI, so every value round-trips exactly. Secrets
and data read from stdin are raw bytes (``import``, ``encrypt``): a pipe
carries bytes, and a key never has to appear in base64 in a shell history.
"""

from __future__ import annotations

import base64
import sys

import click

from kes_client.cli._output import echo_done, echo_json, is_tty, render_pairs, render_table
from kes_client.cli._settings import (
    AliasGroup,
    connection_options,
    decode_b64,
    get_client,
    json_option,
)
from kes_server.core.crypto import KEY_SIZE

__all__ = ["key"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@click.group(
    cls=AliasGroup,
    aliases={"ls": "list", "rm": "delete", "derive": "generate", "dek": "generate"},
)
def key() -> None:
    """Manage master keys and encrypt, decrypt or generate data keys."""


@key.command("create")
@connection_options
@click.argument("name")
@click.argument("key_b64", metavar="[KEY]", required=False)
def create(name: str, key_b64: str | None) -> None:
    """Create master key NAME with random bytes.

    With KEY (32 bytes, base64) the key is imported instead, as in KES v0.17.

    \b
    Example:
      kes key create my-key
    """
    client = get_client()
    if key_b64 is None:
        client.create_key(name)
        echo_done(f"Created key '{name}'")
    else:
        client.import_key(name, decode_b64(key_b64, "KEY"))
        echo_done(f"Imported key '{name}'")


@key.command("import")
@connection_options
@click.argument("name")
@click.argument("key_b64", metavar="[KEY]", required=False)
def import_(name: str, key_b64: str | None) -> None:
    """Import 32 bytes as master key NAME.

    KEY is base64; without it (or with '-') the 32 raw bytes are read from
    stdin, as encrypt reads its plaintext.

    \b
    Examples:
      kes key import my-key "$(head -c 32 /dev/urandom | base64)"
      head -c 32 /dev/urandom | kes key import my-key
    """
    if key_b64 is None or key_b64 == "-":
        material = sys.stdin.buffer.read()
        if len(material) != KEY_SIZE:
            raise click.BadParameter(
                f"stdin must hold the {KEY_SIZE} raw bytes of the key, not {len(material)} "
                "(pass a base64 key as the KEY argument instead)",
                param_hint="KEY",
            )
    else:
        material = decode_b64(key_b64, "KEY")
    get_client().import_key(name, material)
    echo_done(f"Imported key '{name}'")


@key.command("delete")
@connection_options
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
def delete(names: tuple[str, ...]) -> None:
    """Delete one or more master keys.

    \b
    Example:
      kes key delete my-key
    """
    client = get_client()
    for name in names:
        client.delete_key(name)
        echo_done(f"Deleted key '{name}'")


@key.command("list")
@connection_options
@json_option
@click.argument("pattern", default="*")
def list_(pattern: str, as_json: bool) -> None:
    """List master keys matching PATTERN (glob, default *).

    \b
    Example:
      kes key list 'my-*'
    """
    keys = sorted(get_client().list_keys(pattern), key=lambda info: info.name)
    if as_json:
        for info in keys:
            obj: dict[str, str] = {"name": info.name}
            if info.created_at:
                obj["created_at"] = info.created_at
            if info.created_by:
                obj["created_by"] = info.created_by
            echo_json(obj)
        return
    if not keys:
        if is_tty():
            click.echo("No keys.")
        return
    if any(info.created_at for info in keys):
        rows = [(info.name, info.created_at or "", info.created_by or "") for info in keys]
        click.echo(render_table(("Key", "Created", "Created by"), rows))
    else:
        click.echo(render_table(("Key",), [(info.name,) for info in keys]))


@key.command("generate")
@connection_options
@json_option
@click.argument("name")
@click.argument("context_b64", metavar="[CONTEXT]", required=False)
def generate(name: str, context_b64: str | None, as_json: bool) -> None:
    """Generate a data key protected by master key NAME.

    Prints the plaintext data key and its ciphertext (both base64). CONTEXT
    (base64) is bound to the ciphertext and must be given again to decrypt.

    \b
    Example:
      kes key generate my-key
    """
    context = decode_b64(context_b64, "CONTEXT") if context_b64 else b""
    dek = get_client().generate_key(name, context)
    if as_json:
        echo_json({"plaintext": _b64(dek.plaintext), "ciphertext": _b64(dek.ciphertext)})
        return
    click.echo(
        render_pairs([("Plaintext", _b64(dek.plaintext)), ("Ciphertext", _b64(dek.ciphertext))])
    )


@key.command("encrypt")
@connection_options
@json_option
@click.argument("name")
@click.argument("plaintext_b64", metavar="[PLAINTEXT]", required=False)
@click.argument("context_b64", metavar="[CONTEXT]", required=False)
def encrypt(name: str, plaintext_b64: str | None, context_b64: str | None, as_json: bool) -> None:
    """Encrypt a small plaintext with master key NAME.

    Prints the ciphertext (base64). PLAINTEXT is base64; without it (or
    with '-') raw bytes are read from stdin. CONTEXT (base64) is optional
    associated data that decrypt must be given again.

    \b
    Examples:
      kes key encrypt my-key "$(printf 'hello' | base64)"
      printf 'hello' | kes key encrypt my-key
    """
    if plaintext_b64 is None or plaintext_b64 == "-":
        plaintext = sys.stdin.buffer.read()
    else:
        plaintext = decode_b64(plaintext_b64, "PLAINTEXT")
    context = decode_b64(context_b64, "CONTEXT") if context_b64 else b""
    ciphertext = get_client().encrypt(name, plaintext, context)
    if as_json:
        echo_json({"ciphertext": _b64(ciphertext)})
    else:
        click.echo(_b64(ciphertext))


@key.command("decrypt")
@connection_options
@json_option
@click.argument("name")
@click.argument("ciphertext_b64", metavar="[CIPHERTEXT]", required=False)
@click.argument("context_b64", metavar="[CONTEXT]", required=False)
def decrypt(name: str, ciphertext_b64: str | None, context_b64: str | None, as_json: bool) -> None:
    """Decrypt a ciphertext with master key NAME.

    Prints the plaintext (base64). CIPHERTEXT is base64, as printed by
    encrypt or generate; without it (or with '-') it is read from stdin.
    CONTEXT (base64) must be the one used when encrypting.

    \b
    Example:
      kes key decrypt my-key "$CIPHERTEXT" | base64 -d
    """
    if ciphertext_b64 is None or ciphertext_b64 == "-":
        ciphertext_b64 = sys.stdin.read()
    ciphertext = decode_b64(ciphertext_b64, "CIPHERTEXT")
    context = decode_b64(context_b64, "CONTEXT") if context_b64 else b""
    plaintext = get_client().decrypt(name, ciphertext, context)
    if as_json:
        echo_json({"plaintext": _b64(plaintext)})
    else:
        click.echo(_b64(plaintext))
