-- pgbench's single-row insert: issue 23's reference (as examples/bench_run.rs runs it).
INSERT INTO bench_reference (payload, created_at) VALUES ('{"productType":"murabaha"}', 1);
