"""Interchange formats: files in and out of ccai (no database, no HTTP).

`ccai.formats.polis` reads and writes Polis CSV exports of either generation.
"""

from ccai.formats.polis import (
    PolisExport,
    PolisFormatError,
    comment_groups_from_votes,
    latest_votes,
    read_id_list,
    read_polis_export,
    write_polis_export,
)

__all__ = [
    "PolisExport",
    "PolisFormatError",
    "comment_groups_from_votes",
    "latest_votes",
    "read_id_list",
    "read_polis_export",
    "write_polis_export",
]
