"""`make aws-sandbox`: the aws target's stand-ins on loopback, for trying the AWS path without
an AWS account: moto's server (S3, Glue, Firehose, Athena's API, with the Glue calls Trino
needs) and a real Trino over it, as the test suite runs them. Prints the settings to export in
another shell and runs until Ctrl-C, then stops both.

moto's crawler never ends a crawl on its own; here a crawl ends at once (a real one takes
minutes), so `materialize` is not held up by it.
"""

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from purchase_pipeline_tests.services import trino_server
from purchase_pipeline_tests.services.moto_server import (
    FAKE_CREDENTIALS,
    MotoServer,
    crawls_at_once,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto-port", type=int, default=5000, help="moto's port, e.g. 5000")
    parser.add_argument("--region", default="us-east-1", help="the region, e.g. us-east-1")
    args = parser.parse_args()
    credentials = {**FAKE_CREDENTIALS, "AWS_REGION": args.region, "AWS_DEFAULT_REGION": args.region}
    os.environ.update(credentials)
    moto = MotoServer(args.moto_port).start()
    crawls_at_once(moto.endpoint_url)
    installed = trino_server.install()
    server = trino_server.TrinoServer(
        installed.home, Path(tempfile.mkdtemp(prefix="trino-")), moto.endpoint_url, args.region
    )
    seconds = server.start()
    exports = {
        **credentials,
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "PURCHASES_TARGET": "aws",
        "PURCHASES_TRINO_URL": server.url,
    }
    sys.stdout.write(
        f"moto at {moto.endpoint_url}, Trino {trino_server.TRINO_VERSION} at {server.url} "
        f"(started in {seconds:.0f} s). In another shell:\n"
        + "export "
        + " ".join(f"{k}={v}" for k, v in exports.items())
        + "\nCtrl-C stops both.\n"
    )
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
