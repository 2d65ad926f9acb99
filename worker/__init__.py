"""fitlens worker: Celery tasks that run the trainer and post results to the API over HTTP.

The worker never touches the database; the API is its only door.
"""
