"""Alert handling between the detectors and the store: inventory, grouping, risk, suppression."""
