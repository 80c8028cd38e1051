"""The user-space part of a request/response hop, from a syscall trace.

    perf record -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -o trace.data COMMAND
    perf record -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -p PID -o trace.data -- sleep 2
    perf script --ns -i trace.data > trace.txt
    python3 hop_time.py trace.txt

For each thread with a thousand syscalls or more, prints the time from the return of
`epoll_wait` (a message has come) to the start of the next `write` (the answer, or
the next request, leaves): the work a process does between being woken and passing
the turn on, its reads included. Also the time from a `write`'s return to the next
`epoll_wait` (off the critical path) and how long `epoll_wait` slept. Medians, in
microseconds; tracing adds about a microsecond to each.

With one call in flight (W1) this is stable to a few tenths of a microsecond, where
the p50 of a round trip drifts by several microseconds between runs: the wake-ups
that make most of a round trip here are the VM's, the rest is this.
"""

import re
import statistics
import sys

READ, WRITE, EPOLL_WAIT = 0, 1, 232  # x86-64 syscall numbers

EVENT = re.compile(r"\s(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+)")


def main():
    threads = {}
    for line in open(sys.argv[1]):
        match = EVENT.search(line)
        if match:
            tid, _, seconds, kind, number = match.groups()
            threads.setdefault(int(tid), []).append((float(seconds) * 1e6, kind, int(number)))
    for tid, events in sorted(threads.items()):
        if len(events) < 1000:
            continue
        woken_to_write, write_to_wait, slept = [], [], []
        for index, (time, kind, number) in enumerate(events):
            following = events[index + 1 : index + 12]
            if kind == "exit" and number == EPOLL_WAIT:
                after = next((t for t, k, n in following if k == "enter" and n == WRITE), None)
                if after is not None:
                    woken_to_write.append(after - time)
            elif kind == "exit" and number == WRITE:
                after = next((t for t, k, n in following if k == "enter" and n == EPOLL_WAIT), None)
                if after is not None:
                    write_to_wait.append(after - time)
            elif kind == "enter" and number == EPOLL_WAIT and following and following[0][1] == "exit":
                slept.append(following[0][0] - time)
        if not woken_to_write:
            continue
        print(
            "thread %d: woken -> write %.2f µs, write -> epoll_wait %.2f µs, epoll_wait slept %.1f µs (%d hops)"
            % (
                tid,
                statistics.median(woken_to_write),
                statistics.median(write_to_wait) if write_to_wait else 0,
                statistics.median(slept) if slept else 0,
                len(woken_to_write),
            )
        )


if __name__ == "__main__":
    main()
