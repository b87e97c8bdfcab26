"""castore-hook's PyInstaller runtime hook: what ``castore_hook.pth`` does in a normal venv.

PyInstaller runs it before the app's main script in every app that freezes ``ssl`` (see
``../rthooks.dat``). ``_castore_hook.run()`` decides or reuses the cached plan for the user's
configuration, applies it, and never raises: a frozen app must start whatever happens here.

PyInstaller's bootloader always starts the interpreter isolated (``sys.flags.isolated`` and
``ignore_environment`` are 1), to keep the build machine's ``PYTHON*`` variables out. That is
the packager's choice, not a user running ``python -E``: ``_castore_hook.hook_environ_ignored``
sees ``sys.frozen`` and honours ``CASTORE_HOOK_DISABLE`` and the other ``CASTORE_HOOK_*``
variables exactly like a venv does.
"""


def _castore_hook_rthook() -> None:
    try:
        import _castore_hook

        _castore_hook.run()
    except (
        BaseException
    ):  # start-up never fails (castore-hook docs/architecture.md, "Failure policy")
        pass


_castore_hook_rthook()
del _castore_hook_rthook
