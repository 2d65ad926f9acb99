"""MLflow's tracking REST API, the part its clients use, under ``/mlflow``: with
``MLFLOW_TRACKING_URI=http://host:8000/mlflow`` and ``MLFLOW_TRACKING_TOKEN=<a fitlens token>``
the unmodified ``mlflow`` client logs into fitlens. An experiment is a project of the caller's
teams, an MLflow run a client run (params, tags, metrics by step): the same run the rest of the
API reads, diagnoses and compares."""
