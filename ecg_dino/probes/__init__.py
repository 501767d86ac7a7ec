"""Linear probes of frozen ECG embeddings (PTB-XL statements, MIT-BIH beats), baselines and reports."""
