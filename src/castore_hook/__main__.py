"""``python -m castore_hook``: the same CLI as the ``castore-hook`` command."""

from castore_hook.cli import main

raise SystemExit(main())
