# syntax=docker/dockerfile:1
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 jiedui

# dependencies in their own layer: rebuilt only when pyproject.toml changes
COPY pyproject.toml README.md ./
RUN mkdir service && touch service/__init__.py && pip install . && pip uninstall -y jiedui-matching && rm -rf service

COPY service ./service
COPY alembic.ini ./
RUN pip install --no-deps .

USER jiedui
EXPOSE 8000
ENV MATCH_HOST=0.0.0.0 MATCH_PORT=8000
# The schema is migrated by the one-shot migrate step (compose, Kubernetes Job), never by racing API replicas.
CMD ["python", "-m", "service.cli", "serve", "--no-migrate"]
