"""Floor 4: the engine. Sources (capture files, the live ring, log sources, lab scenarios) feed one pipeline —
flow meter, plug-in observers (analyzers, detectors, Sigma, anomaly models), alert handling, stores — used alike by
`soc replay`, `soc run`, `soc ingest` and the lab. Import from the submodules: ``soc.engine.engine`` (Engine),
``soc.engine.sources``, ``soc.engine.live``, ``soc.engine.plugins``."""
