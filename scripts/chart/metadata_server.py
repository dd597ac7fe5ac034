"""A loopback stand-in for login.microsoftonline.com during check-chart: serves a directory on a
free port (chosen by the kernel) and writes the port into a file once it listens.

Usage: metadata_server.py DIRECTORY PORT_FILE
"""
import functools
import http.server
import os
import sys


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    directory, port_file = sys.argv[1], sys.argv[2]
    server = http.server.HTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
