"""The use cases: what an entry point (API, CLI, scheduler, worker) asks for, done in one place.

A use case runs its script through the store (``app/store``), then puts the runs it made on RQ
or takes the runs it ended off RQ, then counts them (:mod:`app.service.dispatch`). The entry
points only translate: an HTTP body or a command line in, a record out.
"""
