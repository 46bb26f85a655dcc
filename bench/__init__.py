"""`make bench`: load tests of the real server against baselines measured in the same run."""
