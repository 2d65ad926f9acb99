"""fitlens tracking API: FastAPI + SQLModel. Never imports torch."""
