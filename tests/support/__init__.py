"""Helpers every test suite shares: agents (``agents``), records (``records``), waiting
(``waiting``), the API client's helpers (``api``), tasks made through the task store and
scheduler processes (``scheduler``), and the worker suites' servers and processes
(``workers``). Tests import from here, never from a conftest or another test module."""
