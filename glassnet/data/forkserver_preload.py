"""Imported by the DataLoader's fork server, once, as it starts: load the main module there.

Python (3.11 at least) means to preload ``__main__`` into the fork server but
never does (it looks for a ``main_path`` key that the preparation data no
longer has, and ignores the ``sys_path`` it is given), so every worker would
run the main script or module again before unpickling its dataset: its
imports, and any module-level work such as building a dataset.
:func:`glassnet.data.start_method.prepare_forkserver` starts the server with
``GLASSNET_FORKSERVER_MAIN`` holding (as JSON) the part of
:func:`multiprocessing.spawn.get_preparation_data` that concerns ``__main__``
(its name or path, ``sys.argv``, ``sys.path``, the working directory);
importing this module there prepares ``__main__`` exactly as a worker would
(:func:`multiprocessing.spawn.prepare`), so each worker forked from the
server finds it in place and skips it. The main process never imports this module. A main module that fails to import
here is left alone: each worker then reports the failure itself.
"""
import json
import os
from multiprocessing import process, spawn

_KEYS = ("init_main_from_name", "init_main_from_path", "sys_argv", "sys_path", "dir")

try:  # popped: the workers forked from the server, and their children, do not see it
    _data = json.loads(os.environ.pop("GLASSNET_FORKSERVER_MAIN", "") or "{}")
except ValueError:
    _data = {}
if isinstance(_data, dict) and ("init_main_from_name" in _data or "init_main_from_path" in _data):
    process.current_process()._inheriting = True  # what spawn.prepare expects while "unpickling"
    try:
        spawn.prepare({k: v for k, v in _data.items() if k in _KEYS})
    except BaseException:  # noqa: BLE001 - the worker reports it with its own traceback
        pass
    finally:
        del process.current_process()._inheriting
