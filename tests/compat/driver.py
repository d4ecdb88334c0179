"""Runs compatibility cases in one interpreter (ours or enact 0.4's); prints JSON results.

Usage: ``python driver.py CASES.json``. Each case is a program run as its own module
(``case_<name>``, so registered names never clash) in a fresh working directory; its
output is captured, and an exception that escapes it is reported by type name. This
file imports nothing from the repository, so the original's interpreter can run it.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import traceback
import types

PRELUDE = '''
def show(label, value):
    print(f"{label}: {value!r}")


def raises(label, fn, *bases):
    """Prints the type name of what ``fn()`` raises, or, given ``bases``, whether it is
    an instance of each (for errors whose class name differs, such as aliases)."""
    try:
        fn()
    except Exception as exc:
        if bases:
            print(f"{label}: raised an instance of the expected classes: "
                  f"{[isinstance(exc, b) for b in bases]}")
        else:
            print(f"{label}: raised {type(exc).__name__}")
    else:
        print(f"{label}: no error")
'''


def run_case(name, source):
    module = types.ModuleType(f"case_{name}")
    module.__file__ = f"<case {name}>"
    sys.modules[module.__name__] = module
    out = io.StringIO()
    error = trace = None
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(PRELUDE + source, f"<case {name}>", "exec"), module.__dict__)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            error = type(exc).__name__
            trace = traceback.format_exc()
        finally:
            os.chdir(cwd)
    return {"output": out.getvalue(), "error": error, "traceback": trace}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {name: run_case(name, source) for name, source in cases.items()}
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
