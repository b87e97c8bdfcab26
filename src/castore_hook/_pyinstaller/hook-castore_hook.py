"""PyInstaller hook for ``castore_hook``: collect the modules its slow path imports lazily."""

import pkgutil

import castore_hook

# Every submodule, except this build-time folder, which never goes into an app.
hiddenimports = [
    "_castore_hook",
    "_castore_hook_paths",
    *(
        "castore_hook." + module.name
        for module in pkgutil.iter_modules(castore_hook.__path__)
        if module.name != "_pyinstaller"
    ),
]
