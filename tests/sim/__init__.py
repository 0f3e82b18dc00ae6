"""Fleet simulator for offline sync: seeded crews and dispatchers against the real app.

``run_simulation(config, server)`` plays a shift, lets everyone sync to a fixed point and runs the
checks of :mod:`tests.sim.checks`. ``python -m tests.sim`` (or ``make sim``) runs it standalone.
"""
