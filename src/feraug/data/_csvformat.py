"""Codes shared by the compiled CSV parser and its Python caller (kept numba-free: cheap to import)."""

# Column roles, as given by the header.
ROLE_EMOTION, ROLE_PIXELS, ROLE_USAGE = 0, 1, 2

# Row statuses (the first problem found in a row wins; column-count problems override the others).
OK = 0
MISSING_COLUMNS = 1  # detail: number of columns found
EXTRA_COLUMNS = 2  # detail: number of columns found
PIXEL_COUNT = 3  # detail: number of pixel values found
PIXEL_RANGE = 4  # detail: the offending value
PIXEL_CHAR = 5  # detail: the offending byte
BAD_LABEL = 6  # detail: the offending byte, or -1 for an empty field
LABEL_RANGE = 7  # detail: the label value
