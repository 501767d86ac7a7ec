"""The ``ecg-dino`` commands other than ``fit``: each parses its arguments into a typed options object, makes one
library call, prints, and returns an exit code (2: an error naming the file)."""
