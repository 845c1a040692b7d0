"""The monitor's rules, one module per family: each holds the reference rule (one trip, one fix,
plainly written, used by `monitor.Monitor`) beside its batched detector (many trips at once, numpy
columns, used by `fast_monitor.BatchMonitor`). A property test holds the two equal, noise included.

What every rule shares (`common`): no rule fires or resets on a lone spike. A change of state
(leaving a stop, leaving or rejoining the route, starting or stopping to speed, driving on after a
crash) counts only when confirmed by `confirm_fixes` fixes in a row, or by two fixes at least
`confirm_seconds` apart (sparse sampling); the change is dated from its first fix.
"""
