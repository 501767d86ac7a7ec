"""Format readers, Parquet shards and LightningDataModules for ECG pretraining and probes."""
