"""Run several `edgecnn` command lines in one Python process, each with its own exit code,
stdout and stderr captured at the file-descriptor level (so output written by native
libraries is caught too). Used by the bad-input tests: importing torch once instead of
once per command line keeps the suite fast.

    python tests/cli_batch.py '[["eval", "missing.pt"], ["info", "x.pt"]]'

prints one JSON list of [exit code, stdout, stderr] per command line.
"""
import json
import os
import sys
import tempfile
import traceback


def run_one(argv):
    from edgecnn.cli import main

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what an uncaught exception would print in a process of its own
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return [code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")]


if __name__ == "__main__":
    results = [run_one(argv) for argv in json.loads(sys.argv[1])]
    sys.stdout.write(json.dumps(results))
