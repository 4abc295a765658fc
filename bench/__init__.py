"""Benchmarks: ``dualgait bench model|capture|e2e|soak|walkways`` and the surveys behind the docs' figures.

Each writes JSON + a markdown table (``report``) and measures against a baseline in the same run (``naive``:
the paper-style loop). Built on the public functions of the serving packages and the app's launcher; serving
code never imports a benchmark (tests/test_layers.py checks it).
"""
