"""Decode a user's file (a recipe, a data file) as UTF-8, or say where it is not.

    text = decode_utf8(path.read_bytes(), str(path))          # a whole file
    line = decode_utf8(raw_line, str(path), first_line=lineno)  # one line of a file read line by line

A UTF-8 byte-order mark at the start is accepted (editors on Windows write one); a UTF-16 file is named
as such, since "bad byte at offset 0" would not tell the user what to do.
"""

from __future__ import annotations

from cpt.errors import UserError

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # also how UTF-32 files start


def decode_utf8(data: bytes, label: str, first_line: int = 1) -> str:
    """`data` as text. `first_line` is the line `data` starts on (1: the start of the file, where a
    byte-order mark may be). Raises UserError `LABEL:LINE: not UTF-8 text (byte 0x.. at column C)`."""
    if first_line == 1:
        if data.startswith(UTF16_BOMS):
            raise UserError(f"{label}: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
        data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - data.rfind(b"\n", 0, exc.start)  # 1-based, in bytes
        raise UserError(
            f"{label}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); save it as UTF-8"
        ) from None
