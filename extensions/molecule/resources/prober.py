# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe guests over HTTP at 20 Hz (1 s timeout) until STOP_FILE exists or LIMIT_S passes; rewrite OUT (JSON)
every half second: per guest the answers seen, failed probes and the longest time without an answer.

    prober.py OUT STOP_FILE LIMIT_S name=address [name=address ...]
"""

import json
import os
import sys
import time
import urllib.request


def main():
    out, stop_file, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    guests = dict(arg.split("=", 1) for arg in sys.argv[4:])
    now = time.time()
    stats = dict((name, dict(answers=[], failed=0, longest_gap_s=0.0, last_ok=now)) for name in guests)
    started, written = now, 0.0
    while not os.path.exists(stop_file) and time.time() - started < limit:
        for name, address in guests.items():
            entry = stats[name]
            try:
                with urllib.request.urlopen("http://%s/" % address, timeout=1.0) as resp:
                    answer = resp.read().decode().strip()
                if answer not in entry["answers"]:
                    entry["answers"].append(answer)
                now = time.time()
                entry["longest_gap_s"] = max(entry["longest_gap_s"], round(now - entry["last_ok"], 2))
                entry["last_ok"] = now
            except OSError:
                entry["failed"] += 1
        if time.time() - written > 0.5:
            with open(out + ".tmp", "w") as fh:
                json.dump(stats, fh)
            os.replace(out + ".tmp", out)
            written = time.time()
        time.sleep(0.05)
    with open(out + ".tmp", "w") as fh:
        json.dump(stats, fh)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
