"""Any folder of WFDB records: one's own data, or another annotated database (INCART, SVDB, …).

Records are named by the folder's ``RECORDS`` file when it has one, else every ``*.hea`` below it; any signal
format ``wfdb`` reads; beat annotations from ``.atr`` when present. Lead names go through the vocabulary's
case-insensitive aliases, and names it lacks through the reader's ``lead_map`` (``ECG1=MLII``); a name neither
knows fails that record with an error naming the file and the lead. One patient per record.
"""

from __future__ import annotations

from datamodules.readers.wfdb_io import WfdbReader


class WfdbFolderReader(WfdbReader):
    """``root`` holds ``<name>.hea`` (+ signal files, + ``<name>.atr``) at any depth; whole records by default."""

    source = "wfdb"
    annotator = "atr"
