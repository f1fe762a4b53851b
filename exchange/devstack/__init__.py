"""Starting and stopping the real services Clearway needs, for `make run` and for the tests.

Nothing here imports Django: the stack has to be up (and its URLs known) before settings load.
The same functions serve the run command, `make test` and the pytest fixtures, so the way a
service is started in tests is the way it is started for a developer.
"""
