"""Benchmarks of django-async-api-key against djangorestframework-api-key (``make bench``).

``python -m benchmarks`` measures verification in-process and endpoints over HTTP on
127.0.0.1, prints the tables and writes ``docs/benchmarks.md``. Ratios measured in the
same run are the claims; absolute times depend on the machine.
"""
