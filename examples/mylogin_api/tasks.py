"""
Background jobs of mylogin_api (see shiji.tasks): every night, the user
database's statistics are refreshed, by one process of shijid however many
serve. (Sessions need no purge: the shared store expires them.)
"""

from twisted.logger import Logger

from shiji import tasks

log = Logger(namespace="mylogin_api.tasks")


@tasks.cron("17 3 * * *")
async def optimize_database():
    """Refresh the user database's query statistics, at 03:17 UTC."""
    config = tasks.current().config
    if not config:
        return  # served without a configuration (in tests): no database
    statement = await config["users"].optimize()
    tasks.current().metrics.increment("mylogin_api.database.optimized")
    log.info("Ran {statement} on the user database", statement=statement)
