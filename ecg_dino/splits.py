"""Dataset splits that keep probe test data out of pretraining: read by the probes, the readers and the Makefile.

The Makefile reads them with ``python3 -c`` (this module and the package's ``__init__`` import nothing), so the
record lists and folds that ``make prepare-cpu-real`` passes to ``ecg-dino prepare`` are these ones.
"""

from __future__ import annotations

# MIT-BIH Arrhythmia inter-patient split (de Chazal et al. 2004): DS1 trains, DS2 tests. The paced records 102,
# 104, 107 and 217 are in neither. One line per set (a literal tuple would be formatted 22 lines long).
MITDB_DS1 = tuple("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split())  # noqa: SIM905
MITDB_DS2 = tuple("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split())  # noqa: SIM905

# PTB-XL ``strat_fold``s: 1-8 train, 9 validation, 10 test (the benchmark's recommended split).
PTBXL_TRAIN_FOLDS, PTBXL_VAL_FOLD, PTBXL_TEST_FOLD = tuple(range(1, 9)), 9, 10

# PhysioNet/CinC 2017 records by number (A00001 = 1): the project's fixed train / validation / test split.
CINC2017_SPLITS = {"train": (1, 4500), "val": (4501, 5000), "test": (5001, 6000)}
