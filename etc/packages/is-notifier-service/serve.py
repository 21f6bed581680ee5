"""Serves www/ on 127.0.0.1 and records the port in run/port for the readiness check.

The port is $RM_PORT when the agent assigns one, otherwise any free port, so several nodes on
one host can run the sample side by side.
"""
import functools
import http.server
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def main():
    port = int(os.environ.get("RM_PORT", "0"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(HERE / "www"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        run = HERE / "run"
        run.mkdir(exist_ok=True)
        tmp = run / "port.tmp"
        tmp.write_text(str(server.server_address[1]))
        tmp.replace(run / "port")  # atomic: the readiness check never reads half a number
        server.serve_forever()


if __name__ == "__main__":
    main()
