"""The byte-level FER2013 CSV parser, compiled with numba.

Why compiled: the Kaggle file is ~290 MB of text holding 74 M integers. numpy/pyarrow string
splitting needs several passes over it (2-6 s on a 2-core machine); one compiled pass that parses,
validates and writes straight into the output ``uint8`` array takes ~0.4 s. The kernel never
raises: it records a status per row, and Python (``fer2013.py``) turns statuses into messages
that name the file, the line and the problem.
"""

from __future__ import annotations

import numba
import numpy as np

from feraug.data._csvformat import (
    BAD_LABEL,
    EXTRA_COLUMNS,
    LABEL_RANGE,
    MISSING_COLUMNS,
    OK,
    PIXEL_CHAR,
    PIXEL_COUNT,
    PIXEL_RANGE,
    ROLE_EMOTION,
    ROLE_PIXELS,
    ROLE_USAGE,
)

_SPACE, _TAB, _CR, _LF, _COMMA, _QUOTE = 32, 9, 13, 10, 44, 34


@numba.njit(cache=True, nogil=True, boundscheck=False)
def parse_rows(  # one state machine, kept in one place on purpose
    buf: np.ndarray,
    roles: np.ndarray,
    n_pixels: int,
    n_classes: int,
    first_line: int,
    images: np.ndarray,
    labels: np.ndarray,
    usage_span: np.ndarray,
    usage_code: np.ndarray,
    status: np.ndarray,
    detail: np.ndarray,
    line_no: np.ndarray,
) -> int:
    """Parse data rows of ``buf`` (header already removed); return the number of rows seen.

    ``usage_code`` gets a hash of each row's ``Usage`` value, so Python decodes one string per
    distinct value instead of one per row.

    Blank lines are skipped. Quotes and ``\\r`` are treated as whitespace, so quoted fields and
    Windows line endings parse like the Kaggle original.
    """
    n = buf.size
    n_cols = roles.size
    i = 0
    row = 0
    line = first_line
    while i < n:
        # Skip a blank (whitespace-only) line without creating a row.
        j = i
        while j < n and (buf[j] == _SPACE or buf[j] == _TAB or buf[j] == _CR):
            j += 1
        if j < n and buf[j] == _LF:
            i = j + 1
            line += 1
            continue
        if j >= n:
            break
        st = OK
        det = 0
        col = 0
        n_values = 0
        label = 0
        label_digits = 0
        value = 0
        in_number = False
        usage_start = i
        usage_end = i
        code = np.uint64(14695981039346656037)  # FNV-1a of the lower-cased, unquoted Usage value
        role = roles[0]
        while i < n:
            c = buf[i]
            if c == _LF:
                break
            if c == _COMMA:
                if role == ROLE_PIXELS and in_number:
                    if n_values < n_pixels:
                        images[row, n_values] = value
                    n_values += 1
                    in_number = False
                if role == ROLE_USAGE:
                    usage_end = i
                col += 1
                role = roles[col] if col < n_cols else -1
                if role == ROLE_USAGE:
                    usage_start = i + 1
                i += 1
                continue
            is_digit = 48 <= c <= 57
            is_blank = c in (_SPACE, _TAB, _CR, _QUOTE)
            if role == ROLE_PIXELS:
                if is_digit:
                    value = value * 10 + (c - 48) if in_number else c - 48
                    in_number = True
                    if value > 99_999:  # keep a garbage run of digits from overflowing
                        value = 99_999
                    if value > 255 and st == OK:
                        st = PIXEL_RANGE
                        det = value
                elif is_blank:
                    if in_number:
                        if n_values < n_pixels:
                            images[row, n_values] = value
                        n_values += 1
                        in_number = False
                elif st == OK:
                    st = PIXEL_CHAR
                    det = c
            elif role == ROLE_USAGE:
                if not is_blank:
                    low = c + 32 if 65 <= c <= 90 else c
                    code = (code ^ np.uint64(low)) * np.uint64(1099511628211)
            elif role == ROLE_EMOTION:
                if is_digit:
                    label = label * 10 + (c - 48)
                    label_digits += 1
                    if label > 1_000_000:
                        label = 1_000_000
                elif not is_blank and st == OK:
                    st = BAD_LABEL
                    det = c
            i += 1
        # End of line (or of buffer).
        if role == ROLE_PIXELS and in_number:
            if n_values < n_pixels:
                images[row, n_values] = value
            n_values += 1
        if role == ROLE_USAGE:
            usage_end = i
        found = col + 1
        if found < n_cols:
            st = MISSING_COLUMNS
            det = found
        elif found > n_cols:
            st = EXTRA_COLUMNS
            det = found
        elif st == OK and label_digits == 0:
            st = BAD_LABEL
            det = -1
        elif st == OK and n_values != n_pixels:
            st = PIXEL_COUNT
            det = n_values
        elif st == OK and label >= n_classes:
            st = LABEL_RANGE
            det = label
        labels[row] = label
        usage_span[row, 0] = usage_start
        usage_span[row, 1] = usage_end
        usage_code[row] = code
        status[row] = st
        detail[row] = det
        line_no[row] = line
        row += 1
        line += 1
        i += 1  # past the newline
    return row
