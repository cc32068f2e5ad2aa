"""Bearer tokens the tests configure for the read and write APIs, and the headers that carry them."""

from __future__ import annotations

READ_TOKEN = "read-token-current-0123456789"
OLD_READ_TOKEN = "read-token-previous-0123456789"
WRITE_TOKEN = "write-token-current-0123456789"
READ_AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE_AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
