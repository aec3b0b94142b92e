"""make test's stage times.

    python3 scripts/stages.py --run LOG NAME COMMAND...   print the stage's start, run COMMAND, log its times;
                                                          exit as it did
    python3 scripts/stages.py --scenario LOG NAME start|end   log a Molecule scenario's start or end (its
                                                              create and destroy)
    python3 scripts/stages.py LOG                         print the table of the stages and of the scenarios

LOG is a tab-separated file: kind, name, epoch seconds, and for stages the end and the exit status. A scenario's
time runs from its create to its last destroy. Standard library only.
"""

import subprocess
import sys
import time


def log(path, *fields):
    with open(path, "a") as handle:
        handle.write("\t".join(str(f) for f in fields) + "\n")


def run(path, name, command):
    started = time.time()
    print("== %s %s" % (time.strftime("%H:%M:%S"), name), flush=True)
    rc = subprocess.call(command)
    log(path, "stage", name, "%.1f" % started, "%.1f" % time.time(), rc)
    return rc


def minutes(seconds):
    return "%d:%02d" % (seconds // 60, seconds % 60)


def table(path):
    try:
        with open(path) as handle:
            rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    except FileNotFoundError:
        return 0
    stages = [r for r in rows if r[0] == "stage"]
    scenarios, order = {}, []
    for row in rows:
        if row[0] == "scenario":
            name, what, at = row[1], row[2], float(row[3])
            if name not in scenarios:
                scenarios[name] = {}
                order.append(name)
            if what == "start":
                scenarios[name].setdefault("start", at)
            else:
                scenarios[name]["end"] = at
    if not stages and not scenarios:
        return 0
    if stages:
        print("\nmake test: stage times")
        print("%-22s %9s %8s  %s" % ("stage", "seconds", "m:ss", "result"))
    for _kind, name, started, ended, rc in stages:
        took = float(ended) - float(started)
        print("%-22s %9.1f %8s  %s" % (name, took, minutes(took), "ok" if rc == "0" else "FAILED (exit %s)" % rc))
    if stages:
        wall = float(stages[-1][3]) - float(stages[0][2])
        print("%-22s %9.1f %8s" % ("all stages", wall, minutes(wall)))
    if scenarios:
        print("\nMolecule scenarios (create to the last destroy)")
        for name in order:
            times = scenarios[name]
            if "start" in times and "end" in times:
                took = times["end"] - times["start"]
                print("  %-20s %9.1f %8s" % (name, took, minutes(took)))
            else:
                print("  %-20s %9s" % (name, "unfinished"))
    return 0


def main(argv):
    if argv[:1] == ["--run"] and len(argv) >= 4:
        return run(argv[1], argv[2], argv[3:])
    if argv[:1] == ["--scenario"] and len(argv) == 4:
        log(argv[1], "scenario", argv[2], argv[3], "%.1f" % time.time())
        return 0
    if len(argv) == 1:
        return table(argv[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
