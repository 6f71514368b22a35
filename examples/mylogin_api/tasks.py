"""
Background jobs of mylogin_api (see shiji.tasks): every night, the sessions
that have expired are deleted, by one process of shijid however many serve.
"""

from twisted.logger import Logger

from shiji import tasks

log = Logger(namespace="mylogin_api.tasks")


@tasks.cron("17 3 * * *")
async def purge_expired_sessions():
    """Delete the expired sessions, at 03:17 UTC."""
    config = tasks.current().config
    if not config:
        return  # served without a configuration (in tests): no store
    deleted = await config["users"].purge_expired_sessions()
    tasks.current().metrics.increment("mylogin_api.sessions.purged", deleted)
    log.info("Deleted {count} expired session(s)", count=deleted)
