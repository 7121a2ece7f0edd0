"""The leaf every layer may use: the invocation's deadline and the failpoints that tests arm.

Both are process state (a context variable, an environment-armed table), not business logic; they import nothing
of imagesync, so domain/, app/ and adapters/ can read them without depending on the platform glue above them.
"""
