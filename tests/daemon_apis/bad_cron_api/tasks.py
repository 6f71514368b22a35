from shiji import tasks


@tasks.cron("61 * * * *")
def never():
    pass
