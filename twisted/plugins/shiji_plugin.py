"""
The ``twistd shiji`` plugin: shijid run by twistd, which then owns
daemonizing, the PID file, the log file and the reactor.
"""

from twisted.application.service import ServiceMaker

shiji = ServiceMaker(
    "Shiji",
    "shiji.tap",
    "Serve the Shiji APIs a configuration file lists (as shijid does).",
    "shiji",
)
