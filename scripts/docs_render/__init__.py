"""The renderers of the docs' generated regions, for scripts/render_docs.py: where they read (sources), how they
write (formatting), the regions of the synthetic demo (demo), of the real photos (photos), of the timings (timings)
and of the benchmarks (bench), and the registry of the regions (regions)."""
