"""Signed checkpoints of the log: the tree head an operator keeps outside the database.

Why: a Merkle root only anchors the log if someone who cannot rewrite the database holds a
copy the log cannot disown. A checkpoint is RFC 9162's signed tree head (tree size, root
hash, time) in the text form of the C2SP "tlog-checkpoint" inside a C2SP "signed-note":

    <origin>                          the log's name, also the signing key's name
    <tree size>                       decimal, no leading zeros
    <root hash>                       base64 of the 32-byte RFC 9162 2.1.1 root
    time <YYYY-MM-DDTHH:MM:SSZ>       extension line: when the log signed it (UTC)
    [more extension lines]
    (blank line)
    — <origin> <base64(key id || signature)>

The signature is signed-note type 0x02 (ECDSA P-256, as transparency-dev/witness): an ASN.1
DER ECDSA-SHA256 signature over the note text (every line above the blank line, with its
newline); the key id is the first four bytes of SHA-256 of the key's DER SubjectPublicKeyInfo.
Signatures by other keys (witness cosignatures) are ignored, as signed-note requires; one by
the log's key must verify. Parsing is strict: anything not in exactly this form is refused.

Checkpoint files are written atomically (temporary file, fsync, rename, fsync of the folder),
so a crash leaves the old checkpoint or the new one, never a torn one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.transparency.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    LogRefused,
)

MAX_NOTE_BYTES = 128 * 1024  # C2SP: accept at least 16 signatures, post-quantum ones included
MAX_SIGNATURES = 100
MAX_KEY_FILE_BYTES = 64 * 1024
_DASH = "\u2014 "  # em dash and space start every signature line
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_NAME = re.compile(r"[^\s+]{1,255}")  # signed-note key names: no Unicode space, no plus
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_TIME_LINE = re.compile(r"time ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)")
_SIGNATURE_LINE = re.compile(r"\u2014 ([^\s+]{1,255}) ([A-Za-z0-9+/]+={0,2})")

MALFORMED = "log.checkpoint.malformed"
SIGNATURE = "log.checkpoint.signature"


def _malformed(message: str) -> LogRefused:
    return LogRefused(MALFORMED, message)


def _strict_b64decode(text: str, what: str) -> bytes:
    """Base64 (RFC 4648 section 4) in its one canonical spelling, or refused."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise _malformed(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log ``origin`` had ``size`` leaves with ``root_hash`` at ``time``."""

    origin: str
    size: int
    root_hash: bytes
    time: datetime
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not _NAME.fullmatch(self.origin) or _has_control(self.origin):
            raise _malformed(f"the origin {self.origin!r} must be 1 to 255 characters with no spaces and no '+'")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 0 <= self.size < MAX_TREE_SIZE:
            raise _malformed(f"the tree size {self.size!r} is not an integer from 0 to 2^63-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise _malformed(f"the root hash must have {HASH_SIZE} bytes")
        if self.size == 0 and self.root_hash != EMPTY_ROOT:
            raise _malformed("a tree of size 0 has the empty root (SHA-256 of nothing)")
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise _malformed("the checkpoint time must be a datetime with a time zone")
        # The text form has whole seconds in UTC; hold exactly what it says.
        object.__setattr__(self, "time", self.time.astimezone(timezone.utc).replace(microsecond=0))
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            if not isinstance(line, str) or not line or line != line.strip() or "\n" in line or _has_control(line) or line.startswith("time "):
                raise _malformed(f"extension line {line!r} must be non-empty text without control characters, edge spaces or a second time")

    def body(self) -> str:
        """The note text that is signed (ending in a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), f"time {self.time.strftime(_TIME_FORMAT)}", *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 and c != "\n" for c in text) or "\x7f" in text


# -- keys ------------------------------------------------------------------------------------


def generate_log_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _require_p256(key: object, what: str) -> None:
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) or key.curve.name != "secp256r1":
        raise LogRefused("log.key", f"the {what} must be an EC P-256 key")


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The log's signing key from unencrypted PEM (PKCS#8 or SEC 1); P-256 only."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise LogRefused("log.key", "the log key is not an unencrypted PEM private key") from None
    _require_p256(key, "log key")
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # for mypy: _require_p256 refused the rest
    return key


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """The log's public key from PEM SubjectPublicKeyInfo; P-256 only."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise LogRefused("log.key", "the log's public key is not a PEM public key") from None
    _require_p256(key, "log's public key")
    assert isinstance(key, ec.EllipticCurvePublicKey)  # for mypy: _require_p256 refused the rest
    return key


def key_id(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """signed-note type 0x02 key id: SHA-256 of the DER SubjectPublicKeyInfo, first 4 bytes."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()[:4]


# -- signing, parsing, verifying -------------------------------------------------------------


def sign_checkpoint(checkpoint: Checkpoint, key: ec.EllipticCurvePrivateKey) -> str:
    """The signed note: the checkpoint's text, a blank line, and the log's signature line."""
    _require_p256(key, "log key")
    body = checkpoint.body()
    signature = key.sign(body.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{body}\n{_DASH}{checkpoint.origin} {base64.b64encode(key_id(key) + signature).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


def parse_note(note: str | bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """Split a signed checkpoint into its checkpoint and signature lines, strictly; verifies nothing.

    Use ``open_checkpoint`` for anything that will be trusted.
    """
    _, checkpoint, signatures = _read_note(note)
    return checkpoint, signatures


def _read_note(note: str | bytes) -> tuple[str, Checkpoint, list[NoteSignature]]:
    """The note text as read (what the signatures cover), its checkpoint and its signatures."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise _malformed(f"a checkpoint is at most {MAX_NOTE_BYTES} bytes")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed(f"not UTF-8 (at byte {exc.start})") from None
    if not isinstance(note, str):
        raise _malformed("a checkpoint is text")
    try:
        size = len(note.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _malformed(f"not valid Unicode text (at character {exc.start})") from None
    if size > MAX_NOTE_BYTES:
        raise _malformed(f"a checkpoint is at most {MAX_NOTE_BYTES} bytes")
    if _has_control(note):
        raise _malformed("control characters (other than newline) are not allowed")
    split = note.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line between the checkpoint text and its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise _malformed("the signature lines must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"more than {MAX_SIGNATURES} signature lines")
    signatures = []
    for number, line in enumerate(lines, 1):
        match = _SIGNATURE_LINE.fullmatch(line)
        if match is None:
            raise _malformed(f"signature line {number} is not '\u2014 <name> <base64>'")
        raw = _strict_b64decode(match.group(2), f"signature line {number}")
        if len(raw) < 5:
            raise _malformed(f"signature line {number} holds no signature after its key id")
        signatures.append(NoteSignature(match.group(1), raw[:4], raw[4:]))
    return body, _parse_body(body), signatures


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 4:
        raise _malformed("the checkpoint text needs an origin, a tree size, a root hash and a time line")
    origin, size, root, time_line, *extensions = lines
    if not _NAME.fullmatch(origin):
        raise _malformed("the origin line must be 1 to 255 characters with no spaces and no '+'")
    if not _SIZE.fullmatch(size):
        raise _malformed("the tree size line must be a decimal number without leading zeros or spaces")
    root_hash = _strict_b64decode(root, "the root hash line")
    if len(root_hash) != HASH_SIZE:
        raise _malformed(f"the root hash must have {HASH_SIZE} bytes, not {len(root_hash)}")
    match = _TIME_LINE.fullmatch(time_line)
    try:
        when = datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=timezone.utc) if match else None
    except ValueError:
        when = None
    if when is None:
        raise _malformed("the fourth line must be 'time YYYY-MM-DDTHH:MM:SSZ' (a real UTC time)")
    return Checkpoint(origin, int(size), root_hash, when, tuple(extensions))


def open_checkpoint(note: str | bytes, public_key: ec.EllipticCurvePublicKey, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint, once the log's signature on it verifies; refused otherwise.

    ``origin``, when given, is the log the caller expects (refused if it names another).
    """
    _require_p256(public_key, "log's public key")
    body, checkpoint, signatures = _read_note(note)
    if origin is not None and checkpoint.origin != origin:
        raise LogRefused("log.checkpoint.origin", f"the checkpoint is from log {checkpoint.origin!r}, not {origin!r}")
    wanted = key_id(public_key)
    ours = [s for s in signatures if s.name == checkpoint.origin and s.key_id == wanted]
    if not ours:
        raise LogRefused(SIGNATURE, f"no signature by the key of log {checkpoint.origin!r} (key id {wanted.hex()})")
    signed = body.encode()  # the bytes as read, never a re-serialisation
    for s in ours:
        try:
            public_key.verify(s.signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise LogRefused(SIGNATURE, f"the signature of log {checkpoint.origin!r} does not verify: the checkpoint was changed or not signed by this key") from None
    return checkpoint


# -- files -----------------------------------------------------------------------------------


def read_file(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """A small file's bytes; refused (not a traceback) when missing, unreadable or too large."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise LogRefused("log.file", f"cannot read the {what} {os.fspath(path)}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise LogRefused("log.file", f"the {what} {os.fspath(path)} is larger than {limit} bytes")
    return data


def write_file_atomically(path: str | os.PathLike, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` so that ``path`` holds the old content or the new, whatever crashes.

    Temporary file in the same folder, fsync, then rename (or, without ``overwrite``, a hard
    link, which refuses an existing name), then fsync the folder so the rename is durable.
    """
    target = Path(path)
    folder = target.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise LogRefused("log.file", f"cannot write in {folder}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        if overwrite:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)
            os.unlink(temporary)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        reason = "it already exists" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        raise LogRefused("log.file", f"cannot write {target}: {reason}") from None
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the new directory entry itself durable
        try:
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise LogRefused("log.file", f"wrote {target} but cannot sync {folder}: {exc.strerror or exc}") from None


def write_checkpoint_file(path: str | os.PathLike, note: str | bytes) -> None:
    """Write a signed checkpoint for shipping elsewhere; refuses text that is not one."""
    parse_note(note)
    write_file_atomically(path, note if isinstance(note, bytes) else note.encode("utf-8"))


def read_checkpoint_file(path: str | os.PathLike, public_key: ec.EllipticCurvePublicKey, *, origin: str | None = None) -> tuple[Checkpoint, str]:
    """A checkpoint file, verified: the checkpoint and its exact text (for embedding in proofs)."""
    data = read_file(path, MAX_NOTE_BYTES, "checkpoint file")
    checkpoint = open_checkpoint(data, public_key, origin=origin)
    return checkpoint, data.decode("utf-8")


def save_private_key(path: str | os.PathLike, key: ec.EllipticCurvePrivateKey) -> None:
    """Write the log key as PEM, readable by its owner only; never replaces an existing key."""
    _require_p256(key, "log key")
    write_file_atomically(path, private_key_pem(key), mode=0o600, overwrite=False)


def read_private_key(path: str | os.PathLike) -> ec.EllipticCurvePrivateKey:
    return load_private_key(read_file(path, MAX_KEY_FILE_BYTES, "log key file"))


def read_public_key(path: str | os.PathLike) -> ec.EllipticCurvePublicKey:
    return load_public_key(read_file(path, MAX_KEY_FILE_BYTES, "log public key file"))
