"""PyInstaller hook for ``castore_hook``: collect the modules its slow path imports lazily."""

import pkgutil

import castore_hook

# Every module, sub-packages' too (cli, doctor, stores: a store module is imported by name for
# the platform at hand), except this build-time folder, which never goes into an app.
hiddenimports = [
    "_castore_hook",
    "_castore_hook_paths",
    *(
        module.name
        for module in pkgutil.walk_packages(castore_hook.__path__, "castore_hook.")
        if not module.name.startswith("castore_hook._pyinstaller")
    ),
]
